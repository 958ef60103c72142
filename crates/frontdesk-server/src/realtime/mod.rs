//! Realtime delivery: the hub of this instance's connections, the task that feeds it from the
//! event log, and the WebSocket endpoint. docs/realtime.md describes the protocol.

pub mod admission;
pub mod credential;
pub mod hub;
pub mod socket;
pub mod tailer;

pub use hub::Hub;
