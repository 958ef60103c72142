//! Realtime delivery: the WebSocket endpoint (`handshake`, then one `connection` task per
//! client whose frames `dispatch` hands to `app::`), the hub of this instance's connections,
//! and the task that feeds it from the event log. docs/realtime.md describes the protocol.

pub mod admission;
pub mod connection;
pub mod dispatch;
pub mod flow;
pub mod frame_guard;
pub mod handshake;
pub mod hub;
pub mod inbound_limit;
pub mod log_throttle;
pub mod tailer;
pub mod teardown;
pub mod typing_coalescer;
pub mod watch;

pub use hub::Hub;
