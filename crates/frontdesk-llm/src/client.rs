//! The model client: one call is a bounded number of attempts within one total deadline,
//! behind an in-flight limit and a circuit breaker.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;
use tokio::sync::Semaphore;

use crate::breaker::CircuitBreaker;
use crate::config::LlmConfig;
use crate::error::{LlmError, Phase};
use crate::sse::{SseItem, SseParser};
use crate::wire::{self, ChatMessage, ChatRequest, Completion, Reply, HANDOFF_TOOL};

/// The longest wait a `Retry-After` may ask for before the call gives up instead.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

pub struct LlmClient {
    http: reqwest::Client,
    config: LlmConfig,
    breaker: CircuitBreaker,
    in_flight: Arc<Semaphore>,
}

impl LlmClient {
    pub fn new(config: LlmConfig) -> Result<Self, LlmError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|e| LlmError::Connect(e.to_string()))?;
        Ok(Self {
            http,
            breaker: CircuitBreaker::new(config.breaker_failures, config.breaker_cool_down),
            in_flight: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
            config,
        })
    }

    pub fn config(&self) -> &LlmConfig {
        &self.config
    }

    /// Whether calls are currently refused by the breaker.
    pub fn is_paused(&self) -> bool {
        self.breaker.is_open()
    }

    /// The whole reply at once.
    pub async fn complete(&self, messages: &[ChatMessage]) -> Result<Reply, LlmError> {
        self.guarded(messages, None).await
    }

    /// The reply as it is written: `on_text` receives each fragment of text as it arrives.
    /// Dropping the future (an agent took the conversation) stops reading at once.
    pub async fn stream(
        &self,
        messages: &[ChatMessage],
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Reply, LlmError> {
        self.guarded(messages, Some(on_text)).await
    }

    async fn guarded(
        &self,
        messages: &[ChatMessage],
        on_text: Option<&mut (dyn FnMut(&str) + Send)>,
    ) -> Result<Reply, LlmError> {
        // Beyond the limit the conversation goes to the hand-off path rather than queue.
        let _permit = Arc::clone(&self.in_flight)
            .try_acquire_owned()
            .map_err(|_| LlmError::Busy)?;
        if !self.breaker.allow(Instant::now()) {
            return Err(LlmError::CircuitOpen);
        }
        let limit = self.config.total_timeout;
        let outcome = match tokio::time::timeout(limit, self.attempts(messages, on_text)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(LlmError::Timeout {
                phase: Phase::Total,
                limit,
            }),
        };
        match &outcome {
            Ok(_) => self.breaker.record(true, Instant::now()),
            Err(error) if error.is_server_failure() => self.breaker.record(false, Instant::now()),
            Err(_) => {}
        }
        outcome
    }

    async fn attempts<'f>(
        &self,
        messages: &[ChatMessage],
        mut on_text: Option<&mut (dyn FnMut(&str) + Send + 'f)>,
    ) -> Result<Reply, LlmError> {
        let mut attempt = 0;
        loop {
            let wait = match self.attempt(messages, on_text.as_deref_mut()).await {
                Ok(reply) => return Ok(reply),
                Err(Retry::Give(error)) => return Err(error),
                Err(Retry::After(error, wait)) => {
                    if attempt >= self.config.max_retries {
                        return Err(error);
                    }
                    wait
                }
            };
            attempt += 1;
            let backoff = self.config.retry_base * 2u32.saturating_pow(attempt - 1);
            let jitter = rand::rng().random_range(0.5..1.5);
            let wait = wait.unwrap_or(backoff.mul_f64(jitter));
            tracing::debug!(attempt, ?wait, "model call retried");
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt<'f>(
        &self,
        messages: &[ChatMessage],
        on_text: Option<&mut (dyn FnMut(&str) + Send + 'f)>,
    ) -> Result<Reply, Retry> {
        let body = ChatRequest {
            model: &self.config.model,
            messages,
            stream: on_text.is_some(),
            tools: self.config.tools.then(wire::tools),
            response_format: (!self.config.tools).then(wire::reply_format),
        };
        let mut request = self.http.post(self.config.completions_url()).json(&body);
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key);
        }
        let first = self.config.first_token_timeout;
        let response = match tokio::time::timeout(first, request.send()).await {
            Err(_) => {
                return Err(Retry::Give(LlmError::Timeout {
                    phase: Phase::FirstToken,
                    limit: first,
                }))
            }
            Ok(Err(error)) if error.is_timeout() && error.is_connect() => {
                return Err(Retry::After(
                    LlmError::Timeout {
                        phase: Phase::Connect,
                        limit: self.config.connect_timeout,
                    },
                    None,
                ))
            }
            Ok(Err(error)) => return Err(Retry::After(LlmError::Connect(error.to_string()), None)),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            let wait = retry_after(response.headers());
            if wait.is_some_and(|wait| wait > MAX_RETRY_AFTER) {
                return Err(Retry::Give(LlmError::Status(status.as_u16())));
            }
            return Err(Retry::After(LlmError::Status(status.as_u16()), wait));
        }
        if !status.is_success() {
            return Err(Retry::Give(LlmError::Status(status.as_u16())));
        }
        match on_text {
            None => {
                let text = tokio::time::timeout(first, response.text())
                    .await
                    .map_err(|_| {
                        Retry::Give(LlmError::Timeout {
                            phase: Phase::FirstToken,
                            limit: first,
                        })
                    })?
                    .map_err(|_| Retry::Give(LlmError::Truncated))?;
                let completion: Completion = serde_json::from_str(&text)
                    .map_err(|e| Retry::Give(LlmError::Garbage(e.to_string())))?;
                let reply =
                    wire::reply_of(completion).map_err(|e| Retry::Give(LlmError::Garbage(e)))?;
                Ok(if self.config.tools {
                    reply
                } else {
                    wire::structured(reply)
                })
            }
            Some(on_text) => read_stream(response, first, on_text)
                .await
                .map_err(Retry::Give),
        }
    }
}

