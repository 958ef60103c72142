//! Typed ids, so a conversation id cannot be passed where a message id is expected. On the
//! wire they are the same integers as before (`#[serde(transparent)]`); an agent's is also
//! written `agent-<n>` (its `senderId` and WebSocket `clientId`), parsed and printed here only.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! integer_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);
    };
}

integer_id!(
    /// A conversation's id.
    ConversationId
);
integer_id!(
    /// A message's id; messages of one conversation are ordered by it (`after=<id>`).
    MessageId
);
integer_id!(
    /// A support agent's id; `agent-<n>` as a sender or client.
    AgentId
);
integer_id!(
    /// A position in the event log: `cursor` on a frame, `since=` on reconnect.
    Cursor
);

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Cursor {
    /// Before the first event.
    pub const START: Cursor = Cursor(0);
}

/// How an agent's id starts when written; no customer id may start so.
pub(crate) const AGENT_PREFIX: &str = "agent-";

impl AgentId {
    /// Reads `agent-<n>`.
    pub fn parse(text: &str) -> Option<Self> {
        text.strip_prefix(AGENT_PREFIX)
            .and_then(|n| n.parse::<i64>().ok())
            .map(Self)
    }
}

/// `agent-<n>`.
impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{AGENT_PREFIX}{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_id_reads_back_what_it_prints() {
        assert_eq!(AgentId(42).to_string(), "agent-42");
        assert_eq!(AgentId::parse("agent-42"), Some(AgentId(42)));
        for not_an_agent in ["agent-", "agent-x", "42", "Agent-42", "bot"] {
            assert_eq!(AgentId::parse(not_an_agent), None, "{not_an_agent}");
        }
    }

    #[test]
    fn ids_are_plain_integers_on_the_wire() {
        let json = serde_json::json!({"c": ConversationId(7), "m": MessageId(8), "a": AgentId(9)});
        assert_eq!(json.to_string(), r#"{"a":9,"c":7,"m":8}"#);
        // Printed (logs, paths) as the bare number too; only an agent's id has a prefix.
        let printed = [
            ConversationId(7).to_string(),
            MessageId(8).to_string(),
            Cursor(9).to_string(),
        ];
        assert_eq!(printed, ["7", "8", "9"]);
        let back: ConversationId = serde_json::from_str("7").unwrap_or(ConversationId(0));
        assert_eq!(back, ConversationId(7));
    }
}
