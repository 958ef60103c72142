//! Configuration: flags override environment variables (contract.md, "Process").

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "frontdesk", version, about = "Customer-support chat server")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `frontdesk` alone serves, with these options.
    #[command(flatten)]
    pub serve: ServeConfig,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the server (the default).
    Serve(ServeConfig),
}

/// Who may register partners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Registration {
    /// Anyone, as in the integration guide.
    Open,
    /// Only callers presenting the admin token.
    Admin,
}

#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address to listen on; port 0 picks a free one (it is logged).
    #[arg(long, env = "FRONTDESK_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,

    /// `sqlite://path/file.db` (created on first start) or `postgres://user@host/db`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://data/frontdesk.db"
    )]
    pub database_url: String,

    /// Bearer token for /api/admin/*; admin routes are off when unset.
    #[arg(long, env = "FRONTDESK_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// `open` (default) or `admin` (registering a partner needs the admin token).
    #[arg(
        long,
        env = "FRONTDESK_REGISTRATION",
        value_enum,
        default_value = "open"
    )]
    pub registration: Registration,

    /// Database connections per server instance.
    #[arg(long, env = "FRONTDESK_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: usize,

    /// HTTP worker threads; 0 means one per CPU core.
    #[arg(long, env = "FRONTDESK_WORKERS", default_value_t = 0)]
    pub workers: usize,

    /// Log format: `text` or `json`. Levels come from RUST_LOG (default `info`).
    #[arg(long, env = "FRONTDESK_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}
