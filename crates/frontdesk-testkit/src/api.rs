//! The HTTP API as a client sees it: a request with an optional bearer token and JSON body,
//! answered with a status and JSON; and the callers it signs in (partners, agents created with
//! the real `frontdesk agent create` CLI). Errors are `anyhow`'s, for the bench; the tests'
//! `Server` wraps them with the exact statuses it asserts.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

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

    /// The WebSocket query that signs this agent in with its token.
    pub fn ws_query(&self) -> String {
        format!("clientId={}&token={}", self.client_id(), self.token)
    }

    /// The WebSocket path (with its query) of this agent.
    pub fn ws_path(&self) -> String {
        format!("/ws?{}", self.ws_query())
    }
}

/// A registered partner.
#[derive(Debug, Clone)]
pub struct Partner {
    pub id: String,
    pub key: String,
}

/// A base URL and an HTTP client.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
}

impl Api {
    pub fn new(base: String, client: reqwest::Client) -> Self {
        Self { base, client }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends `request` with the bearer token; the status and the JSON answer (an empty answer
    /// is `Null` if `empty_ok`, an error otherwise).
    pub async fn send(
        &self,
        mut request: reqwest::RequestBuilder,
        path: &str,
        token: Option<&str>,
        empty_ok: bool,
    ) -> Result<(StatusCode, Value)> {
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.with_context(|| path.to_owned())?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if empty_ok && text.is_empty() {
            return Ok((status, Value::Null));
        }
        let json = serde_json::from_str(&text)
            .with_context(|| format!("{path} answered {status} with non-JSON {text:?}"))?;
        Ok((status, json))
    }

    /// A JSON request; the status and the JSON answer.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value)> {
        let mut request = self.client.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(request, path, token, true).await
    }

    /// A request that must succeed (2xx); the JSON body.
    pub async fn call_ok(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Value> {
        let (status, body) = self.request(method, path, token, body).await?;
        if !status.is_success() {
            bail!("{path} answered {status}: {body}");
        }
        Ok(body)
    }

    /// Signs an agent in; its session token.
    pub async fn login(&self, email: &str, password: &str) -> Result<String> {
        let session = self
            .call_ok(
                Method::POST,
                "/api/agent/login",
                None,
                Some(&json!({"email": email, "password": password})),
            )
            .await?;
        text(&session, "token")
    }
}

/// The field `field` of `body` as a string.
pub fn text(body: &Value, field: &str) -> Result<String> {
    body[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no {field} in {body}"))
}

/// What `frontdesk agent create` is told.
pub struct NewAgent<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub password: &'a str,
    pub admin: bool,
}

/// Creates an agent with the real CLI (`frontdesk agent create --password-stdin`) on the
/// database at `database_url`; its id. Blocking: call it from `spawn_blocking` where that
/// matters.
pub fn create_agent_with_cli(binary: &Path, database_url: &str, agent: &NewAgent) -> Result<i64> {
    let mut command = Command::new(binary);
    command
        .args([
            "agent",
            "create",
            "--email",
            agent.email,
            "--name",
            agent.name,
            "--password-stdin",
        ])
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if agent.admin {
        command.arg("--admin");
    }
    let mut child = command.spawn().context("frontdesk agent create")?;
    if let Some(mut stdin) = child.stdin.take() {
        writeln!(stdin, "{}", agent.password)?;
    }
    let output = child.wait_with_output().context("frontdesk agent create")?;
    if !output.status.success() {
        bail!(
            "frontdesk agent create failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let created: Value =
        serde_json::from_slice(&output.stdout).context("frontdesk agent create printed no JSON")?;
    created["id"]
        .as_i64()
        .ok_or_else(|| anyhow!("no id in {created}"))
}
