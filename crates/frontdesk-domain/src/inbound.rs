//! Frames a WebSocket client sends: `message`, `typing`, `read`, `ping`.

use serde::Deserialize;

use crate::customer::CustomerId;
use crate::error::{DomainError, ValidationError};
use crate::event::{Recipient, Typing};
use crate::ids::{AgentId, ConversationId, MessageId};
use crate::message::{MessageDraft, Metadata, Sender};

#[derive(Debug, Clone, Deserialize)]
#[serde(
    tag = "type",
    content = "payload",
    rename_all = "lowercase",
    deny_unknown_fields
)]
pub enum ClientFrame {
    Message(OutgoingMessage),
    Typing(Typing),
    Read(ReadRequest),
    Ping,
}

/// The guide's WebSocket `message` payload; `senderId` and `isFromAgent` may be left out (the
/// connection already says who is speaking) but must be right when present.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutgoingMessage {
    pub conversation_id: ConversationId,
    pub content: String,
    #[serde(default)]
    pub sender_id: Option<String>,
    #[serde(default)]
    pub is_from_agent: Option<bool>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub client_message_id: Option<String>,
}

/// `{conversationId, messageId}`: the reader has seen everything up to `messageId`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadRequest {
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
}

impl OutgoingMessage {
    /// A customer speaks only as itself; an agent only as `agent-<id>`.
    pub fn into_draft(self, speaker: &Recipient) -> Result<MessageDraft, DomainError> {
        let sender = match speaker {
            Recipient::Customer(_, customer) => {
                if self.is_from_agent == Some(true) {
                    return Err(DomainError::Forbidden(
                        "customers cannot send agent messages",
                    ));
                }
                Sender::Customer(customer.clone())
            }
            Recipient::Agent(id) => {
                if self.is_from_agent == Some(false) {
                    return Err(DomainError::Forbidden("agents send agent messages"));
                }
                Sender::Agent(*id)
            }
        };
        if let Some(claimed) = &self.sender_id {
            if *claimed != sender.to_string() {
                return Err(ValidationError::new(
                    "senderId",
                    format!("must be your own id, {sender}"),
                )
                .into());
            }
        }
        Ok(MessageDraft::new(
            self.conversation_id,
            sender,
            self.content,
            self.metadata,
            self.client_message_id,
        )?)
    }
}

/// Parses a WebSocket `clientId`: `agent-<n>` or a customer id.
pub fn parse_client_id(client_id: &str) -> ClientId {
    match AgentId::parse(client_id) {
        Some(id) => ClientId::Agent(id),
        None => match CustomerId::parse(client_id) {
            Ok(customer) => ClientId::Customer(customer),
            Err(_) => ClientId::Invalid,
        },
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientId {
    Customer(CustomerId),
    Agent(AgentId),
    Invalid,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AgentId, ConversationId, MessageId};
    use crate::partner::PartnerId;

    fn parse(text: &str) -> Result<ClientFrame, serde_json::Error> {
        serde_json::from_str(text)
    }

    #[test]
    fn parses_the_guides_frames() {
        let message = parse(
            r#"{"type":"message","payload":{"conversationId":1,"content":"Hello, I need help","senderId":"customer-12345","isFromAgent":false}}"#,
        );
        assert!(
            matches!(message, Ok(ClientFrame::Message(m)) if m.conversation_id == ConversationId(1))
        );
        let typing = parse(
            r#"{"type":"typing","payload":{"conversationId":1,"isTyping":true,"isAgent":false}}"#,
        );
        assert!(matches!(typing, Ok(ClientFrame::Typing(t)) if t.is_typing));
        assert!(matches!(parse(r#"{"type":"ping"}"#), Ok(ClientFrame::Ping)));
        assert!(matches!(
            parse(r#"{"type":"read","payload":{"conversationId":1,"messageId":3}}"#),
            Ok(ClientFrame::Read(ReadRequest {
                message_id: MessageId(3),
                ..
            }))
        ));
        assert!(parse(r#"{"type":"shout","payload":{}}"#).is_err());
        assert!(parse("not json").is_err());
    }

    #[test]
    fn speakers_cannot_impersonate() {
        let ann = Recipient::Customer(PartnerId(1), CustomerId::from_stored("ann".into()));
        let message = |sender: Option<&str>, agent: Option<bool>| OutgoingMessage {
            conversation_id: ConversationId(1),
            content: "hi".into(),
            sender_id: sender.map(str::to_owned),
            is_from_agent: agent,
            metadata: None,
            client_message_id: None,
        };
        assert!(message(Some("ann"), Some(false)).into_draft(&ann).is_ok());
        assert!(message(None, None).into_draft(&ann).is_ok());
        assert!(message(Some("bob"), None).into_draft(&ann).is_err());
        assert!(message(None, Some(true)).into_draft(&ann).is_err());
        let agent = Recipient::Agent(AgentId(2));
        let draft = message(Some("agent-2"), Some(true)).into_draft(&agent);
        assert_eq!(draft.map(|d| d.sender), Ok(Sender::Agent(AgentId(2))));
        assert!(message(Some("agent-3"), None).into_draft(&agent).is_err());
    }

    #[test]
    fn client_ids() {
        assert_eq!(parse_client_id("agent-12"), ClientId::Agent(AgentId(12)));
        assert!(matches!(
            parse_client_id("customer-1"),
            ClientId::Customer(_)
        ));
        assert_eq!(parse_client_id("a b"), ClientId::Invalid);
        assert_eq!(parse_client_id("agent-x"), ClientId::Invalid);
    }
}
