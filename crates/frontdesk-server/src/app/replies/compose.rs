//! Writing the reply: the model (streamed as `messageDelta` frames), or the offline responder.

use frontdesk_domain::handoff::HandoffReason;
use std::cell::RefCell;
use std::collections::HashMap;

use frontdesk_domain::{Message, PartnerId};
use frontdesk_llm::prompt::{self, PromptInput};
use frontdesk_llm::{LlmClient, LlmError, OfflineResponder};
use frontdesk_store::{ReplyJob, Store};
use tokio::sync::mpsc;

use super::progress;

/// The built-in system prompt (`--llm-system-prompt-file` replaces it).
pub(super) const DEFAULT_SYSTEM_PROMPT: &str = "You are a friendly, concise customer-support \
assistant. Answer in the customer's language, in a few sentences, from what the conversation \
says. Never invent order details, prices or policies you were not told. When the customer \
asks for a person, is upset, or needs something you cannot do, call handoff_to_human.";

pub(super) enum Composer {
    Model {
        /// Boxed: the client is large, and there is one composer per instance.
        client: Box<LlmClient>,
        system: String,
        history_tokens: usize,
        /// Streamed with deltas (tools on), or whole (the structured-output fallback).
        streamed: bool,
        /// Partners' names, which never change: one query fewer per reply.
        partners: RefCell<HashMap<PartnerId, String>>,
    },
    Offline(OfflineResponder),
}

pub(super) enum Composed {
    Text {
        text: String,
        tokens: u64,
    },
    HandOff(HandoffReason),
    /// Nothing to say (the offline responder greeted already).
    Nothing,
}

impl Composer {
    /// What a model call abandoned midway is charged: the prompt's upper bound, since the
    /// model server bills what it read whether or not the reply is kept.
    pub(super) fn abandoned_call_cost(&self) -> u64 {
        match self {
            Composer::Offline(_) => 0,
            Composer::Model { history_tokens, .. } => *history_tokens as u64,
        }
    }

    async fn partner_name(&self, store: &Store, partner: PartnerId) -> String {
        let Composer::Model { partners, .. } = self else {
            return String::new();
        };
        if let Some(name) = partners.borrow().get(&partner) {
            return name.clone();
        }
        // A failed look-up leaves the name out of this prompt rather than fail the reply.
        match store.partner(partner).await {
            Ok(found) => {
                partners.borrow_mut().insert(partner, found.name.clone());
                found.name
            }
            Err(_) => String::new(),
        }
    }

    /// Whether composing would say anything (the offline responder greets once).
    pub(super) fn will_speak(&self, history: &[Message]) -> bool {
        match self {
            Composer::Offline(offline) => offline.reply(history).is_some(),
            Composer::Model { .. } => true,
        }
    }

    pub(super) async fn compose(
        &self,
        store: &Store,
        job: &ReplyJob,
        history: &[Message],
    ) -> Result<Composed, LlmError> {
        let (client, system, history_tokens, streamed) = match self {
            Composer::Offline(offline) => {
                return Ok(match offline.reply(history) {
                    Some(text) => Composed::Text { text, tokens: 0 },
                    None => Composed::Nothing,
                })
            }
            Composer::Model {
                client,
                system,
                history_tokens,
                streamed,
                ..
            } => (client, system, *history_tokens, *streamed),
        };
        let conversation = &job.conversation;
        let partner = self.partner_name(store, conversation.partner_id).await;
        let messages = prompt::build(&PromptInput {
            system,
            partner_name: &partner,
            history,
            flashback: job.flashback.as_ref(),
            token_budget: history_tokens,
        });
        let reply = if streamed {
            let (pieces, heard) = mpsc::unbounded_channel::<String>();
            let call = async {
                let pieces = pieces;
                let reply = client
                    .stream(&messages, &mut |text: &str| {
                        let _ = pieces.send(text.to_owned());
                    })
                    .await;
                drop(pieces);
                reply
            };
            let relay = progress::relay_deltas(store, conversation, job.trigger, heard);
            tokio::join!(call, relay).0?
        } else {
            client.complete(&messages).await?
        };
        if let Some(reason) = reply.handoff {
            return Ok(Composed::HandOff(HandoffReason::from_model(&reason)));
        }
        let tokens = reply.tokens.unwrap_or_else(|| {
            let prompt: usize = messages
                .iter()
                .map(|m| prompt::estimate_tokens(&m.content))
                .sum();
            (prompt + prompt::estimate_tokens(&reply.text)) as u64
        });
        Ok(Composed::Text {
            text: reply.text,
            tokens,
        })
    }
}
