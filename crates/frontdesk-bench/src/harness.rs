//! What every scenario shares: a fresh database with the release server on it, a partner
//! registered through the API, and the measurement window (CPU seconds of server and load
//! generator, peak memory).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;

use crate::api::Api;
use crate::config::Sizes;
use crate::db::{Backend, FreshDb};
use crate::report::Row;
use crate::server::{
    frontdesk_command, machine_ticks, own_stats, postgres_cpu_seconds, ServerProcess,
};

/// Run-wide settings every scenario reads.
pub struct Ctx {
    pub sizes: Sizes,
    pub frontdesk: PathBuf,
    pub postgres_admin_url: String,
    /// Backend-independent baselines measured at the start of the run.
    pub baselines: Vec<Row>,
}

impl Ctx {
    pub fn baseline(&self, name: &str) -> Option<&Row> {
        self.baselines.iter().find(|row| row.name == name)
    }
}

/// A fresh database, the server on it, and a registered partner.
pub struct Deployment {
    pub db: FreshDb,
    pub server: ServerProcess,
    pub api: Api,
    /// The partner's API key.
    pub key: String,
}

impl Deployment {
    /// `env`: extra server environment (heartbeat timings for the connections scenario).
    pub async fn start(ctx: &Ctx, backend: Backend, env: &[(&str, String)]) -> Result<Self> {
        let db = FreshDb::create(backend, &ctx.postgres_admin_url).await?;
        let mut command = frontdesk_command(&ctx.frontdesk, &db.url, db.dir.path());
        for (key, value) in env {
            command.env(key, value);
        }
        let server = ServerProcess::start("frontdesk", command).await?;
        let api = Api::new(server.base_url())?;
        let key = api.register().await?;
        progress(
            backend.name(),
            "server",
            format!("listening on {}", server.addr),
        );
        Ok(Self {
            db,
            server,
            api,
            key,
        })
    }

    /// Stops the server and drops the database. A server that died during the scenario is an
    /// error of that scenario; server log lines that reveal trouble go into the row.
    pub async fn finish(mut self, row: &mut Row) {
        if !self.server.running() {
            row.error(
                1,
                format!(
                    "the server exited during the run:\n{}",
                    self.server.log_tail()
                ),
            );
        }
        row.extra("server_log_warnings", self.server.warnings());
        for (pattern, count) in self.server.watched() {
            if count > 0 {
                row.extra(&format!("server_log `{pattern}`"), count);
            }
        }
        self.server.stop().await;
        self.db.remove().await;
        progress(&row.backend, &row.name, "server stopped, database removed");
    }
}

/// CPU seconds of both processes and wall time over the measured phase.
pub struct Window {
    started: Instant,
    server_cpu: f64,
    client_cpu: f64,
    postgres_cpu: f64,
    machine: (u64, u64),
}

impl Window {
    pub fn start(server: &ServerProcess) -> Self {
        Self {
            started: Instant::now(),
            server_cpu: server.stats().cpu_seconds,
            client_cpu: own_stats().cpu_seconds,
            postgres_cpu: postgres_cpu_seconds(),
            machine: machine_ticks(),
        }
    }

    /// Fills the row's CPU, memory and measured time; returns the measured seconds.
    pub fn finish(&self, server: &ServerProcess, row: &mut Row) -> f64 {
        let elapsed = self.started.elapsed().as_secs_f64();
        let stats = server.stats();
        row.server_cpu_seconds = stats.cpu_seconds - self.server_cpu;
        row.server_peak_rss_mib = stats.hwm_kib as f64 / 1024.0;
        row.client_cpu_seconds = own_stats().cpu_seconds - self.client_cpu;
        row.measured_seconds = elapsed;
        row.extra(
            "server_cpu_utilisation",
            format!("{:.0}%", 100.0 * row.server_cpu_seconds / elapsed.max(1e-9)),
        );
        if row.backend == "postgres" {
            row.extra(
                "postgres_cpu_seconds",
                format!("{:.1}", postgres_cpu_seconds() - self.postgres_cpu),
            );
        }
        // Whether the machine itself was the limit: near 100% means both cores were busy
        // (server, load generator, PostgreSQL and whatever else runs here).
        let (busy, total) = machine_ticks();
        let (busy0, total0) = self.machine;
        let share = busy.saturating_sub(busy0) as f64 / total.saturating_sub(total0).max(1) as f64;
        row.extra("machine_cpu_busy", format!("{:.0}%", 100.0 * share));
        elapsed
    }
}

/// Prints progress to stderr (stdout carries the final table).
pub fn progress(backend: &str, scenario: &str, what: impl std::fmt::Display) {
    let elapsed = crate::stats::now_ns() as f64 / 1e9;
    eprintln!("[{elapsed:>6.1} s {backend:>8}] {scenario}: {what}");
}
