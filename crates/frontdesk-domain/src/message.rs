//! Messages: who said what, in which conversation, and whether it was read.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::customer::CustomerId;
use crate::error::{DomainError, ValidationError};
use crate::ids::{AgentId, ConversationId, MessageId};
use crate::limits::{
    CLIENT_MESSAGE_ID_MAX_CHARS, CONTENT_MAX_CHARS, CONTENT_MIN_CHARS, METADATA_MAX_BYTES,
};
use crate::text::{check_storable, check_storable_json};
use crate::timestamp::Timestamp;

/// Structured data attached to a message: a JSON object.
pub type Metadata = Map<String, Value>;

/// Who wrote a message; `senderId` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Sender {
    Customer(CustomerId),
    /// `agent-<id>`.
    Agent(AgentId),
    /// The automated responder: `bot`.
    Bot,
}

impl Sender {
    pub fn is_agent_side(&self) -> bool {
        !matches!(self, Sender::Customer(_))
    }

    /// Reads a stored `senderId` back; `is_from_agent` settles the customer case.
    pub fn from_stored(sender_id: String, is_from_agent: bool) -> Self {
        if !is_from_agent {
            return Sender::Customer(CustomerId::from_stored(sender_id));
        }
        match AgentId::parse(&sender_id) {
            Some(id) => Sender::Agent(id),
            None => Sender::Bot,
        }
    }
}

impl fmt::Display for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sender::Customer(id) => f.write_str(id.as_str()),
            Sender::Agent(id) => id.fmt(f),
            Sender::Bot => f.write_str("bot"),
        }
    }
}

impl Serialize for Sender {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The guide's Message object.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    #[serde(rename = "senderId")]
    pub sender: Sender,
    pub content: String,
    pub is_from_agent: bool,
    pub timestamp: Timestamp,
    pub read_status: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// Echoed so an offline queue can match its retries to what was stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_message_id: Option<String>,
}

/// A checked message, ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageDraft {
    pub conversation_id: ConversationId,
    pub sender: Sender,
    pub content: String,
    pub metadata: Option<Metadata>,
    pub client_message_id: Option<String>,
}

impl MessageDraft {
    /// Checks content, metadata and clientMessageId against contract.md's limits.
    pub fn new(
        conversation_id: ConversationId,
        sender: Sender,
        content: String,
        metadata: Option<Metadata>,
        client_message_id: Option<String>,
    ) -> Result<Self, ValidationError> {
        check_content(&content)?;
        if let Some(metadata) = &metadata {
            check_metadata(metadata)?;
        }
        if let Some(id) = &client_message_id {
            check_client_message_id(id)?;
        }
        Ok(Self {
            conversation_id,
            sender,
            content,
            metadata,
            client_message_id,
        })
    }

    /// Whether a stored message is this draft again (a retry), for clientMessageId replays.
    pub fn is_same_as(&self, stored: &Message) -> bool {
        stored.conversation_id == self.conversation_id
            && stored.sender == self.sender
            && stored.content == self.content
            && stored.metadata == self.metadata
    }
}

fn check_content(content: &str) -> Result<(), ValidationError> {
    let chars = content.chars().count();
    if chars < CONTENT_MIN_CHARS || content.trim().is_empty() {
        return Err(ValidationError::new("content", "must not be empty"));
    }
    if chars > CONTENT_MAX_CHARS {
        return Err(ValidationError::new(
            "content",
            format!("must be at most {CONTENT_MAX_CHARS} characters, not {chars}"),
        ));
    }
    check_storable("content", content)
}

fn check_metadata(metadata: &Metadata) -> Result<(), ValidationError> {
    let size = serde_json::to_vec(metadata)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > METADATA_MAX_BYTES {
        return Err(ValidationError::new(
            "metadata",
            format!("must be at most {METADATA_MAX_BYTES} bytes as JSON, not {size}"),
        ));
    }
    if metadata
        .get("commandType")
        .is_some_and(|command| !command.is_string())
    {
        return Err(ValidationError::new(
            "metadata.commandType",
            "must be a string",
        ));
    }
    metadata.iter().try_for_each(|(key, value)| {
        check_storable("metadata", key)?;
        check_storable_json("metadata", value)
    })
}

fn check_client_message_id(id: &str) -> Result<(), ValidationError> {
    let chars = id.chars().count();
    if chars == 0 || chars > CLIENT_MESSAGE_ID_MAX_CHARS || id.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "clientMessageId",
            format!("must be 1 to {CLIENT_MESSAGE_ID_MAX_CHARS} printable characters"),
        ));
    }
    Ok(())
}

/// The body of `POST /api/agent/conversations/:id/messages`; the sender is the agent.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentMessageRequest {
    pub content: String,
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub client_message_id: Option<String>,
}

impl AgentMessageRequest {
    /// Sent as `agent-<id>` into `conversation_id`.
    pub fn into_draft(
        self,
        conversation_id: ConversationId,
        agent: AgentId,
    ) -> Result<MessageDraft, ValidationError> {
        MessageDraft::new(
            conversation_id,
            Sender::Agent(agent),
            self.content,
            self.metadata,
            self.client_message_id,
        )
    }
}

/// The body of `POST /api/partner/messages`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PartnerMessageRequest {
    pub conversation_id: ConversationId,
    pub sender_id: String,
    pub content: String,
    #[serde(default)]
    pub is_from_agent: bool,
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub client_message_id: Option<String>,
}

