//! Test support: a fresh database per test on either backend, the real `frontdesk` binary on
//! loopback, and small HTTP helpers. Tests run in parallel; each owns its database and server.
//! All of it lives in `crates/frontdesk-testkit`, shared with the store's tests and the bench;
//! this module only keeps the paths the test files were written against.
// Each test file uses a different part of this module.
#![allow(dead_code, unused_imports)]

pub use frontdesk_testkit::checks::*;
pub use frontdesk_testkit::{db, raw_ws, server, ws};
pub use frontdesk_testkit::{Agent, Backend, Ended, Partner, Server, TestDb, WsClient};

/// Runs an async test body once per backend: `mod name { sqlite, postgres }` (the kit's macro,
/// exported at this crate's root where the test files call it).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        frontdesk_testkit::on_both_backends!($($name),*);
    };
}
