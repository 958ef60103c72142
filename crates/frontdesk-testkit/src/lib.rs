//! Frontdesk's test kit, for the tests and the bench only (never a dependency of the server):
//!
//! - `db`: a fresh database per test, SQLite or PostgreSQL (copied from a migrated template);
//! - `process`: a server child process on loopback, its log, its stop;
//! - `server`: the real `frontdesk` binary on a test database, with the API calls tests make;
//! - `api`: the HTTP client underneath, and agent creation through the real CLI;
//! - `checks`: small assertions on what the API answers (error shape, timestamps, the log);
//! - `browser`: headless Chromium through chromedriver, for the console and widget tests;
//! - `fake_model`: an OpenAI-compatible model server, scripted, for automated replies;
//! - `relay`: a TCP relay the browser tests cut to simulate an outage;
//! - `ws`, `raw_ws`: a WebSocket client, and hand-built RFC 6455 frames on a bare socket.

pub mod api;
pub mod browser;
pub mod checks;
pub mod db;
pub mod fake_model;
pub mod process;
pub mod raw_ws;
pub mod relay;
pub mod server;
pub mod ws;

pub use api::{Agent, Partner};
pub use db::{Backend, TestDb};
pub use server::Server;
pub use ws::{Ended, WsClient};

/// Runs an async test body `name(backend)` once per backend: `mod name { sqlite, postgres }`;
/// the PostgreSQL one returns at once unless FRONTDESK_TEST_BACKENDS names postgres (or is
/// unset). SQLite needs nothing installed, so it always runs.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::Backend::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if $crate::Backend::Postgres.enabled() {
                        super::$name($crate::Backend::Postgres).await
                    }
                }
            }
        )*
    };
}
