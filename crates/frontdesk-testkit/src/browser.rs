//! Real headless Chromium for the browser tests (the console's and the widget's): where Debian
//! puts Chromium and its driver, a chromedriver child process, and a fresh browser session.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};

/// Where Debian puts Chromium and its driver (overridable for other systems).
pub struct Browser {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
}

impl Browser {
    /// `None` when FRONTDESK_TEST_BROWSER=skip; a missing browser otherwise fails the test.
    /// `what` names the test in the messages.
    pub fn locate(what: &str) -> Option<Self> {
        if std::env::var("FRONTDESK_TEST_BROWSER").as_deref() == Ok("skip") {
            eprintln!("FRONTDESK_TEST_BROWSER=skip: the {what} browser test was skipped");
            return None;
        }
        let path = |variable: &str, default: &str| {
            PathBuf::from(std::env::var(variable).unwrap_or_else(|_| default.to_owned()))
        };
        let browser = Self {
            chromium: path("FRONTDESK_TEST_CHROMIUM", "/usr/bin/chromium"),
            chromedriver: path("FRONTDESK_TEST_CHROMEDRIVER", "/usr/bin/chromedriver"),
        };
        for binary in [&browser.chromium, &browser.chromedriver] {
            assert!(
                binary.exists(),
                "{} is missing: the {what} browser test needs Chromium and its driver. Install \
                 them with `sudo apt-get install chromium chromium-driver` (Debian/Ubuntu; .ci/run \
                 does this), point FRONTDESK_TEST_CHROMIUM / FRONTDESK_TEST_CHROMEDRIVER at \
                 them, or set FRONTDESK_TEST_BROWSER=skip to skip this test.",
                binary.display()
            );
        }
        Some(browser)
    }
}

/// A chromedriver child process on a free loopback port, killed with every Chromium it started
/// when dropped.
pub struct ChromeDriver {
    child: Child,
    pub url: String,
}

impl ChromeDriver {
    pub async fn start(browser: &Browser) -> Self {
        use std::os::unix::process::CommandExt;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .unwrap_or_else(|e| panic!("no free port: {e}"));
        let child = Command::new(&browser.chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", browser.chromedriver.display()));
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = format!("{}/status", driver.url);
        loop {
            let ready = match reqwest::get(&status).await {
                Ok(response) => response
                    .json::<Value>()
                    .await
                    .is_ok_and(|body| body["value"]["ready"] == true),
                Err(_) => false,
            };
            if ready {
                return driver;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A new headless Chromium session with a fresh profile (returned: it must outlive the
    /// session), a 1280x800 window and English UI.
    pub async fn session(&self, browser: &Browser) -> (Client, tempfile::TempDir) {
        self.session_with(browser, &[]).await
    }

    /// `session` with more Chromium command-line flags.
    pub async fn session_with(
        &self,
        browser: &Browser,
        flags: &[&str],
    ) -> (Client, tempfile::TempDir) {
        let profile = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--lang=en-US".to_owned(),
            "--window-size=1280,800".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        args.extend(flags.iter().map(|flag| (*flag).to_owned()));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".to_owned(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({"binary": browser.chromium, "args": args}),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("chromedriver refused a session: {e}"));
        (client, profile)
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // The whole group: chromedriver and every Chromium process it started.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

/// `<target>/<name>/` (created): CARGO_TARGET_DIR, else the workspace's target/.
pub fn artefact_dir(name: &str) -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    };
    let dir = target.join(name);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}
