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
    /// Manage support agents.
    #[command(subcommand)]
    Agent(AgentCommand),
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Create an agent and print it as JSON; the password is read from standard input.
    Create(AgentCreate),
}

#[derive(Debug, Clone, Args)]
pub struct AgentCreate {
    #[arg(long)]
    pub email: String,
    #[arg(long)]
    pub name: String,
    /// May create agents and close any conversation.
    #[arg(long)]
    pub admin: bool,
    /// Read the password from standard input (required, so it never shows in `ps`).
    #[arg(long, required = true)]
    pub password_stdin: bool,
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://data/frontdesk.db"
    )]
    pub database_url: String,
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

    /// Seconds between server pings on each WebSocket.
    #[arg(long, env = "FRONTDESK_WS_PING_SECS", default_value_t = 15.0)]
    pub ws_ping_secs: f64,

    /// A WebSocket silent for this many seconds is dropped.
    #[arg(long, env = "FRONTDESK_WS_TIMEOUT_SECS", default_value_t = 45.0)]
    pub ws_timeout_secs: f64,

    /// Frames a WebSocket may have queued before it counts as too slow and is disconnected
    /// (at least 128, the most events one commit can produce).
    #[arg(long, env = "FRONTDESK_WS_QUEUE", default_value_t = 256)]
    pub ws_queue: usize,

    /// Frames per second each WebSocket may send on average; beyond it they are refused
    /// with a `rate_limited` error, and a client that keeps flooding is closed with 1008.
    #[arg(long, env = "FRONTDESK_WS_RATE", default_value_t = 20.0)]
    pub ws_rate: f64,

    /// Frames a WebSocket may send at once, above the average rate.
    #[arg(long, env = "FRONTDESK_WS_BURST", default_value_t = 100)]
    pub ws_burst: u32,

    /// Per connection and conversation, repeated `typing` frames (same `isTyping`) are
    /// forwarded at most once per this many milliseconds; a change always passes.
    #[arg(long, env = "FRONTDESK_WS_TYPING_INTERVAL_MS", default_value_t = 1000)]
    pub ws_typing_interval_ms: u64,

    /// Seconds a frame may wait for a WebSocket that does not read before that connection
    /// is dropped.
    #[arg(long, env = "FRONTDESK_WS_WRITE_TIMEOUT_SECS", default_value_t = 10.0)]
    pub ws_write_timeout_secs: f64,

    /// Log format: `text` or `json`. Levels come from RUST_LOG (default `info`).
    #[arg(long, env = "FRONTDESK_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}