/// Why an attempt failed: worth another attempt (after the wait the server asked for, if
/// any) or not.
enum Retry {
    After(LlmError, Option<Duration>),
    Give(LlmError),
}

/// `Retry-After` in seconds (the HTTP-date form is rare from model servers: back-off instead).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|secs| secs.is_finite() && *secs >= 0.0)
        .map(Duration::from_secs_f64)
}

/// A tool call assembled from its streamed fragments.
#[derive(Default)]
struct PartialCall {
    name: String,
    arguments: String,
}

async fn read_stream<'f>(
    mut response: reqwest::Response,
    first_token: Duration,
    on_text: &mut (dyn FnMut(&str) + Send + 'f),
) -> Result<Reply, LlmError> {
    let mut parser = SseParser::default();
    let mut text = String::new();
    let mut calls: BTreeMap<usize, PartialCall> = BTreeMap::new();
    let mut finished = false;
    let mut tokens = None;
    let mut heard = false;
    loop {
        let chunk = if heard {
            response.chunk().await
        } else {
            tokio::time::timeout(first_token, response.chunk())
                .await
                .map_err(|_| LlmError::Timeout {
                    phase: Phase::FirstToken,
                    limit: first_token,
                })?
        };
        let chunk = match chunk {
            Ok(Some(chunk)) => chunk,
            Ok(None) | Err(_) if finished => break,
            Ok(None) | Err(_) => return Err(LlmError::Truncated),
        };
        for item in parser.feed(&chunk) {
            let data = match item {
                SseItem::Done => {
                    return Ok(assemble(text, calls, tokens));
                }
                SseItem::Data(data) => data,
            };
            let completion: Completion =
                serde_json::from_str(&data).map_err(|e| LlmError::Garbage(e.to_string()))?;
            if let Some(usage) = completion.usage {
                tokens = usage.total_tokens.or(tokens);
            }
            for choice in completion.choices {
                finished |= choice.finish_reason.is_some();
                let Some(delta) = choice.delta else { continue };
                if let Some(fragment) = delta.content.filter(|f| !f.is_empty()) {
                    heard = true;
                    on_text(&fragment);
                    text.push_str(&fragment);
                }
                for call in delta.tool_calls {
                    heard = true;
                    let entry = calls.entry(call.index.unwrap_or(0)).or_default();
                    if let Some(function) = call.function {
                        entry
                            .name
                            .push_str(function.name.as_deref().unwrap_or_default());
                        entry
                            .arguments
                            .push_str(function.arguments.as_deref().unwrap_or_default());
                    }
                }
            }
        }
    }
    Ok(assemble(text, calls, tokens))
}

fn assemble(text: String, calls: BTreeMap<usize, PartialCall>, tokens: Option<u64>) -> Reply {
    let handoff = calls
        .values()
        .find(|call| call.name == HANDOFF_TOOL)
        .map(|call| wire::handoff_reason(&call.arguments));
    Reply {
        text: text.trim().to_owned(),
        handoff,
        tokens,
    }
}
