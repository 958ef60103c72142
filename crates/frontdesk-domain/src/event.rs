//! Realtime events: what the server tells connected clients, and who hears it.
//!
//! Every event but `typing` is stored in the event log before anyone sees it; its log id is
//! the `cursor` of its frame.

use serde::Serialize;

use crate::conversation::{Conversation, ConversationStatus};
use crate::customer::CustomerId;
use crate::flashback::Flashback;
use crate::handoff::Handoff;
use crate::ids::{AgentId, ConversationId, Cursor, MessageId};
use crate::message::Message;
use crate::partner::PartnerId;

/// A stored event's payload, as its frame carries it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Event {
    /// The guide's Message object.
    Message(Message),
    Status(StatusChange),
    Read(ReadReceipt),
    Flashback(FlashbackNotice),
    /// To agents only: the automated responder gave the conversation to a person.
    Handoff(HandoffNotice),
}

impl Event {
    /// The frame `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Message(_) => "message",
            Event::Status(_) => "status",
            Event::Read(_) => "read",
            Event::Flashback(_) => "flashback",
            Event::Handoff(_) => "handoff",
        }
    }

    pub fn payload_json(&self) -> String {
        // Serialising these plain structs cannot fail: no maps with non-string keys.
        serde_json::to_string(self).unwrap_or_else(|_| "null".to_owned())
    }
}

/// `{conversationId, status, agentId}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    pub conversation_id: ConversationId,
    pub status: ConversationStatus,
    pub agent_id: Option<AgentId>,
}

impl StatusChange {
    pub fn of(conversation: &Conversation) -> Self {
        Self {
            conversation_id: conversation.id,
            status: conversation.status,
            agent_id: conversation.agent_id,
        }
    }
}

/// `{conversationId, messageId}`: every message up to `messageId` from the other side is read.
/// `isAgent` says who read them (true: the agent read the customer's messages).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadReceipt {
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    pub is_agent: bool,
}

/// `{customerId, flashBack: {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlashbackNotice {
    pub customer_id: CustomerId,
    pub flash_back: Flashback,
}

/// `{conversationId, reason, at}`: the automated responder stopped for good in this
/// conversation and a person should take it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HandoffNotice {
    pub conversation_id: ConversationId,
    #[serde(flatten)]
    pub handoff: Handoff,
}

/// Event kinds only agents hear: the conversation's customer is in their audience for
/// routing, but neither the live hub nor a replay shows these to a customer's socket.
pub const AGENT_ONLY_KINDS: &[&str] = &["handoff"];

/// Whether a customer's socket may see events of `kind`.
pub fn customers_hear(kind: &str) -> bool {
    !AGENT_ONLY_KINDS.contains(&kind)
}

/// `{conversationId, replyTo, seq, text}`: a piece of an automated reply while the model
/// writes it; never stored. `seq` 0 starts (or restarts) the draft answering customer message
/// `replyTo`; each next `seq` appends `text`. The stored `message` replaces the draft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageDelta {
    pub conversation_id: ConversationId,
    pub reply_to: MessageId,
    pub seq: u32,
    pub text: String,
}

/// `{conversationId, isTyping, isAgent}`: relayed, never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Typing {
    pub conversation_id: ConversationId,
    pub is_typing: bool,
    #[serde(default)]
    pub is_agent: bool,
}

/// Who receives an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience {
    /// The customer (all of their connections).
    pub partner: PartnerId,
    pub customer: CustomerId,
    /// The agent holding the conversation, if any.
    pub agent: Option<AgentId>,
    /// Every agent: the queue of waiting conversations is shared.
    pub all_agents: bool,
}

impl Audience {
    /// Events of a conversation: its customer, its agent, and every agent while it waits.
    pub fn conversation(conversation: &Conversation) -> Self {
        Self {
            partner: conversation.partner_id,
            customer: conversation.customer_id.clone(),
            agent: conversation.agent_id,
            all_agents: conversation.status == ConversationStatus::Waiting,
        }
    }

    /// A status change is also news to the queue when the conversation leaves it.
    pub fn transition(before: &Conversation, after: &Conversation) -> Self {
        let mut audience = Self::conversation(after);
        audience.all_agents |= before.status == ConversationStatus::Waiting;
        audience.agent = audience.agent.or(before.agent_id);
        audience
    }

