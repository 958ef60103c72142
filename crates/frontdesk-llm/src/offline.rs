//! The built-in responder for a deployment without a model: no network, one greeting per
//! conversation saying a person will answer.

use frontdesk_domain::{Message, Sender};

pub const DEFAULT_GREETING: &str =
    "Thanks for your message! A member of our team will reply here as soon as possible.";

#[derive(Debug, Clone)]
pub struct OfflineResponder {
    greeting: String,
}

impl OfflineResponder {
    pub fn new(greeting: Option<String>) -> Self {
        Self {
            greeting: greeting
                .map(|g| g.trim().to_owned())
                .filter(|g| !g.is_empty())
                .unwrap_or_else(|| DEFAULT_GREETING.to_owned()),
        }
    }

    /// The greeting, unless the conversation (oldest first) already has an automated message.
    pub fn reply(&self, history: &[Message]) -> Option<String> {
        let greeted = history.iter().any(|m| m.sender == Sender::Bot);
        (!greeted).then(|| self.greeting.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use frontdesk_domain::{ConversationId, CustomerId, MessageId, Timestamp};

    fn message(sender: Sender) -> Message {
        Message {
            id: MessageId(1),
            conversation_id: ConversationId(1),
            is_from_agent: sender.is_agent_side(),
            sender,
            content: "hi".into(),
            timestamp: Timestamp::new(time::OffsetDateTime::UNIX_EPOCH),
            read_status: false,
            metadata: None,
            client_message_id: None,
        }
    }

    #[test]
    fn it_greets_once_per_conversation() {
        let responder = OfflineResponder::new(None);
        let ann = Sender::Customer(CustomerId::from_stored("ann".into()));
        let first = [message(ann.clone())];
        assert_eq!(responder.reply(&first).as_deref(), Some(DEFAULT_GREETING));
        let greeted = [message(ann.clone()), message(Sender::Bot), message(ann)];
        assert_eq!(responder.reply(&greeted), None);
        let custom = OfflineResponder::new(Some("  Bonjour !  ".into()));
        assert_eq!(custom.reply(&first).as_deref(), Some("Bonjour !"));
        assert_eq!(
            OfflineResponder::new(Some(" ".into()))
                .reply(&first)
                .as_deref(),
            Some(DEFAULT_GREETING)
        );
    }
}
