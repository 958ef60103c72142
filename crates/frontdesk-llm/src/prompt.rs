//! What the model is told: the system prompt, who it answers for, what it knows of the
//! customer (their Flashback traits), and as much of the conversation as the token budget
//! holds, newest kept.

use frontdesk_domain::{Flashback, Message, Sender};
use serde_json::Value;

use crate::wire::{ChatMessage, Role};

/// A rough token count (four characters a token, plus a few per message for the framing):
/// enough to keep a prompt under a model's window without a tokenizer per model.
pub fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4) + 4
}

pub struct PromptInput<'a> {
    pub system: &'a str,
    /// The partner the customer came through, so the model speaks for the right company.
    pub partner_name: &'a str,
    /// The conversation, oldest first.
    pub history: &'a [Message],
    pub flashback: Option<&'a Flashback>,
    /// Tokens the prompt may take in all.
    pub token_budget: usize,
}

/// The chat messages for `input`: the system message first, then the newest history that
/// fits the budget, in order. The system message is always kept.
pub fn build(input: &PromptInput<'_>) -> Vec<ChatMessage> {
    let mut system = format!(
        "{}\n\nYou answer customers of {} in its support chat.",
        input.system.trim(),
        input.partner_name
    );
    if let Some(flashback) = input.flashback {
        system.push_str(&format!(
            " What we know of this customer's character: {} and {}.",
            flashback.first_event_trait, flashback.second_event_trait
        ));
    }
    let mut left = input.token_budget.saturating_sub(estimate_tokens(&system));
    let mut kept = Vec::new();
    for message in input.history.iter().rev() {
        let chat = chat_message(message);
        let cost = estimate_tokens(&chat.content);
        if cost > left {
            break;
        }
        left -= cost;
        kept.push(chat);
    }
    kept.push(ChatMessage::new(Role::System, system));
    kept.reverse();
    kept
}

/// The customer speaks as the user; agents and the bot as the assistant. Metadata (an order
/// look-up, say) is shown to the model after the text.
fn chat_message(message: &Message) -> ChatMessage {
    let role = match message.sender {
        Sender::Customer(_) => Role::User,
        Sender::Agent(_) | Sender::Bot => Role::Assistant,
    };
    let mut content = message.content.clone();
    if let Some(metadata) = &message.metadata {
        let fields: Vec<String> = metadata
            .iter()
            .filter(|(key, _)| key.as_str() != "automated")
            .map(|(key, value)| match value {
                Value::String(text) => format!("{key}: {text}"),
                other => format!("{key}: {other}"),
            })
            .collect();
        if !fields.is_empty() {
            content.push_str(&format!("\n[{}]", fields.join(", ")));
        }
    }
    ChatMessage::new(role, content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use frontdesk_domain::{AgentId, ConversationId, CustomerId, EventDate, MessageId, Timestamp};
    use serde_json::json;

    fn message(id: i64, sender: Sender, content: &str, metadata: Option<Value>) -> Message {
        Message {
            id: MessageId(id),
            conversation_id: ConversationId(1),
            is_from_agent: sender.is_agent_side(),
            sender,
            content: content.into(),
            timestamp: Timestamp::new(time::OffsetDateTime::UNIX_EPOCH),
            read_status: false,
            metadata: metadata.and_then(|m| m.as_object().cloned()),
            client_message_id: None,
        }
    }

    fn ann() -> Sender {
        Sender::Customer(CustomerId::from_stored("ann".into()))
    }

    #[test]
    fn the_prompt_has_the_system_the_traits_the_history_and_its_metadata() {
        let history = [
            message(
                1,
                ann(),
                "Where is my order?",
                Some(json!({"order_lookup": "ORD-1"})),
            ),
            message(
                2,
                Sender::Bot,
                "Let me check.",
                Some(json!({"automated": true})),
            ),
            message(3, Sender::Agent(AgentId(4)), "It ships today.", None),
        ];
        let flashback = Flashback {
            first_event_date: EventDate {
                month: "April".into(),
                year: 1999,
            },
            first_event_trait: "Playful".into(),
            second_event_date: EventDate {
                month: "May".into(),
                year: 2004,
            },
            second_event_trait: "Principled".into(),
        };
        let prompt = build(&PromptInput {
            system: "Be brief.",
            partner_name: "Acme",
            history: &history,
            flashback: Some(&flashback),
            token_budget: 1_000,
        });
        assert_eq!(
            prompt,
            vec![
                ChatMessage::new(
                    Role::System,
                    "Be brief.\n\nYou answer customers of Acme in its support chat. What we know \
                     of this customer's character: Playful and Principled."
                ),
                ChatMessage::new(Role::User, "Where is my order?\n[order_lookup: ORD-1]"),
                ChatMessage::new(Role::Assistant, "Let me check."),
                ChatMessage::new(Role::Assistant, "It ships today."),
            ]
        );
    }

    #[test]
    fn the_budget_keeps_the_newest_messages_and_always_the_system() {
        let history: Vec<Message> = (1..=50)
            .map(|i| {
                message(
                    i,
                    ann(),
                    &format!("message number {i:02} {}", "x".repeat(40)),
                    None,
                )
            })
            .collect();
        let system = "Be brief.";
        let per_message = estimate_tokens(&history[0].content);
        let header = estimate_tokens(&format!(
            "{system}\n\nYou answer customers of Acme in its support chat."
        ));
        let prompt = build(&PromptInput {
            system,
            partner_name: "Acme",
            history: &history,
            flashback: None,
            token_budget: header + 3 * per_message,
        });
        let kept: Vec<&str> = prompt[1..].iter().map(|m| &m.content[..17]).collect();
        assert_eq!(
            kept,
            [
                "message number 48",
                "message number 49",
                "message number 50"
            ]
        );
        let none = build(&PromptInput {
            system,
            partner_name: "Acme",
            history: &history,
            flashback: None,
            token_budget: 1,
        });
        assert_eq!(none.len(), 1, "the system message alone");
        assert_eq!(none[0].role, Role::System);
    }
}
