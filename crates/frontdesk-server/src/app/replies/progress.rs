//! What the conversation's sockets see while a reply is written: `typing` from the agent side,
//! and `messageDelta` pieces of the text. Neither is stored; both go to every instance.

use std::cell::Cell;
use std::time::Duration;

use frontdesk_domain::event::MessageDelta;
use frontdesk_domain::{Audience, Conversation, ConversationId, MessageId};
use frontdesk_store::{DeltaSignal, Origin, Store, TypingSignal};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// At most one delta frame per conversation this often: tokens arrive far faster than a
/// reader (or a NOTIFY channel) needs them.
const DELTA_INTERVAL: Duration = Duration::from_millis(40);
/// The longest piece one frame carries (a NOTIFY payload must stay under 8000 bytes).
const MAX_PIECE_CHARS: usize = 1_000;

/// The typing indicator of the bot in one conversation; remembers whether it is on, so that
/// the job's end switches off exactly what was switched on.
pub(super) struct Typing {
    store: Store,
    audience: Audience,
    conversation: ConversationId,
    on: Cell<bool>,
}

impl Typing {
    pub(super) fn new(store: &Store, conversation: &Conversation) -> Self {
        Self {
            store: store.clone(),
            audience: Audience::conversation(conversation),
            conversation: conversation.id,
            on: Cell::new(false),
        }
    }

    pub(super) fn is_on(&self) -> bool {
        self.on.get()
    }

    pub(super) async fn set(&self, on: bool) {
        self.on.set(on);
        let typing = frontdesk_domain::Typing {
            conversation_id: self.conversation,
            is_typing: on,
            is_agent: true,
        };
        // No socket is named "bot": every connection of the conversation hears it.
        let signal = TypingSignal::new(Origin::new("bot"), &self.audience, typing);
        if let Err(error) = self.store.publish_typing(signal).await {
            tracing::warn!(conversation = self.conversation.0, %error, on, "bot typing not sent");
        }
    }
}

/// Publishes the model's text as it arrives, coalesced, until the model is done (the sender
/// side of `pieces` is dropped). The last piece goes out at once.
pub(super) async fn relay_deltas(
    store: &Store,
    conversation: &Conversation,
    reply_to: MessageId,
    mut pieces: mpsc::UnboundedReceiver<String>,
) {
    let audience = Audience::conversation(conversation);
    let mut seq = 0u32;
    let mut warned = false;
    let mut due = Instant::now();
    while let Some(first) = pieces.recv().await {
        let mut text = first;
        let ended = loop {
            if Instant::now() >= due || text.chars().count() >= MAX_PIECE_CHARS {
                break false;
            }
            match tokio::time::timeout_at(due, pieces.recv()).await {
                Ok(Some(more)) => text.push_str(&more),
                Ok(None) => break true,
                Err(_) => break false,
            }
        };
        for piece in split(&text) {
            let delta = MessageDelta {
                conversation_id: conversation.id,
                reply_to,
                seq,
                text: piece,
            };
            seq += 1;
            if let Err(error) = store
                .publish_delta(DeltaSignal::new(&audience, delta))
                .await
            {
                // Once per reply: the stored message follows anyway.
                if !warned {
                    tracing::warn!(conversation = conversation.id.0, %error, "reply deltas not sent");
                    warned = true;
                }
            }
        }
        due = Instant::now() + DELTA_INTERVAL;
        if ended {
            break;
        }
    }
}

/// `text` in pieces of at most `MAX_PIECE_CHARS` characters.
fn split(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(MAX_PIECE_CHARS)
        .map(|chunk| chunk.iter().collect())
        .collect()
}
