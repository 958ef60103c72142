//! Frontdesk's web layer: routes, authentication, error mapping and the server's lifecycle.
//! Business rules live in frontdesk-domain; storage in frontdesk-store.

pub mod admin_token;
pub mod agent_cli;
pub mod auth;
pub mod body_deadline;
pub mod client_ip;
pub mod config;
pub mod error;
pub mod extract;
pub mod key_cache;
pub mod limiter;
pub mod logging;
pub mod open_files;
pub mod password_gate;
pub mod realtime;
pub mod registration_limit;
pub mod request_guard;
pub mod routes;
pub mod server;
pub mod state;
