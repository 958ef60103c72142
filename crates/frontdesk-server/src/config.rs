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

    /// WebSockets one customer may hold open on this instance (beyond: 429 before the upgrade).
    #[arg(long, env = "FRONTDESK_WS_MAX_PER_CUSTOMER", default_value_t = 32)]
    pub ws_max_per_customer: usize,

    /// WebSockets one agent may hold open on this instance.
    #[arg(long, env = "FRONTDESK_WS_MAX_PER_AGENT", default_value_t = 32)]
    pub ws_max_per_agent: usize,

    /// Customer WebSockets of one partner (all its customers together) on this instance.
    #[arg(long, env = "FRONTDESK_WS_MAX_PER_PARTNER", default_value_t = 20_000)]
    pub ws_max_per_partner: usize,

    /// WebSockets this instance holds in all.
    #[arg(long, env = "FRONTDESK_WS_MAX_CONNECTIONS", default_value_t = 50_000)]
    pub ws_max_connections: usize,

    /// Seconds between re-checks of each WebSocket's credential against the database (jittered
    /// from half to one and a half times this); bounds how long a lost revocation signal goes
    /// unnoticed.
    #[arg(long, env = "FRONTDESK_WS_RECHECK_SECS", default_value_t = 60.0)]
    pub ws_recheck_secs: f64,

    /// Seconds a customer session token (`POST /api/partner/sessions`) lasts.
    #[arg(
        long,
        env = "FRONTDESK_CUSTOMER_SESSION_SECS",
        default_value_t = frontdesk_domain::limits::CUSTOMER_SESSION_SECONDS
    )]
    pub customer_session_secs: i64,

    /// Log format: `text` or `json`. Levels come from RUST_LOG (default `info`).
    #[arg(long, env = "FRONTDESK_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl ServeConfig {
    /// The WebSocket connection caps.
    pub fn ws_caps(&self) -> crate::realtime::admission::Caps {
        crate::realtime::admission::Caps {
            per_customer: self.ws_max_per_customer,
            per_agent: self.ws_max_per_agent,
            per_partner: self.ws_max_per_partner,
            total: self.ws_max_connections,
        }
    }
}
