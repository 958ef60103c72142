//! Why a model call failed. Every failure leaves the conversation waiting for an agent; the
//! caller logs and counts it.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// The model server could not be reached (refused, DNS, TLS).
    #[error("the model server cannot be reached: {0}")]
    Connect(String),
    /// No answer (or, streaming, no first token) in time, or the whole reply took too long.
    #[error("the model took longer than {limit:?} ({phase})")]
    Timeout { phase: Phase, limit: Duration },
    /// An HTTP error status after the retries allowed.
    #[error("the model server answered {0}")]
    Status(u16),
    /// A body that is not the chat-completions format.
    #[error("the model's answer cannot be read: {0}")]
    Garbage(String),
    /// A stream that ended before `[DONE]` or a finish reason.
    #[error("the model's stream was cut before its end")]
    Truncated,
    /// Too many recent failures: calls are not attempted until the breaker's cool-down ends.
    #[error("the model is failing; calls are paused")]
    CircuitOpen,
    /// As many calls are in flight as the instance allows.
    #[error("too many model calls in flight")]
    Busy,
}

/// Which deadline ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Connect,
    FirstToken,
    Total,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Connect => "connect",
            Phase::FirstToken => "first token",
            Phase::Total => "total",
        })
    }
}

impl LlmError {
    /// Whether the model server itself is unwell (counts against the circuit breaker); a
    /// full in-flight limit or an open breaker is not news about the server.
    pub fn is_server_failure(&self) -> bool {
        !matches!(self, LlmError::CircuitOpen | LlmError::Busy)
    }
}
