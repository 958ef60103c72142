//! Frontdesk's web layer: routes, authentication, error mapping and the server's lifecycle.
//! Business rules live in frontdesk-domain; storage in frontdesk-store.

pub(crate) mod admin_token;
pub mod agent_cli;
pub(crate) mod app;
pub(crate) mod auth;
pub(crate) mod body_deadline;
pub(crate) mod browser;
pub(crate) mod client_ip;
pub mod config;
pub(crate) mod cors;
pub(crate) mod error;
pub(crate) mod extract;
pub(crate) mod head;
pub(crate) mod key_cache;
pub(crate) mod limiter;
pub mod logging;
pub(crate) mod open_files;
pub(crate) mod origins;
pub(crate) mod password_gate;
pub(crate) mod realtime;
pub(crate) mod registration_limit;
pub mod reply_config;
pub(crate) mod request_guard;
pub(crate) mod routes;
pub mod server;
pub(crate) mod state;
