//! Automated replies (contract.md, "Automated replies"): a client for OpenAI-compatible chat
//! completions (OpenAI, Ollama, vLLM, llama.cpp's server), streamed or not, with timeouts,
//! retries, a circuit breaker and an in-flight limit; the prompt; and the built-in offline
//! responder for deployments without a model. No crate depends on it yet: the server wires it
//! in with the reply jobs.

mod breaker;
mod client;
mod config;
mod error;
mod offline;
pub mod prompt;
mod sse;
mod wire;

pub use breaker::CircuitBreaker;
pub use client::LlmClient;
pub use config::LlmConfig;
pub use error::{LlmError, Phase};
pub use offline::{OfflineResponder, DEFAULT_GREETING};
pub use wire::{ChatMessage, Reply, Role, HANDOFF_TOOL};