impl PartnerMessageRequest {
    /// A partner speaks for its customers only; agents answer through the agent API.
    pub fn into_draft(self) -> Result<MessageDraft, DomainError> {
        if self.is_from_agent {
            return Err(DomainError::Forbidden(
                "partners send customer messages; agents reply through the agent API",
            ));
        }
        let sender = Sender::Customer(
            CustomerId::parse(&self.sender_id)
                .map_err(|e| ValidationError::new("senderId", e.reason))?,
        );
        Ok(MessageDraft::new(
            self.conversation_id,
            sender,
            self.content,
            self.metadata,
            self.client_message_id,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AgentId, ConversationId, MessageId};
    use time::macros::datetime;

    fn customer() -> Sender {
        Sender::Customer(CustomerId::from_stored("customer-12345".into()))
    }

    #[test]
    fn content_limits() {
        let draft =
            |content: String| MessageDraft::new(ConversationId(1), customer(), content, None, None);
        assert!(draft("x".into()).is_ok());
        assert!(draft("é".repeat(10_000)).is_ok());
        assert_eq!(draft(String::new()).map_err(|e| e.field), Err("content"));
        assert_eq!(draft("  \n ".into()).map_err(|e| e.field), Err("content"));
        assert_eq!(
            draft("x".repeat(10_001)).map_err(|e| e.field),
            Err("content")
        );
    }

    #[test]
    fn metadata_limits() {
        let draft = |metadata: Value| {
            let Value::Object(map) = metadata else {
                return Err(ValidationError::new("test", "not an object"));
            };
            MessageDraft::new(ConversationId(1), customer(), "hi".into(), Some(map), None)
        };
        assert!(draft(serde_json::json!({"commandType": "order_lookup", "value": [1]})).is_ok());
        assert_eq!(
            draft(serde_json::json!({"commandType": 5})).map_err(|e| e.field),
            Err("metadata.commandType")
        );
        let big = "x".repeat(METADATA_MAX_BYTES);
        assert_eq!(
            draft(serde_json::json!({ "value": big })).map_err(|e| e.field),
            Err("metadata")
        );
    }

    #[test]
    fn metadata_may_be_16_kib_exactly() {
        // `{"v":"` + text + `"}` is 8 bytes more than the text.
        let sized = |bytes: usize| {
            let mut map = Metadata::new();
            map.insert("v".into(), Value::String("x".repeat(bytes - 8)));
            MessageDraft::new(ConversationId(1), customer(), "hi".into(), Some(map), None)
                .map_err(|e| e.field)
        };
        assert!(sized(16_384).is_ok());
        assert_eq!(sized(16_385).err(), Some("metadata"));
    }

    #[test]
    fn client_message_ids() {
        let draft = |id: String| {
            MessageDraft::new(
                ConversationId(1),
                customer(),
                "hi".into(),
                None,
                Some(id.clone()),
            )
            .map(|d| d.client_message_id)
            .map_err(|e| e.field)
        };
        assert_eq!(draft("a".into()), Ok(Some("a".into())));
        assert_eq!(draft("é".repeat(128)), Ok(Some("é".repeat(128))));
        for bad in [
            String::new(),
            "x".repeat(129),
            "a\nb".into(),
            "\u{7f}".into(),
        ] {
            assert_eq!(draft(bad.clone()), Err("clientMessageId"), "{bad:?}");
        }
    }

    #[test]
    fn a_retry_is_the_same_conversation_sender_content_and_metadata() {
        let mut metadata = Metadata::new();
        metadata.insert("k".into(), Value::from(1));
        let draft = MessageDraft::new(
            ConversationId(1),
            customer(),
            "hi".into(),
            Some(metadata.clone()),
            Some("c-1".into()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let stored = Message {
            id: MessageId(9),
            conversation_id: ConversationId(1),
            sender: customer(),
            content: "hi".into(),
            is_from_agent: false,
            timestamp: Timestamp::new(datetime!(2023-01-01 00:00:05 UTC)),
            read_status: true,
            metadata: Some(metadata),
            client_message_id: Some("c-1".into()),
        };
        assert!(draft.is_same_as(&stored));
        let differs = [
            Message {
                conversation_id: ConversationId(2),
                ..stored.clone()
            },
            Message {
                sender: Sender::Bot,
                ..stored.clone()
            },
            Message {
                content: "hi!".into(),
                ..stored.clone()
            },
            Message {
                metadata: None,
                ..stored.clone()
            },
        ];
        for other in differs {
            assert!(!draft.is_same_as(&other), "{other:?}");
        }
    }

    #[test]
    fn senders_round_trip() {
        for sender in [customer(), Sender::Agent(AgentId(2)), Sender::Bot] {
            let text = sender.to_string();
            assert_eq!(Sender::from_stored(text, sender.is_agent_side()), sender);
        }
    }

    #[test]
    fn serialises_like_the_guide() {
        let message = Message {
            id: MessageId(2),
            conversation_id: ConversationId(1),
            sender: Sender::Agent(AgentId(2)),
            content: "Hi there!".into(),
            is_from_agent: true,
            timestamp: Timestamp::new(datetime!(2023-01-01 00:00:05 UTC)),
            read_status: false,
            metadata: None,
            client_message_id: None,
        };
        assert_eq!(
            serde_json::to_value(&message).unwrap_or_default(),
            serde_json::json!({
                "id": 2,
                "conversationId": 1,
                "senderId": "agent-2",
                "content": "Hi there!",
                "isFromAgent": true,
                "timestamp": "2023-01-01T00:00:05.000Z",
                "readStatus": false
            })
        );
    }
}
