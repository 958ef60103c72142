//! Data setup through the public API (and the `frontdesk agent create` CLI), as a partner and
//! an agent would do it. Setup is not measured, so it uses reqwest for brevity.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use frontdesk_testkit::api::{create_agent_with_cli, text, Api as KitApi, NewAgent};
pub use frontdesk_testkit::Agent;
use futures_util::{stream, StreamExt, TryStreamExt};
use reqwest::Method;
use serde_json::{json, Value};

/// Requests in flight during setup (conversations, sessions, assignments). Setup is not
/// measured, but its rate is reported: it shows how concurrent writes fare on SQLite.
const SETUP_CONCURRENCY: usize = 32;

#[derive(Clone)]
pub struct Api(KitApi);

impl Api {
    pub fn new(base: String) -> Result<Self> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(SETUP_CONCURRENCY)
            .build()
            .context("building the setup HTTP client")?;
        Ok(Self(KitApi::new(base, client)))
    }

    /// A request that must succeed (2xx); returns the JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Value> {
        self.0.call_ok(method, path, token, body).await
    }

    /// Registers a partner with the admin token (see `frontdesk_command`); returns its API key.
    pub async fn register(&self) -> Result<String> {
        let body = self
            .call(
                Method::POST,
                "/api/partner/register",
                Some(crate::server::BENCH_ADMIN_TOKEN),
                Some(&json!({"name": "Bench Shop", "domain": "bench.example.com"})),
            )
            .await?;
        text(&body, "apiKey")
    }

    pub async fn conversation(&self, key: &str, customer: &str) -> Result<i64> {
        let body = self
            .call(
                Method::POST,
                "/api/partner/conversations",
                Some(key),
                Some(&json!({"customerId": customer})),
            )
            .await?;
        body["id"]
            .as_i64()
            .ok_or_else(|| anyhow!("no conversation id in {body}"))
    }

    /// One conversation per customer, in the customers' order.
    pub async fn conversations(&self, key: &str, customers: &[String]) -> Result<Vec<i64>> {
        stream::iter(customers)
            .map(|customer| self.conversation(key, customer))
            .buffered(SETUP_CONCURRENCY)
            .try_collect()
            .await
    }

    /// Customer session tokens (what a browser holds), in the customers' order.
    pub async fn sessions(&self, key: &str, customers: &[String]) -> Result<Vec<String>> {
        stream::iter(customers)
            .map(|customer| async move {
                let body = self
                    .call(
                        Method::POST,
                        "/api/partner/sessions",
                        Some(key),
                        Some(&json!({"customerId": customer})),
                    )
                    .await?;
                text(&body, "token")
            })
            .buffered(SETUP_CONCURRENCY)
            .try_collect()
            .await
    }

    /// Creates an agent with the real CLI (`frontdesk agent create --password-stdin`), then
    /// signs it in.
    pub async fn agent(&self, binary: &Path, database_url: &str, email: &str) -> Result<Agent> {
        let password = "bench password, long enough";
        let binary = binary.to_owned();
        let database_url = database_url.to_owned();
        let email_owned = email.to_owned();
        let id = tokio::task::spawn_blocking(move || {
            let agent = NewAgent {
                email: &email_owned,
                name: "Bench Agent",
                password,
                admin: false,
            };
            create_agent_with_cli(&binary, &database_url, &agent)
        })
        .await??;
        let token = self.0.login(email, password).await?;
        Ok(Agent { id, token })
    }

    /// `n` agents, a few at a time (each costs an argon2 hash twice).
    pub async fn agents(&self, binary: &Path, database_url: &str, n: usize) -> Result<Vec<Agent>> {
        stream::iter(0..n)
            .map(|i| async move {
                let email = format!("agent{i}@bench.example.com");
                self.agent(binary, database_url, &email).await
            })
            .buffered(2)
            .try_collect()
            .await
    }

    /// Assigns each conversation to the agent at the same index.
    pub async fn assign(&self, pairs: &[(i64, Agent)]) -> Result<()> {
        stream::iter(pairs)
            .map(|(conversation, agent)| async move {
                let path = format!("/api/agent/conversations/{conversation}/assign");
                self.call(Method::POST, &path, Some(&agent.token), None)
                    .await
            })
            .buffer_unordered(SETUP_CONCURRENCY)
            .try_for_each(|_| async { Ok(()) })
            .await
    }
}
