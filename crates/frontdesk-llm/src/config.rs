//! How to reach the model, and the bounds on every call.

use std::fmt;
use std::time::Duration;

/// An OpenAI-compatible chat-completions endpoint (OpenAI, Ollama, vLLM, llama.cpp's server).
#[derive(Clone)]
pub struct LlmConfig {
    /// The API base, e.g. `https://api.openai.com/v1` or `http://localhost:11434/v1`;
    /// `/chat/completions` is appended.
    pub url: String,
    pub model: String,
    /// Sent as `Authorization: Bearer`; never printed (see `Debug`).
    pub api_key: Option<String>,
    pub connect_timeout: Duration,
    /// Until the response head (non-streaming: the whole answer) or the first streamed token.
    pub first_token_timeout: Duration,
    /// The whole call, retries included.
    pub total_timeout: Duration,
    /// Further attempts after a 429 or 5xx.
    pub max_retries: u32,
    /// The first back-off; doubled per attempt, with jitter, unless `Retry-After` says more.
    pub retry_base: Duration,
    /// Model calls one instance makes at once; beyond it a call fails at once with `Busy`.
    pub max_in_flight: usize,
    /// Consecutive failures that open the circuit breaker, and how long it stays open.
    pub breaker_failures: u32,
    pub breaker_cool_down: Duration,
    /// Offer `handoff_to_human` as a tool (function calling). Off: the structured-output
    /// fallback for servers without tools (`response_format` with a JSON schema); its replies
    /// are not streamed, since the text arrives inside JSON.
    pub tools: bool,
}

impl LlmConfig {
    pub fn new(url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            model: model.into(),
            api_key: None,
            connect_timeout: Duration::from_secs(3),
            first_token_timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(30),
            max_retries: 2,
            retry_base: Duration::from_millis(250),
            max_in_flight: 64,
            breaker_failures: 5,
            breaker_cool_down: Duration::from_secs(30),
            tools: true,
        }
    }

    pub(crate) fn completions_url(&self) -> String {
        format!("{}/chat/completions", self.url.trim_end_matches('/'))
    }
}

impl fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmConfig")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("connect_timeout", &self.connect_timeout)
            .field("first_token_timeout", &self.first_token_timeout)
            .field("tools", &self.tools)
            .field("total_timeout", &self.total_timeout)
            .field("max_retries", &self.max_retries)
            .field("max_in_flight", &self.max_in_flight)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_key_is_never_printed() {
        let mut config = LlmConfig::new("http://model/v1/", "m");
        config.api_key = Some("sk-secret".into());
        let printed = format!("{config:?}");
        assert!(!printed.contains("sk-secret"), "{printed}");
        assert!(printed.contains("<redacted>"));
        assert_eq!(config.completions_url(), "http://model/v1/chat/completions");
    }
}
