//! Automated replies (contract.md, "Automated replies"): an OpenAI-compatible chat completions
//! client and the built-in offline responder. Empty until that issue fills it; until then no
//! crate depends on it, so nothing can call what does not exist yet.
