//! Domain errors: a broken rule, named so the server can map it to a status and a code.

use crate::conversation::ConversationStatus;

/// A value that is well-formed but breaks one of the rules of contract.md.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    /// The field as the client spelled it (camelCase).
    pub field: &'static str,
    pub reason: String,
}

impl ValidationError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// Everything the domain can refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The conversation is closed: nothing more can be said in it.
    #[error("conversation is closed")]
    ConversationClosed,
    /// Another agent holds the conversation.
    #[error("conversation is assigned to another agent")]
    AssignedElsewhere,
    /// The same clientMessageId was used for a different message.
    #[error("clientMessageId was already used for a different message")]
    IdempotencyMismatch,
    /// Authenticated, but this caller may not do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// A status change that the lifecycle does not allow.
    #[error("cannot change a {from} conversation to {to}")]
    Transition {
        from: ConversationStatus,
        to: ConversationStatus,
    },
}