    /// A customer-level event (Flashback): the customer and every agent.
    pub fn customer(partner: PartnerId, customer: CustomerId) -> Self {
        Self {
            partner,
            customer,
            agent: None,
            all_agents: true,
        }
    }
}

/// A connected client, as the hub and the event log know it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Recipient {
    Customer(PartnerId, CustomerId),
    Agent(AgentId),
}

impl Recipient {
    /// What a connection of this recipient may see and do.
    pub fn viewer(&self) -> crate::access::Viewer {
        match self {
            Recipient::Customer(partner, customer) => {
                crate::access::Viewer::Customer(*partner, customer.clone())
            }
            Recipient::Agent(agent) => crate::access::Viewer::Agent(*agent),
        }
    }
}

/// `{"type":…,"payload":…,"cursor":…}` from a payload that is already JSON.
pub fn event_frame(kind: &str, payload_json: &str, cursor: Cursor) -> String {
    format!(r#"{{"type":"{kind}","payload":{payload_json},"cursor":{cursor}}}"#)
}

/// `{"type":…,"payload":…}` for frames outside the log (typing, ack, error, pong).
pub fn plain_frame(kind: &str, payload: &impl Serialize) -> String {
    let payload = serde_json::to_string(payload).unwrap_or_else(|_| "null".to_owned());
    format!(r#"{{"type":"{kind}","payload":{payload}}}"#)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ConversationId, Cursor};
    use crate::timestamp::Timestamp;
    use time::macros::datetime;

    fn conversation(status: ConversationStatus, agent: Option<i64>) -> Conversation {
        let at = Timestamp::new(datetime!(2023-01-01 00:00 UTC));
        Conversation {
            id: ConversationId(7),
            partner_id: PartnerId(1),
            customer_id: CustomerId::from_stored("c".into()),
            agent_id: agent.map(AgentId),
            status,
            created_at: at,
            updated_at: at,
        }
    }

    fn audience(customer: &str, agent: Option<i64>, all_agents: bool) -> Audience {
        Audience {
            partner: PartnerId(1),
            customer: CustomerId::from_stored(customer.into()),
            agent: agent.map(AgentId),
            all_agents,
        }
    }

    // Who hears an event is decided live by the hub's registry and on replay by SQL over these
    // fields (tests/realtime.rs and the two-agent tests check both end to end); here, that the
    // fields say what the docs promise.
    #[test]
    fn audiences() {
        use ConversationStatus::{Active, Closed, Waiting};
        assert_eq!(
            Audience::conversation(&conversation(Waiting, None)),
            audience("c", None, true),
            "the queue of waiting conversations is shared"
        );
        assert_eq!(
            Audience::conversation(&conversation(Active, Some(2))),
            audience("c", Some(2), false),
            "an active conversation: its customer and its agent only"
        );
        assert_eq!(
            Audience::transition(&conversation(Waiting, None), &conversation(Active, Some(2))),
            audience("c", Some(2), true),
            "the queue learns it was taken"
        );
        assert_eq!(
            Audience::transition(&conversation(Active, Some(2)), &conversation(Closed, None)),
            audience("c", Some(2), false),
            "the agent who held it learns it closed; the queue does not"
        );
        assert_eq!(
            Audience::customer(PartnerId(1), CustomerId::from_stored("c".into())),
            audience("c", None, true)
        );
    }

    #[test]
    fn frames() {
        let status = Event::Status(StatusChange::of(&conversation(
            ConversationStatus::Active,
            Some(2),
        )));
        assert_eq!(
            event_frame(status.kind(), &status.payload_json(), Cursor(42)),
            r#"{"type":"status","payload":{"conversationId":7,"status":"active","agentId":2},"cursor":42}"#
        );
        let typing = Typing {
            conversation_id: ConversationId(7),
            is_typing: true,
            is_agent: false,
        };
        assert_eq!(
            plain_frame("typing", &typing),
            r#"{"type":"typing","payload":{"conversationId":7,"isTyping":true,"isAgent":false}}"#
        );
    }
}
