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

impl Cli {
    /// Parses the command line and environment, noting whether the admin token came from a
    /// flag (visible to anyone running `ps`), which clap's derive alone cannot tell.
    pub fn parse_args() -> Self {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Self::command().get_matches();
        let mut cli = Self::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
        let from_flag = |matches: &clap::ArgMatches| {
            matches.value_source("admin_token") == Some(clap::parser::ValueSource::CommandLine)
        };
        cli.serve.admin_token_on_command_line = from_flag(&matches);
        if let (Some(Command::Serve(config)), Some(("serve", sub))) =
            (cli.command.as_mut(), matches.subcommand())
        {
            config.admin_token_on_command_line = from_flag(sub);
        }
        cli
    }
}

// Parsed once at start and moved out at once: its size costs nothing.
#[allow(clippy::large_enum_variant)]
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

    /// Bearer token for /api/admin/*; admin routes are off when unset. Pass it in the
    /// environment or with --admin-token-file: as a flag it shows in `ps`.
    #[arg(long, env = "FRONTDESK_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// A file whose content (trailing newline trimmed) is the admin token.
    #[arg(
        long,
        env = "FRONTDESK_ADMIN_TOKEN_FILE",
        conflicts_with = "admin_token"
    )]
    pub admin_token_file: Option<std::path::PathBuf>,

    /// Set by `Cli::parse_args` when --admin-token was given on the command line (warned about).
    #[arg(skip)]
    pub admin_token_on_command_line: bool,

    /// Failed admin-token attempts allowed per client address per sign-in window.
    #[arg(long, env = "FRONTDESK_ADMIN_TOKEN_FAILURES", default_value_t = 10)]
    pub admin_token_failures: u32,

    /// `open` (default) or `admin` (registering a partner needs the admin token).
    #[arg(
        long,
        env = "FRONTDESK_REGISTRATION",
        value_enum,
        default_value = "open"
    )]
    pub registration: Registration,

    /// Partner registrations per client address per hour while registration is open (also the
    /// burst allowed at once).
    #[arg(long, env = "FRONTDESK_REGISTRATIONS_PER_HOUR", default_value_t = 20)]
    pub registrations_per_hour: u32,

    /// Sign-in attempts allowed per account and client address pair per window.
    #[arg(
        long,
        env = "FRONTDESK_SIGN_IN_PER_ACCOUNT_ADDRESS",
        default_value_t = 5
    )]
    pub sign_in_per_account_address: u32,

    /// Sign-in attempts allowed per client address per window, whatever the accounts.
    #[arg(long, env = "FRONTDESK_SIGN_IN_PER_ADDRESS", default_value_t = 20)]
    pub sign_in_per_address: u32,

    /// Failed sign-ins per account per window (from any address) after which each further
    /// attempt on it is delayed, doubling from 250 ms; never refused.
    #[arg(long, env = "FRONTDESK_SIGN_IN_PER_ACCOUNT", default_value_t = 20)]
    pub sign_in_per_account: u32,

    /// The longest delay a sign-in for a much-guessed account waits, in seconds.
    #[arg(long, env = "FRONTDESK_SIGN_IN_MAX_DELAY_SECS", default_value_t = 10.0)]
    pub sign_in_max_delay_secs: f64,

    /// The window the sign-in and admin-token counts are kept for, in seconds.
    #[arg(long, env = "FRONTDESK_SIGN_IN_WINDOW_SECS", default_value_t = 900)]
    pub sign_in_window_secs: u64,

    /// Password hashes (argon2id, about 19 MiB each) computed at once; 0 means one per CPU core.
    #[arg(long, env = "FRONTDESK_PASSWORD_HASHES", default_value_t = 0)]
    pub password_hashes: usize,

    /// Sign-ins that may wait for a hashing slot; beyond them the answer is 503 at once.
    #[arg(long, env = "FRONTDESK_PASSWORD_HASH_QUEUE", default_value_t = 16)]
    pub password_hash_queue: usize,

    /// Proxies (comma-separated IP addresses) whose `X-Forwarded-For` names the client; from
    /// any other peer the header is ignored and the peer address is the client's.
    #[arg(long, env = "FRONTDESK_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,

    /// Database connections per server instance.
    #[arg(long, env = "FRONTDESK_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: usize,

    /// PostgreSQL `statement_timeout` of every pooled connection, in milliseconds: a statement
    /// running longer fails (503); on SQLite, the longest a write waits for the instance's
    /// other writers.
    #[arg(
        long,
        env = "FRONTDESK_DB_STATEMENT_TIMEOUT_MS",
        default_value_t = 5_000
    )]
    pub db_statement_timeout_ms: u64,

    /// PostgreSQL `lock_timeout` of every pooled connection, in milliseconds: a write waiting
    /// longer for a row another session holds fails (503) and only writes to that row wait.
    #[arg(long, env = "FRONTDESK_DB_LOCK_TIMEOUT_MS", default_value_t = 1_000)]
    pub db_lock_timeout_ms: u64,

    /// SQLite busy timeout, in milliseconds: how long a write waits for another process that
    /// holds the database file's write lock before failing with 503.
    #[arg(
        long,
        env = "FRONTDESK_SQLITE_BUSY_TIMEOUT_MS",
        default_value_t = 2_000
    )]
    pub sqlite_busy_timeout_ms: u64,

    /// The longest a message append may take in all, queueing included, in milliseconds;
    /// beyond it the sender gets 503.
    #[arg(long, env = "FRONTDESK_APPEND_TIMEOUT_MS", default_value_t = 10_000)]
    pub append_timeout_ms: u64,

    /// Milliseconds a client has to send a request's head (line and headers); beyond it the
    /// connection is answered 408 and closed. Also bounds an idle keep-alive connection.
    #[arg(long, env = "FRONTDESK_HEAD_TIMEOUT_MS", default_value_t = 5_000)]
    pub head_timeout_ms: u64,

    /// Milliseconds a client has to send a request's body, from the end of its head; beyond
    /// it the request gets 408 and the connection is closed.
    #[arg(long, env = "FRONTDESK_BODY_TIMEOUT_MS", default_value_t = 10_000)]
    pub body_timeout_ms: u64,

    /// HTTP requests one client address may have in progress at once; more get 429 and the
    /// connection is closed. 0: no limit (behind a proxy every client shares its address).
    #[arg(
        long,
        env = "FRONTDESK_MAX_REQUESTS_PER_ADDRESS",
        default_value_t = 256
    )]
    pub max_requests_per_address: usize,

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

    /// Also let pages on `localhost`, `127.0.0.1` and `[::1]` call the partner and customer
    /// API from the browser, whatever the partner's domain (for developing a site locally).
    #[arg(
        long,
        env = "FRONTDESK_ALLOW_LOCALHOST_ORIGINS",
        default_value_t = false
    )]
    pub allow_localhost_origins: bool,
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

    #[command(flatten)]
    pub replies: crate::reply_config::ReplyConfig,
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
