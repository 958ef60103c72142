//! Command line and the size of every scenario in full and quick mode.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "frontdesk-bench",
    about = "Load generator for Frontdesk: starts the release server on fresh databases, \
             measures it and its baselines, writes results.json, results.md and chart.svg"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Internal>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Baselines run in child processes of this same binary.
#[derive(Debug, Subcommand)]
pub enum Internal {
    /// Baseline (a): a bare actix-web server answering the message routes without storage.
    #[command(name = "baseline-http")]
    Http(BindArgs),
    /// Baseline (c): a bare actix-ws echo server.
    #[command(name = "baseline-echo")]
    Echo(BindArgs),
    /// Baseline (b): the store's append loop, no HTTP; prints one JSON line.
    #[command(name = "baseline-store")]
    Store(StoreArgs),
}

#[derive(Debug, Args)]
pub struct BindArgs {
    #[arg(long, default_value = "127.0.0.1:0")]
    pub bind: String,
}

#[derive(Debug, Args)]
pub struct StoreArgs {
    #[arg(long)]
    pub database_url: String,
    #[arg(long, default_value_t = 2_000)]
    pub conversations: usize,
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    #[arg(long, default_value_t = 1.0)]
    pub warmup_secs: f64,
    #[arg(long, default_value_t = 5.0)]
    pub secs: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    Sqlite,
    Postgres,
    Both,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Where results.json, results.md and chart.svg go.
    #[arg(long, default_value = "target/bench")]
    pub out: PathBuf,
    /// Scaled-down sizes: both backends in under two minutes on two cores.
    #[arg(long)]
    pub quick: bool,
    /// Comma-separated scenarios: ingest,e2e,connections,fanout,reconnect,history.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    #[arg(long, value_enum, default_value = "both")]
    pub backend: BackendChoice,
    /// The `frontdesk` binary; default: next to this one (target/release/frontdesk).
    #[arg(long)]
    pub frontdesk: Option<PathBuf>,
    /// A PostgreSQL database to create the bench databases from. Default: BENCH_POSTGRES_URL,
    /// else DATABASE_URL if it is PostgreSQL, else the local server.
    #[arg(long)]
    pub postgres_url: Option<String>,
}

pub const SCENARIOS: [&str; 7] = [
    "ingest",
    "e2e",
    "connections",
    "fanout",
    "reconnect",
    "history",
    "replies",
];

/// How big each scenario is.
#[derive(Debug, Clone)]
pub struct Sizes {
    pub mode: &'static str,
    pub ingest_clients: usize,
    pub ingest_conversations: usize,
    pub ingest_warmup_secs: f64,
    pub ingest_secs: f64,
    pub e2e_samples: u64,
    /// Timed messages per second on the measured conversation.
    pub e2e_sample_rate: f64,
    pub e2e_background_rate: f64,
    pub e2e_background_conversations: usize,
    pub idle_connections: usize,
    /// What the issue asks for; `idle_connections` may be capped by the open-file limit.
    pub idle_requested: usize,
    pub idle_hold_secs: f64,
    pub idle_ping_secs: f64,
    pub idle_timeout_secs: f64,
    pub fanout_conversations: usize,
    pub fanout_agents: usize,
    pub fanout_rate: f64,
    pub fanout_secs: f64,
    pub reconnect_clients: usize,
    pub reconnect_window_secs: f64,
    pub reconnect_live_rate: f64,
    pub history_small: u64,
    pub history_large: u64,
    pub history_conversations: usize,
    /// Seconds of queries on each database size.
    pub history_secs: f64,
    pub history_clients: usize,
    pub history_page: usize,
    /// Waiting conversations the paced POST load of the replies scenario writes into.
    pub replies_conversations: usize,
    pub replies_post_rate: f64,
    pub replies_post_secs: f64,
    /// Conversations that get a message at once, for the reply latency.
    pub replies_concurrent: usize,
}

impl Sizes {
    /// Caps the idle connections to what `open_files` descriptors allow (the server holds two
    /// per connection, its socket and the duplicate it tears the connection down with, and this
    /// process one, plus their own files); the note says so.
    pub fn fit_open_files(&mut self, open_files: u64) -> Option<String> {
        let room = usize::try_from(open_files.saturating_sub(1_000) / 2).unwrap_or(usize::MAX);
        if self.idle_connections <= room {
            return None;
        }
        self.idle_connections = room;
        Some(format!(
            "idle connections capped at {room} of {}: the open-file limit is {open_files} and \
             cannot be raised here (setrlimit refused)",
            self.idle_requested
        ))
    }

    /// The sizes.
    pub fn full() -> Self {
        Self {
            mode: "full",
            ingest_clients: 64,
            ingest_conversations: 2_000,
            ingest_warmup_secs: 2.0,
            ingest_secs: 20.0,
            e2e_samples: 5_000,
            e2e_sample_rate: 200.0,
            e2e_background_rate: 1_000.0,
            e2e_background_conversations: 200,
            idle_connections: 50_000,
            idle_requested: 50_000,
            idle_hold_secs: 20.0,
            idle_ping_secs: 5.0,
            idle_timeout_secs: 15.0,
            fanout_conversations: 5_000,
            fanout_agents: 50,
            fanout_rate: 5_000.0,
            fanout_secs: 15.0,
            reconnect_clients: 10_000,
            reconnect_window_secs: 1.0,
            reconnect_live_rate: 1_000.0,
            history_small: 10_000,
            history_large: 1_000_000,
            history_conversations: 100,
            history_secs: 10.0,
            history_clients: 8,
            history_page: 50,
            replies_conversations: 200,
            replies_post_rate: 100.0,
            replies_post_secs: 10.0,
            replies_concurrent: 500,
        }
    }

    /// Small enough for both backends in under two minutes on two cores.
    pub fn quick() -> Self {
        Self {
            mode: "quick",
            ingest_warmup_secs: 0.5,
            ingest_secs: 3.0,
            e2e_samples: 500,
            e2e_sample_rate: 250.0,
            e2e_background_conversations: 50,
            idle_connections: 2_000,
            idle_requested: 2_000,
            idle_hold_secs: 3.5,
            idle_ping_secs: 1.0,
            idle_timeout_secs: 3.0,
            fanout_conversations: 200,
            fanout_agents: 2,
            fanout_rate: 500.0,
            fanout_secs: 3.0,
            reconnect_clients: 500,
            reconnect_live_rate: 500.0,
            history_small: 10_000,
            history_large: 100_000,
            history_secs: 1.5,
            replies_post_secs: 3.0,
            replies_concurrent: 500,
            ..Self::full()
        }
    }
}
