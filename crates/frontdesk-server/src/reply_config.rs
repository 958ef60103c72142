//! The automated responder's settings (docs/automated-replies.md, docs/configuration.md).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use frontdesk_domain::handoff::{BotBudget, DEFAULT_PERSON_PHRASES};
use frontdesk_domain::limits::CONTENT_MAX_CHARS;
use frontdesk_llm::LlmConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AutomatedReplies {
    /// A model when FRONTDESK_LLM_URL is set, else the built-in offline responder.
    On,
    /// No automated message at all: conversations wait for agents in silence.
    Off,
}

#[derive(Debug, Clone, Args)]
pub struct ReplyConfig {
    /// Whether a customer's message in a conversation no agent holds is answered automatically.
    #[arg(
        long,
        env = "FRONTDESK_AUTOMATED_REPLIES",
        value_enum,
        default_value = "on"
    )]
    pub automated_replies: AutomatedReplies,

    /// OpenAI-compatible API base, e.g. https://api.openai.com/v1 or http://localhost:11434/v1
    /// (Ollama). Unset: the offline responder (one greeting per conversation, no network).
    #[arg(long, env = "FRONTDESK_LLM_URL")]
    pub llm_url: Option<String>,

    /// The model name the server knows.
    #[arg(long, env = "FRONTDESK_LLM_MODEL", default_value = "gpt-4o-mini")]
    pub llm_model: String,

    /// Sent as a Bearer token; never logged or printed. Prefer the environment.
    #[arg(long, env = "FRONTDESK_LLM_API_KEY", hide_env_values = true)]
    pub llm_api_key: Option<String>,

    /// Connecting to the model server, in milliseconds.
    #[arg(
        long,
        env = "FRONTDESK_LLM_CONNECT_TIMEOUT_MS",
        default_value_t = 3_000
    )]
    pub llm_connect_timeout_ms: u64,

    /// Until the first streamed token (or the whole answer, not streamed), in milliseconds.
    #[arg(
        long,
        env = "FRONTDESK_LLM_FIRST_TOKEN_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub llm_first_token_timeout_ms: u64,

    /// One whole model call, retries included, in milliseconds.
    #[arg(long, env = "FRONTDESK_LLM_TOTAL_TIMEOUT_MS", default_value_t = 30_000)]
    pub llm_total_timeout_ms: u64,

    /// Further attempts after a 429 or 5xx (back-off with jitter, or what Retry-After says).
    #[arg(long, env = "FRONTDESK_LLM_MAX_RETRIES", default_value_t = 2)]
    pub llm_max_retries: u32,

    /// Model calls this instance makes at once; a conversation beyond it is handed off.
    #[arg(long, env = "FRONTDESK_LLM_MAX_IN_FLIGHT", default_value_t = 64)]
    pub llm_max_in_flight: usize,

    /// Consecutive failed calls that pause all calls (circuit breaker) ...
    #[arg(long, env = "FRONTDESK_LLM_BREAKER_FAILURES", default_value_t = 5)]
    pub llm_breaker_failures: u32,

    /// ... for this many seconds.
    #[arg(long, env = "FRONTDESK_LLM_BREAKER_SECS", default_value_t = 30.0)]
    pub llm_breaker_secs: f64,

    /// Offer the model a `handoff_to_human` tool (function calling). Off, for servers without
    /// tools: a JSON-schema answer {reply, handoff} instead, not streamed.
    #[arg(long, env = "FRONTDESK_LLM_TOOLS", default_value_t = true, action = clap::ArgAction::Set)]
    pub llm_tools: bool,

    /// A file holding the system prompt (the built-in one otherwise).
    #[arg(long, env = "FRONTDESK_LLM_SYSTEM_PROMPT_FILE")]
    pub llm_system_prompt_file: Option<PathBuf>,

    /// How much conversation history the prompt may hold, in (estimated) tokens; the newest
    /// messages are kept.
    #[arg(long, env = "FRONTDESK_LLM_HISTORY_TOKENS", default_value_t = 3_000)]
    pub llm_history_tokens: usize,

    /// Automated replies per conversation before it is handed to a person.
    #[arg(long, env = "FRONTDESK_BOT_MAX_REPLIES", default_value_t = 10)]
    pub bot_max_replies: u32,

    /// Model tokens per conversation before it is handed to a person.
    #[arg(long, env = "FRONTDESK_BOT_MAX_TOKENS", default_value_t = 20_000)]
    pub bot_max_tokens: u64,

    /// Consecutive failed replies in one conversation before it is handed to a person.
    #[arg(long, env = "FRONTDESK_BOT_MAX_FAILURES", default_value_t = 3)]
    pub bot_max_failures: u32,

    /// Comma-separated phrases with which a customer asks for a person (whole words, any
    /// case); replaces the built-in list in English, German, French, Spanish and Dutch.
    #[arg(long, env = "FRONTDESK_HANDOFF_PHRASES", value_delimiter = ',')]
    pub handoff_phrases: Vec<String>,

    /// The offline responder's greeting.
    #[arg(long, env = "FRONTDESK_OFFLINE_GREETING")]
    pub offline_greeting: Option<String>,

    /// What the bot says when it hands a conversation to a person.
    #[arg(
        long,
        env = "FRONTDESK_HANDOFF_NOTICE",
        default_value = "I'm passing you to a member of our team. A person will reply here shortly."
    )]
    pub handoff_notice: String,

    /// How long an instance holds a reply job without renewing it; a job whose instance died
    /// is taken over after this, in seconds.
    #[arg(long, env = "FRONTDESK_REPLY_LEASE_SECS", default_value_t = 15.0)]
    pub reply_lease_secs: f64,
}

