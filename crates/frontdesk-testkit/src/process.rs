//! A server child process on loopback: started, its `listening on http://ADDR` line awaited,
//! its stderr drained into a log (so it never blocks on a full pipe), and stopped. The tests'
//! `Server` and the bench's `ServerProcess` are both this.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

/// The `frontdesk` binary the tests start: `FRONTDESK_BIN` or `CARGO_BIN_EXE_frontdesk` if
/// set, else `frontdesk` in the target folder the running test binary was built into
/// (`target/<profile>/deps/<test>` -> `target/<profile>/frontdesk`), where cargo builds it for
/// the server crate's integration tests.
pub fn frontdesk_binary() -> PathBuf {
    for variable in ["FRONTDESK_BIN", "CARGO_BIN_EXE_frontdesk"] {
        if let Some(path) = std::env::var_os(variable) {
            return PathBuf::from(path);
        }
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("locating the test binary: {e}"));
    let mut folder = exe.parent().map(PathBuf::from).unwrap_or_default();
    if folder.ends_with("deps") {
        folder.pop();
    }
    let binary = folder.join("frontdesk");
    assert!(
        binary.exists(),
        "no frontdesk binary at {} (build it with `cargo build -p frontdesk-server`, or set \
         FRONTDESK_BIN)",
        binary.display()
    );
    binary
}

/// What a process's log keeps.
#[derive(Debug, Clone, Default)]
pub struct LogPolicy {
    /// Keep only the last this many lines (`None`: all of them).
    pub tail: Option<usize>,
    /// Substrings whose occurrences are counted.
    pub watched: Vec<String>,
}

#[derive(Default)]
struct Log {
    lines: VecDeque<String>,
    warnings: u64,
    watched: Vec<(String, u64)>,
}

pub struct Process {
    name: String,
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<Log>>,
}

impl Process {
    /// Starts `command` (stdin and stdout null, stderr piped) and waits up to a minute for its
    /// `listening on http://ADDR` line.
    pub async fn spawn(name: &str, mut command: Command, policy: LogPolicy) -> Result<Self> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {name} ({command:?})"))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| anyhow!("{name}: no stderr pipe"))?;
        let log = Arc::new(Mutex::new(Log {
            watched: policy.watched.iter().map(|l| (l.clone(), 0)).collect(),
            ..Log::default()
        }));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&log);
        // Reads the bound address, then keeps draining stderr so the child never blocks on a
        // full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let _ = addr_tx.send(addr);
                }
                if let Ok(mut log) = sink.lock() {
                    if line.contains(" WARN ") || line.contains(" ERROR ") {
                        log.warnings += 1;
                    }
                    for (pattern, count) in &mut log.watched {
                        if line.contains(pattern.as_str()) {
                            *count += 1;
                        }
                    }
                    if policy.tail.is_some_and(|tail| log.lines.len() >= tail) {
                        log.lines.pop_front();
                    }
                    log.lines.push_back(line);
                }
            }
        });
        let waited =
            tokio::task::spawn_blocking(move || addr_rx.recv_timeout(Duration::from_secs(60)))
                .await?;
        let mut process = Self {
            name: name.to_owned(),
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
        };
        match waited.ok().and_then(|addr| addr.parse().ok()) {
            Some(addr) => {
                process.addr = addr;
                Ok(process)
            }
            None => {
                let log = process.log();
                process.kill();
                bail!("{name} did not report `listening on http://ADDR`:\n{log}")
            }
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What the log kept, one line each.
    pub fn log(&self) -> String {
        self.log
            .lock()
            .map(|log| log.lines.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    /// WARN/ERROR lines so far.
    pub fn warnings(&self) -> u64 {
        self.log.lock().map(|log| log.warnings).unwrap_or(0)
    }

    /// How often each watched substring appeared.
    pub fn watched(&self) -> Vec<(String, u64)> {
        self.log
            .lock()
            .map(|log| log.watched.clone())
            .unwrap_or_default()
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM without waiting.
    pub fn send_sigterm(&self) -> Result<()> {
        let pid = self.pid().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .context("kill -TERM")?;
        if !status.success() {
            bail!("kill -TERM {pid}: {status}");
        }
        Ok(())
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        self.child
            .wait()
            .with_context(|| format!("waiting for {}", self.name))
    }

    /// SIGKILL, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`; whether it exited by itself.
    pub async fn stop(&mut self, grace: Duration) -> bool {
        let _ = self.send_sigterm();
        let deadline = tokio::time::Instant::now() + grace;
        while tokio::time::Instant::now() < deadline {
            if !self.running() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.kill();
        false
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Never leave a server behind, whatever path the caller takes out.
        self.kill();
    }
}
