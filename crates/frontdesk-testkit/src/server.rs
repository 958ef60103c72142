//! The real `frontdesk` binary, started on a free loopback port, with the API calls the tests
//! make through it (each asserting the status the guide documents).

use std::process::Command;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::api::{create_agent_with_cli, Api, NewAgent};
pub use crate::api::{Agent, Partner};
use crate::db::TestDb;
use crate::process::{frontdesk_binary, LogPolicy, Process};

pub struct Server {
    process: Process,
    database_url: String,
    pub base: String,
    pub client: reqwest::Client,
    api: Api,
}

impl Server {
    pub async fn start(db: &TestDb) -> Self {
        Self::start_with(db, &[]).await
    }

    /// Starts the binary with extra environment variables, and waits until it listens.
    pub async fn start_with(db: &TestDb, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(frontdesk_binary());
        command
            .args(["--bind", "127.0.0.1:0", "--database-url", &db.url])
            .current_dir(db.dir.path())
            .env("RUST_LOG", "info")
            .env_remove("FRONTDESK_ADMIN_TOKEN")
            .env_remove("FRONTDESK_REGISTRATION")
            .env_remove("DATABASE_URL")
            // Off unless a test turns it on: other tests' histories hold only what they sent.
            .env("FRONTDESK_AUTOMATED_REPLIES", "off")
            .env_remove("FRONTDESK_LLM_URL")
            .env_remove("FRONTDESK_LLM_API_KEY");
        for (key, value) in env {
            command.env(key, value);
        }
        // The whole log is kept: a few tests assert on it.
        let process = Process::spawn("frontdesk", command, LogPolicy::default())
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        let base = process.base_url();
        let client = reqwest::Client::new();
        Self {
            process,
            database_url: db.url.clone(),
            api: Api::new(base.clone(), client.clone()),
            base,
            client,
        }
    }

    /// SIGKILL: no chance to flush anything that was not already durable.
    pub fn kill(mut self) {
        self.process.kill();
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.send_sigterm();
        self.process.wait().unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// SIGTERM without waiting: requests the test has in flight meet the shutdown.
    pub fn send_sigterm(&self) {
        self.process
            .send_sigterm()
            .unwrap_or_else(|e| panic!("{e:#}"));
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The server's resident memory now, in KiB (`VmRSS` of /proc/<pid>/status): what the
    /// memory bounds under attack are asserted on.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .unwrap_or_else(|e| panic!("reading the server's /proc status: {e}"));
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in /proc status:\n{status}"))
    }

    /// The address the server listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.process.addr
    }

    pub fn log(&self) -> String {
        self.process.log()
    }

    /// The log once it holds `needle`, or as it is after `wait`: a thread drains the server's
    /// stderr, so a line written just before a frame the test saw may not be in `log()` yet.
    pub async fn log_once_it_has(&self, needle: &str, wait: std::time::Duration) -> String {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let log = self.log();
            if log.contains(needle) || tokio::time::Instant::now() >= deadline {
                return log;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
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
        self.api
            .request(method, path, token, body)
            .await
            .unwrap_or_else(|e| panic!("{e:#}\nserver log:\n{}", self.log()))
    }

    /// Sends raw bytes as the body (for malformed JSON).
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let request = self
            .client
            .request(method, self.url(path))
            .header("content-type", "application/json")
            .body(body);
        self.api
            .send(request, path, token, false)
            .await
            .unwrap_or_else(|e| panic!("{e:#}\nserver log:\n{}", self.log()))
    }

    /// Like `call`, but asserts the status is `expected`; returns the JSON body.
    async fn call_expecting(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        expected: StatusCode,
    ) -> Value {
        let (status, body) = self.call(method, path, token, body).await;
        assert_eq!(status, expected, "{path}: {body}");
        body
    }

    /// Creates an agent with the real CLI (`frontdesk agent create`), then signs it in.
    pub async fn agent(&self, email: &str, admin: bool) -> Agent {
        let password = "a long enough password";
        let new = NewAgent {
            email,
            name: "Test Agent",
            password,
            admin,
        };
        let id = create_agent_with_cli(&frontdesk_binary(), &self.database_url, &new)
            .unwrap_or_else(|e| panic!("{e:#}"));
        let session = self
            .call_expecting(
                Method::POST,
                "/api/agent/login",
                None,
                Some(&json!({"email": email, "password": password})),
                StatusCode::OK,
            )
            .await;
        Agent {
            id,
            token: session["token"].as_str().unwrap_or_default().to_owned(),
        }
    }

    /// A customer session token.
    pub async fn session(&self, partner: &Partner, customer: &str) -> String {
        let body = self
            .for_customer("/api/partner/sessions", partner, customer)
            .await;
        body["token"].as_str().unwrap_or_default().to_owned()
    }

    pub async fn register(&self, name: &str) -> Partner {
        let body = json!({ "name": name, "domain": "example.com" });
        let body = self.created("/api/partner/register", None, &body).await;
        Partner {
            id: body["partnerId"].as_str().unwrap_or_default().to_owned(),
            key: body["apiKey"].as_str().unwrap_or_default().to_owned(),
        }
    }

