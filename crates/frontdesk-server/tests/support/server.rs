//! The real `frontdesk` binary, started on a free loopback port.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::db::TestDb;

pub struct Server {
    child: Child,
    database_url: String,
    pub base: String,
    pub client: reqwest::Client,
    log: Arc<Mutex<Vec<String>>>,
}

/// A signed-in agent.
#[derive(Debug, Clone)]
pub struct Agent {
    pub id: i64,
    pub token: String,
}

impl Agent {
    pub fn client_id(&self) -> String {
        format!("agent-{}", self.id)
    }
}

/// A registered partner.
#[derive(Debug, Clone)]
pub struct Partner {
    pub id: String,
    pub key: String,
}

impl Server {
    pub async fn start(db: &TestDb) -> Self {
        Self::start_with(db, &[]).await
    }

    /// Starts the binary with extra environment variables, and waits until it listens.
    pub async fn start_with(db: &TestDb, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_frontdesk"));
        command
            .args(["--bind", "127.0.0.1:0", "--database-url", &db.url])
            .current_dir(db.dir.path())
            .env("RUST_LOG", "info")
            .env_remove("FRONTDESK_ADMIN_TOKEN")
            .env_remove("FRONTDESK_REGISTRATION")
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start frontdesk: {e}"));
        let stderr = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&log);
        // Reads the log for the bound address, then keeps draining it so the server never
        // blocks on a full pipe.
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
                if let Ok(mut lines) = sink.lock() {
                    lines.push(line);
                }
            }
        });
        let addr =
            tokio::task::spawn_blocking(move || addr_rx.recv_timeout(Duration::from_secs(60)))
                .await
                .ok()
                .and_then(Result::ok);
        let Some(addr) = addr else {
            let _ = child.kill();
            let lines = log.lock().map(|l| l.join("\n")).unwrap_or_default();
            panic!("frontdesk did not start listening:\n{lines}");
        };
        Self {
            child,
            database_url: db.url.clone(),
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            log,
        }
    }

    /// SIGKILL: no chance to flush anything that was not already durable.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.child
            .wait()
            .unwrap_or_else(|e| panic!("waiting for frontdesk: {e}"))
    }

    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// A panic in a worker drops connections; no test should ever cause one.
    pub fn assert_no_panics(&self) {
        let log = self.log();
        assert!(!log.contains("panicked"), "the server panicked:\n{log}");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request with an optional bearer token and JSON body; returns status and JSON.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e:?}\nserver log:\n{}", self.log()));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{path} answered {status} with non-JSON {text:?}: {e}"))
        };
        (status, json)
    }

    /// Sends raw bytes as the body (for malformed JSON).
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, self.url(path))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e:?}\nserver log:\n{}", self.log()));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{path} answered {status} with non-JSON {text:?}: {e}"));
        (status, json)
    }

    /// Creates an agent with the real CLI (`frontdesk agent create`), then signs it in.
    pub async fn agent(&self, email: &str, admin: bool) -> Agent {
        let password = "a long enough password";
        let mut command = Command::new(env!("CARGO_BIN_EXE_frontdesk"));
        command
            .args([
                "agent",
                "create",
                "--email",
                email,
                "--name",
                "Test Agent",
                "--password-stdin",
            ])
            .env("DATABASE_URL", &self.database_url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if admin {
            command.arg("--admin");
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("agent create: {e}"));
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            let _ = writeln!(stdin, "{password}");
        }
        let output = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("agent create: {e}"));
        assert!(
            output.status.success(),
            "agent create failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let created: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("agent create printed no JSON: {e}"));
        let (status, session) = self
            .call(
                Method::POST,
                "/api/agent/login",
                None,
                Some(&json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{session}");
        Agent {
            id: created["id"]
                .as_i64()
                .unwrap_or_else(|| panic!("no id in {created}")),
            token: session["token"].as_str().unwrap_or_default().to_owned(),
        }
    }

    /// A customer session token.
    pub async fn session(&self, partner: &Partner, customer: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/partner/sessions",
                Some(&partner.key),
                Some(&json!({"customerId": customer})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().unwrap_or_default().to_owned()
    }

    pub async fn register(&self, name: &str) -> Partner {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/partner/register",
                None,
                Some(&json!({ "name": name, "domain": "example.com" })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        Partner {
            id: body["partnerId"].as_str().unwrap_or_default().to_owned(),
            key: body["apiKey"].as_str().unwrap_or_default().to_owned(),
        }
    }

    /// Creates a conversation and returns its id.
    pub async fn conversation(&self, partner: &Partner, customer: &str) -> i64 {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/partner/conversations",
                Some(&partner.key),
                Some(&json!({ "customerId": customer })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("no id in {body}"))
    }

    /// Posts a customer message and returns the stored message.
    pub async fn say(
        &self,
        partner: &Partner,
        conversation: i64,
        customer: &str,
        text: &str,
    ) -> Value {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/partner/messages",
                Some(&partner.key),
                Some(&json!({
                    "conversationId": conversation,
                    "senderId": customer,
                    "content": text,
                    "isFromAgent": false
                })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// The whole history, paged with `after` (one page holds at most 1,000).
    pub async fn history(&self, partner: &Partner, conversation: i64) -> Vec<Value> {
        let mut all: Vec<Value> = Vec::new();
        loop {
            let after = all.last().and_then(|m| m["id"].as_i64()).unwrap_or(0);
            let (status, body) = self
                .call(
                    Method::GET,
                    &format!("/api/partner/messages/{conversation}?after={after}"),
                    Some(&partner.key),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let page = body
                .as_array()
                .cloned()
                .unwrap_or_else(|| panic!("not an array: {body}"));
            let full = page.len() == 1_000;
            all.extend(page);
            if !full {
                return all;
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