impl ReplyConfig {
    pub fn enabled(&self) -> bool {
        self.automated_replies == AutomatedReplies::On
    }

    /// The model's settings, when one is configured.
    pub fn llm(&self) -> Option<LlmConfig> {
        let url = self.llm_url.as_ref().filter(|url| !url.trim().is_empty())?;
        let millis = |ms: u64| Duration::from_millis(ms.max(1));
        let mut llm = LlmConfig::new(url.trim(), self.llm_model.clone());
        llm.api_key = self.llm_api_key.clone().filter(|key| !key.is_empty());
        llm.connect_timeout = millis(self.llm_connect_timeout_ms);
        llm.first_token_timeout = millis(self.llm_first_token_timeout_ms);
        llm.total_timeout = millis(self.llm_total_timeout_ms);
        llm.max_retries = self.llm_max_retries;
        llm.max_in_flight = self.llm_max_in_flight.max(1);
        llm.breaker_failures = self.llm_breaker_failures.max(1);
        llm.breaker_cool_down =
            Duration::from_secs_f64(finite_or(self.llm_breaker_secs, 30.0).clamp(0.0, 86_400.0));
        llm.tools = self.llm_tools;
        Some(llm)
    }

    pub fn budget(&self) -> BotBudget {
        BotBudget {
            max_replies: self.bot_max_replies,
            max_tokens: self.bot_max_tokens,
            max_failures: self.bot_max_failures.max(1),
        }
    }

    pub fn phrases(&self) -> Vec<String> {
        let configured: Vec<String> = self
            .handoff_phrases
            .iter()
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect();
        if configured.is_empty() {
            DEFAULT_PERSON_PHRASES
                .iter()
                .map(|p| (*p).to_owned())
                .collect()
        } else {
            configured
        }
    }

    pub fn lease(&self) -> Duration {
        Duration::from_secs_f64(finite_or(self.reply_lease_secs, 15.0).clamp(0.5, 3_600.0))
    }

    /// The texts the bot may have to post, checked before anything starts: a notice that
    /// could not be stored would silently prevent every hand-off.
    pub fn check(&self) -> Result<(), String> {
        let texts = [
            ("--handoff-notice", Some(self.handoff_notice.as_str())),
            ("--offline-greeting", self.offline_greeting.as_deref()),
        ];
        for (flag, text) in texts {
            let Some(text) = text else { continue };
            let chars = text.trim().chars().count();
            if chars == 0 && flag == "--handoff-notice" {
                return Err(format!("{flag} must not be empty"));
            }
            if chars > CONTENT_MAX_CHARS || text.contains('\0') {
                return Err(format!(
                    "{flag} must be at most {CONTENT_MAX_CHARS} characters, without NUL"
                ));
            }
        }
        Ok(())
    }
}

/// `value`, or `default` when it is NaN or infinite (which `Duration` cannot hold).
fn finite_or(value: f64, default: f64) -> f64 {
    if value.is_finite() {
        value
    } else {
        default
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        replies: ReplyConfig,
    }

    fn parsed(args: &[&str]) -> ReplyConfig {
        let args = std::iter::once("frontdesk").chain(args.iter().copied());
        Flags::try_parse_from(args)
            .unwrap_or_else(|e| panic!("{e}"))
            .replies
    }

    #[test]
    fn a_notice_the_bot_could_not_post_stops_the_start() {
        assert!(parsed(&[]).check().is_ok());
        assert!(parsed(&["--handoff-notice", "  "]).check().is_err());
        let long = "x".repeat(CONTENT_MAX_CHARS + 1);
        assert!(parsed(&["--handoff-notice", &long]).check().is_err());
        assert!(parsed(&["--offline-greeting", &long]).check().is_err());
        // An empty greeting falls back to the built-in one.
        assert!(parsed(&["--offline-greeting", ""]).check().is_ok());
    }

    #[test]
    fn durations_that_cannot_be_held_fall_back_to_their_defaults() {
        let config = parsed(&[
            "--reply-lease-secs",
            "NaN",
            "--llm-breaker-secs",
            "inf",
            "--llm-url",
            "http://m/v1",
        ]);
        assert_eq!(config.lease(), Duration::from_secs(15));
        let llm = config.llm().unwrap_or_else(|| panic!("no model"));
        assert_eq!(llm.breaker_cool_down, Duration::from_secs(30));
    }
}