    /// Creates a conversation and returns its id.
    pub async fn conversation(&self, partner: &Partner, customer: &str) -> i64 {
        let body = self
            .for_customer("/api/partner/conversations", partner, customer)
            .await;
        body["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("no id in {body}"))
    }

    /// Posts `message` to `/api/partner/messages` with `token`, asserts 201, returns the message.
    pub async fn post_message(&self, token: &str, message: &Value) -> Value {
        self.created("/api/partner/messages", Some(token), message)
            .await
    }

    /// Posts `message` to `/api/partner/messages` with `token`; the status is the caller's to
    /// check (for tests about the answer itself).
    pub async fn send_message(&self, token: &str, message: &Value) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            "/api/partner/messages",
            Some(token),
            Some(message),
        )
        .await
    }

    /// POSTs `{"customerId": customer}` to `path` with the partner's key, asserts 201.
    async fn for_customer(&self, path: &str, partner: &Partner, customer: &str) -> Value {
        let body = json!({ "customerId": customer });
        self.created(path, Some(&partner.key), &body).await
    }

    /// POSTs `body` to `path`, asserts 201, returns the created resource.
    async fn created(&self, path: &str, token: Option<&str>, body: &Value) -> Value {
        self.call_expecting(Method::POST, path, token, Some(body), StatusCode::CREATED)
            .await
    }

    /// Posts a customer message and returns the stored message.
    pub async fn say(
        &self,
        partner: &Partner,
        conversation: i64,
        customer: &str,
        text: &str,
    ) -> Value {
        self.post_message(
            &partner.key,
            &json!({
                "conversationId": conversation,
                "senderId": customer,
                "content": text,
                "isFromAgent": false
            }),
        )
        .await
    }

    /// PATCHes a customer's profile with the partner's key, asserts 200, returns the customer.
    pub async fn patch_customer(&self, partner: &Partner, customer: &str, fields: &Value) -> Value {
        let path = format!("/api/customers/{customer}");
        self.call_expecting(
            Method::PATCH,
            &path,
            Some(&partner.key),
            Some(fields),
            StatusCode::OK,
        )
        .await
    }

    /// POSTs to an agent conversation route, asserts `expected`, returns the body.
    async fn agent_action(
        &self,
        agent: &Agent,
        conversation: i64,
        action: &str,
        body: Option<&Value>,
        expected: StatusCode,
    ) -> Value {
        let path = format!("/api/agent/conversations/{conversation}/{action}");
        self.call_expecting(Method::POST, &path, Some(&agent.token), body, expected)
            .await
    }

    /// The agent takes the conversation (asserts 200); returns the conversation.
    pub async fn assign(&self, agent: &Agent, conversation: i64) -> Value {
        self.agent_action(agent, conversation, "assign", None, StatusCode::OK)
            .await
    }

    /// The agent answers in a conversation it holds (asserts 201); returns the message.
    pub async fn agent_reply(&self, agent: &Agent, conversation: i64, content: &str) -> Value {
        let body = json!({ "content": content });
        self.agent_action(
            agent,
            conversation,
            "messages",
            Some(&body),
            StatusCode::CREATED,
        )
        .await
    }

    /// The agent marks the customer's messages read up to `message_id` (asserts 200).
    pub async fn mark_read(&self, agent: &Agent, conversation: i64, message_id: &Value) -> Value {
        let body = json!({ "messageId": message_id });
        self.agent_action(agent, conversation, "read", Some(&body), StatusCode::OK)
            .await
    }

    /// The agent closes the conversation (asserts 200); returns the conversation.
    pub async fn close(&self, agent: &Agent, conversation: i64) -> Value {
        self.agent_action(agent, conversation, "close", None, StatusCode::OK)
            .await
    }

    /// The whole history, paged with `after` (one page holds at most 1,000).
    pub async fn history(&self, partner: &Partner, conversation: i64) -> Vec<Value> {
        let mut all: Vec<Value> = Vec::new();
        loop {
            let after = all.last().and_then(|m| m["id"].as_i64()).unwrap_or(0);
            let path = format!("/api/partner/messages/{conversation}?after={after}");
            let body = self
                .call_expecting(Method::GET, &path, Some(&partner.key), None, StatusCode::OK)
                .await;
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

    /// The automated responder's messages in a conversation's history (`senderId` `bot`).
    pub async fn bot_messages(&self, partner: &Partner, conversation: i64) -> Vec<Value> {
        self.history(partner, conversation)
            .await
            .into_iter()
            .filter(|m| m["senderId"] == "bot")
            .collect()
    }
}

impl Server {
    /// Waits for the process to exit on its own (after a signal sent to `pid()`), then returns
    /// its exit status and its whole log, the shutdown lines included.
    pub fn wait_for_exit(mut self) -> (std::process::ExitStatus, String) {
        let status = self.process.wait().unwrap_or_else(|e| panic!("{e:#}"));
        // The reader thread drains what the process wrote before it exited.
        std::thread::sleep(Duration::from_millis(300));
        (status, self.log())
    }
}
