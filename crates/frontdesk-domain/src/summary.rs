//! What an agent's conversation list shows of each conversation.

use serde::Serialize;

use crate::conversation::Conversation;
use crate::customer::CustomerId;
use crate::handoff::Handoff;
use crate::message::Message;

/// A conversation with the context a queue needs: who, from which partner, what was said
/// first and last, and how many customer messages are unread.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationSummary {
    #[serde(flatten)]
    pub conversation: Conversation,
    pub customer: CustomerBrief,
    pub partner: PartnerBrief,
    pub first_message: Option<Message>,
    pub last_message: Option<Message>,
    pub unread_count: i64,
    /// Set once the automated responder gave the conversation to a person.
    pub handoff: Option<Handoff>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomerBrief {
    pub id: CustomerId,
    pub name: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartnerBrief {
    /// `partner-<n>`.
    pub id: String,
    pub name: String,
}
