//! Child processes under test (the `frontdesk` release binary and the baseline servers), and
//! what /proc says about them: CPU seconds and memory.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use frontdesk_testkit::process::{LogPolicy, Process};

/// Clock ticks per second of /proc/<pid>/stat. USER_HZ is 100 on every Linux architecture
/// this runs on (it is part of the /proc ABI, independent of the kernel's HZ).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU time and memory of one process at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcStats {
    /// User plus system CPU seconds since the process started.
    pub cpu_seconds: f64,
    /// Resident set size now (VmRSS), KiB.
    pub rss_kib: u64,
    /// Peak resident set size (VmHWM), KiB.
    pub hwm_kib: u64,
}

/// Reads /proc/<pid>/stat and /proc/<pid>/status; `pid` "self" reads this process.
pub fn proc_stats(pid: &str) -> Result<ProcStats> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name (field 2) may contain spaces: fields are counted after its ')'.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow!("unexpected /proc/{pid}/stat"))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) (utime, stime) are indexes 11 and 12 after the name.
    let ticks = |index: usize| -> Result<f64> {
        fields
            .get(index)
            .and_then(|value| value.parse::<f64>().ok())
            .ok_or_else(|| anyhow!("no field {index} in /proc/{pid}/stat"))
    };
    let cpu_seconds = (ticks(11)? + ticks(12)?) / TICKS_PER_SECOND;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse().ok())
            .unwrap_or(0)
    };
    Ok(ProcStats {
        cpu_seconds,
        rss_kib: kib("VmRSS:"),
        hwm_kib: kib("VmHWM:"),
    })
}

/// This process (the load generator).
pub fn own_stats() -> ProcStats {
    proc_stats("self").unwrap_or_default()
}

/// CPU seconds of every PostgreSQL process (the server's backends run the queries, on the
/// same two cores): what a PostgreSQL scenario costs beyond the Frontdesk process.
pub fn postgres_cpu_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str().map(str::to_owned))
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == "postgres")
        })
        .filter_map(|pid| proc_stats(&pid).ok())
        .map(|stats| stats.cpu_seconds)
        .sum()
}

/// Busy and total CPU time of the whole machine (/proc/stat), in ticks.
pub fn machine_ticks() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().next() else {
        return (0, 0);
    };
    // cpu user nice system idle iowait irq softirq steal ...
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

/// The last lines of a child's stderr kept, so failures can show it.
const TAIL_LINES: usize = 200;

/// A server child process listening on loopback: the test kit's launcher, which also counts
/// warnings and the lines that reveal trouble (a slow consumer cut off, a heartbeat missed).
pub struct ServerProcess {
    process: Process,
    pub addr: SocketAddr,
}

/// Server log lines that reveal trouble even when every request succeeded.
pub const WATCHED_LINES: [&str; 3] = ["outbound queue full", "no heartbeat", "batch failed"];

impl ServerProcess {
    /// Starts `command` (stderr piped) and waits for its `listening on http://ADDR` line.
    pub async fn start(name: &str, command: Command) -> Result<Self> {
        let policy = LogPolicy {
            tail: Some(TAIL_LINES),
            watched: WATCHED_LINES.iter().map(|l| l.to_string()).collect(),
        };
        let process = Process::spawn(name, command, policy).await?;
        Ok(Self {
            addr: process.addr,
            process,
        })
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn base_url(&self) -> String {
        self.process.base_url()
    }

    pub fn stats(&self) -> ProcStats {
        proc_stats(&self.pid().to_string()).unwrap_or_default()
    }

    /// The last lines of its stderr.
    pub fn log_tail(&self) -> String {
        self.process.log()
    }

    /// WARN/ERROR lines so far.
    pub fn warnings(&self) -> u64 {
        self.process.warnings()
    }

    /// How often each of `WATCHED_LINES` appeared.
    pub fn watched(&self) -> Vec<(String, u64)> {
        self.process.watched()
    }

    /// Whether it is still running (a crash mid-scenario is an error of that scenario).
    pub fn running(&mut self) -> bool {
        self.process.running()
    }

    /// SIGTERM, then SIGKILL if it has not exited within 10 s (the server closes WebSockets
    /// and drains requests first; thousands of sockets can take a moment). The kit's `Drop`
    /// kills it on any other way out.
    pub async fn stop(mut self) {
        if !self.process.stop(Duration::from_secs(10)).await {
            eprintln!(
                "warning: {} did not exit within 10 s of SIGTERM; killed",
                self.process.name()
            );
        }
    }
}

/// The admin token of the servers the bench starts (loopback only), with which it registers
/// its partner.
pub const BENCH_ADMIN_TOKEN: &str = "frontdesk-bench-admin-token";

/// The `frontdesk` command for one database: loopback port 0, warnings only except the line
/// that tells the address, a WebSocket queue deep enough for the fan-out scenario, and no
/// inbound frame rate limit (the load clients send far faster than any real one). It runs as
/// production should, with registration in `admin` mode (so the start-up log has no
/// open-registration warning to count, and no registration limit applies).
pub fn frontdesk_command(binary: &Path, database_url: &str, workdir: &Path) -> Command {
    let mut command = Command::new(binary);
    command
        .args(["--bind", "127.0.0.1:0", "--database-url", database_url])
        .current_dir(workdir)
        .env("RUST_LOG", "warn,frontdesk_server=info")
        .env("FRONTDESK_WS_QUEUE", "4096")
        .env("FRONTDESK_REGISTRATION", "admin")
        .env("FRONTDESK_ADMIN_TOKEN", BENCH_ADMIN_TOKEN)
        // The load generator is one address with far more requests in flight than any client.
        .env("FRONTDESK_MAX_REQUESTS_PER_ADDRESS", "0")
        .env("FRONTDESK_WS_RATE", "1000000000")
        .env("FRONTDESK_WS_BURST", "1000000000")
        // The connections scenario holds tens of thousands of idle sockets for one partner:
        // far beyond the per-partner and per-instance caps, and their credential re-checks
        // would be load of their own.
        .env("FRONTDESK_WS_MAX_PER_CUSTOMER", "1000000")
        .env("FRONTDESK_WS_MAX_PER_AGENT", "1000000")
        .env("FRONTDESK_WS_MAX_PER_PARTNER", "1000000")
        .env("FRONTDESK_WS_MAX_CONNECTIONS", "1000000")
        .env("FRONTDESK_WS_RECHECK_SECS", "3600")
        .env_remove("DATABASE_URL")
        .env_remove("FRONTDESK_BIND")
        .env_remove("FRONTDESK_ADMIN_TOKEN_FILE")
        .env_remove("FRONTDESK_LLM_URL");
    command
}

/// A baseline server: this binary's own subcommand in a child process, so the load generator
/// never shares a process (or a runtime) with what it measures.
pub fn baseline_command(subcommand: &str) -> Result<Command> {
    let exe = std::env::current_exe().context("locating frontdesk-bench itself")?;
    let mut command = Command::new(exe);
    command.args([subcommand, "--bind", "127.0.0.1:0"]);
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_stats() {
        let stats = proc_stats("self").expect("/proc/self is readable");
        assert!(stats.rss_kib > 0);
        assert!(stats.hwm_kib >= stats.rss_kib);
        assert!(stats.cpu_seconds >= 0.0);
    }
}
