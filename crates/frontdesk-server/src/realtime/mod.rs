//! Realtime delivery: the hub of this instance's connections, the task that feeds it from the
//! event log, and the WebSocket endpoint. docs/realtime.md describes the protocol.

pub mod admission;
pub mod credential;
pub mod flow;
pub mod frame_guard;
pub mod hub;
pub mod inbound_limit;
pub mod log_throttle;
pub mod socket;
pub mod tailer;
pub mod teardown;
pub mod typing_coalescer;

pub use hub::Hub;
