//! When the automated responder answers and when it hands a conversation to a person
//! (contract.md, "Automated replies"). Pure: the server feeds it the conversation, what the
//! bot has done in it so far, and the customer's words; it says what happens next.

use serde::Serialize;

use crate::conversation::{Conversation, ConversationStatus};
use crate::timestamp::Timestamp;

/// Why the bot stopped for good in a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandoffReason {
    /// The model called `handoff_to_human(reason)`.
    Model(String),
    /// The customer asked for a person.
    CustomerAsked,
    /// The conversation used its budget of automated replies or tokens.
    Budget,
    /// The model failed this many times in a row for this conversation.
    ModelFailing,
    /// The instance was making as many model calls as it allows: the customer is not kept
    /// waiting in a queue of unknown length.
    Busy,
}

/// The longest reason the model may give, in characters: it is shown to agents, and the
/// model's words can be steered by the customer.
pub const MODEL_REASON_MAX_CHARS: usize = 200;

impl HandoffReason {
    /// The model's own reason, made fit to show: control characters removed, cut to
    /// `MODEL_REASON_MAX_CHARS`; a generic one if nothing is left.
    pub fn from_model(reason: &str) -> Self {
        let clean: String = reason
            .chars()
            .filter(|c| !c.is_control())
            .take(MODEL_REASON_MAX_CHARS)
            .collect();
        let clean = clean.trim();
        HandoffReason::Model(if clean.is_empty() {
            "the assistant asked for a person".to_owned()
        } else {
            clean.to_owned()
        })
    }

    /// For agents (the `handoff.reason` of the agent API).
    pub fn describe(&self) -> String {
        match self {
            HandoffReason::Model(reason) => reason.clone(),
            HandoffReason::CustomerAsked => "the customer asked for a person".to_owned(),
            HandoffReason::Budget => "the automated replies' budget is used up".to_owned(),
            HandoffReason::ModelFailing => "the assistant is not answering".to_owned(),
            HandoffReason::Busy => "the assistant is busy".to_owned(),
        }
    }
}

/// A conversation's hand-off as agents see it: `handoff` in the agent API, `null` when the
/// automated responder has not handed it over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Handoff {
    pub reason: String,
    pub at: Timestamp,
}

/// What the bot has done in one conversation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BotState {
    #[default]
    Fresh,
    Answering {
        replies: u32,
        tokens: u64,
        failures: u32,
    },
    /// Final: the bot never speaks in this conversation again.
    HandedOff(Handoff),
}

/// Per-conversation limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BotBudget {
    pub max_replies: u32,
    pub max_tokens: u64,
    /// Consecutive model failures before handing off.
    pub max_failures: u32,
}

impl Default for BotBudget {
    fn default() -> Self {
        Self {
            max_replies: 10,
            max_tokens: 20_000,
            max_failures: 3,
        }
    }
}

/// What to do about a customer's new message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Ask the model.
    Reply,
    /// Post the one hand-off notice, and stop for good.
    HandOff(HandoffReason),
    /// Say nothing: an agent holds it, it is closed, or the bot has handed off already.
    Silent,
}

/// Phrases with which customers ask for a person, in several languages; compared without
/// case. A deployment may replace them.
pub const DEFAULT_PERSON_PHRASES: &[&str] = &[
    "human",
    "real person",
    "a person",
    "an agent",
    "talk to someone",
    "speak to someone",
    "customer service",
    "representative",
    "operator",
    "mensch",
    "mitarbeiter",
    "une personne",
    "un humain",
    "conseiller",
    "una persona",
    "un humano",
    "un agente",
    "een mens",
    "medewerker",
];

/// Whether the customer asks for a person.
pub fn asks_for_person(text: &str, phrases: &[impl AsRef<str>]) -> bool {
    let text = text.to_lowercase();
    phrases
        .iter()
        .map(|phrase| phrase.as_ref().trim().to_lowercase())
        .any(|phrase| !phrase.is_empty() && contains_words(&text, &phrase))
}

/// `phrase` in `text` on word boundaries ("human" is not in "humanity").
fn contains_words(text: &str, phrase: &str) -> bool {
    text.match_indices(phrase).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + phrase.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

impl BotState {
    /// What happens after a customer's message `text` in `conversation`.
    pub fn next(
        &self,
        conversation: &Conversation,
        text: &str,
        budget: &BotBudget,
        phrases: &[impl AsRef<str>],
    ) -> Next {
        if conversation.status != ConversationStatus::Waiting || conversation.agent_id.is_some() {
            return Next::Silent;
        }
        let (replies, tokens) = match self {
            BotState::HandedOff(_) => return Next::Silent,
            BotState::Fresh => (0, 0),
            BotState::Answering {
                replies, tokens, ..
            } => (*replies, *tokens),
        };
        if asks_for_person(text, phrases) {
            return Next::HandOff(HandoffReason::CustomerAsked);
        }
        if replies >= budget.max_replies || tokens >= budget.max_tokens {
            return Next::HandOff(HandoffReason::Budget);
        }
        Next::Reply
    }

    /// After a stored automated reply that cost `tokens`.
    pub fn replied(&self, tokens: u64) -> BotState {
        match self {
            BotState::HandedOff(_) => self.clone(),
            BotState::Fresh => BotState::Answering {
                replies: 1,
                tokens,
                failures: 0,
            },
            BotState::Answering {
                replies, tokens: t, ..
            } => BotState::Answering {
                replies: replies + 1,
                tokens: t + tokens,
                failures: 0,
            },
        }
    }

    /// After model work that produced no stored reply (a call cancelled by a newer message,
    /// or a reply that message superseded): its tokens count against the budget all the same,
    /// so a flood of messages cannot buy calls for free.
    pub fn spent(&self, tokens: u64) -> BotState {
        match self {
            BotState::HandedOff(_) => self.clone(),
            BotState::Fresh => BotState::Answering {
                replies: 0,
                tokens,
                failures: 0,
            },
            BotState::Answering {
                replies,
                tokens: t,
                failures,
            } => BotState::Answering {
                replies: *replies,
                tokens: t + tokens,
                failures: *failures,
            },
        }
    }

    /// After a failed model call: hands off once failures reach the budget.
    pub fn failed(&self, budget: &BotBudget) -> Next {
        let failures = match self {
            BotState::HandedOff(_) => return Next::Silent,
            BotState::Fresh => 1,
            BotState::Answering { failures, .. } => failures + 1,
        };
        if failures >= budget.max_failures {
            Next::HandOff(HandoffReason::ModelFailing)
        } else {
            Next::Silent
        }
    }

    /// The state a failure leaves (when it does not hand off).
    pub fn with_failure(&self) -> BotState {
        match self {
            BotState::HandedOff(_) => self.clone(),
            BotState::Fresh => BotState::Answering {
                replies: 0,
                tokens: 0,
                failures: 1,
            },
            BotState::Answering {
                replies,
                tokens,
                failures,
            } => BotState::Answering {
                replies: *replies,
                tokens: *tokens,
                failures: failures + 1,
            },
        }
    }

    pub fn handed_off(reason: &HandoffReason, at: Timestamp) -> BotState {
        BotState::HandedOff(Handoff {
            reason: reason.describe(),
            at,
        })
    }

    /// The state as stored: counters, and the hand-off once there is one.
    pub fn from_stored(replies: u32, tokens: u64, failures: u32, handoff: Option<Handoff>) -> Self {
        match handoff {
            Some(handoff) => BotState::HandedOff(handoff),
            None if replies == 0 && tokens == 0 && failures == 0 => BotState::Fresh,
            None => BotState::Answering {
                replies,
                tokens,
                failures,
            },
        }
    }

    /// How many automated replies were stored (0 once handed off: it no longer matters).
    pub fn replies(&self) -> u32 {
        match self {
            BotState::Answering { replies, .. } => *replies,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customer::CustomerId;
    use crate::ids::{AgentId, ConversationId};
    use crate::partner::PartnerId;
    use time::macros::datetime;

    fn at() -> Timestamp {
        Timestamp::new(datetime!(2026-12-01 12:00 UTC))
    }

    fn conversation(status: ConversationStatus, agent: Option<i64>) -> Conversation {
        Conversation {
            id: ConversationId(1),
            partner_id: PartnerId(1),
            customer_id: CustomerId::from_stored("ann".into()),
            agent_id: agent.map(AgentId),
            status,
            created_at: at(),
            updated_at: at(),
        }
    }

    const PHRASES: &[&str] = DEFAULT_PERSON_PHRASES;

    #[test]
    fn the_stored_counters_read_back_as_the_state_they_were() {
        assert_eq!(BotState::from_stored(0, 0, 0, None), BotState::Fresh);
        let answering = BotState::Answering {
            replies: 2,
            tokens: 50,
            failures: 1,
        };
        assert_eq!(BotState::from_stored(2, 50, 1, None), answering);
        assert_eq!(
            BotState::from_stored(0, 0, 1, None),
            BotState::Answering {
                replies: 0,
                tokens: 0,
                failures: 1
            }
        );
        let handoff = Handoff {
            reason: "the customer asked for a person".into(),
            at: at(),
        };
        assert_eq!(
            BotState::from_stored(3, 10, 0, Some(handoff.clone())),
            BotState::HandedOff(handoff)
        );
        assert_eq!(answering.replies(), 2);
        assert_eq!(BotState::Fresh.replies(), 0);
        assert_eq!(BotState::Fresh.replied(7).replied(7).replies(), 2);
    }

    #[test]
    fn the_models_reason_is_cut_and_cleaned_before_agents_see_it() {
        let long = "x".repeat(500);
        assert_eq!(
            HandoffReason::from_model(&long).describe().chars().count(),
            MODEL_REASON_MAX_CHARS
        );
        assert_eq!(
            HandoffReason::from_model(" wants\u{0} a\nrefund ").describe(),
            "wants arefund"
        );
        assert_eq!(
            HandoffReason::from_model("\u{7}  ").describe(),
            "the assistant asked for a person"
        );
    }

    #[test]
    fn work_that_stored_nothing_still_counts_against_the_token_budget() {
        let budget = BotBudget::default();
        let waiting = conversation(ConversationStatus::Waiting, None);
        let state = BotState::Fresh.spent(15_000);
        assert_eq!(
            state,
            BotState::Answering {
                replies: 0,
                tokens: 15_000,
                failures: 0
            }
        );
        assert_eq!(state.next(&waiting, "hi", &budget, PHRASES), Next::Reply);
        let state = state.replied(100).spent(5_000);
        assert_eq!(
            state,
            BotState::Answering {
                replies: 1,
                tokens: 20_100,
                failures: 0
            }
        );
        assert_eq!(
            state.next(&waiting, "hi", &budget, PHRASES),
            Next::HandOff(HandoffReason::Budget)
        );
        let done = BotState::handed_off(&HandoffReason::Budget, at());
        assert_eq!(done.spent(1), done);
    }

    #[test]
    fn the_bot_answers_only_while_the_conversation_waits_for_an_agent() {
        let budget = BotBudget::default();
        let waiting = conversation(ConversationStatus::Waiting, None);
        assert_eq!(
            BotState::Fresh.next(&waiting, "Where is my order?", &budget, PHRASES),
            Next::Reply
        );
        for held in [
            conversation(ConversationStatus::Active, Some(2)),
            conversation(ConversationStatus::Closed, Some(2)),
            conversation(ConversationStatus::Closed, None),
        ] {
            assert_eq!(
                BotState::Fresh.next(&held, "Hello?", &budget, PHRASES),
                Next::Silent
            );
        }
        let done = BotState::handed_off(&HandoffReason::CustomerAsked, at());
        assert_eq!(
            done.next(&waiting, "Hello?", &budget, PHRASES),
            Next::Silent,
            "for good"
        );
        assert_eq!(
            done.replied(10),
            done,
            "nothing moves a handed-off conversation"
        );
    }

    #[test]
    fn asking_for_a_person_hands_off_without_the_model_in_several_languages() {
        let budget = BotBudget::default();
        let waiting = conversation(ConversationStatus::Waiting, None);
        for text in [
            "Can I talk to a HUMAN please",
            "I want a real person!",
            "Ich möchte mit einem Mitarbeiter sprechen",
            "Je voudrais parler à un conseiller",
            "Quiero hablar con una persona",
        ] {
            assert_eq!(
                BotState::Fresh.next(&waiting, text, &budget, PHRASES),
                Next::HandOff(HandoffReason::CustomerAsked),
                "{text}"
            );
        }
        // Whole words only: "human" is not in "humanity", nor "operator" in "operators".
        for text in [
            "Humanity is great",
            "My order number is 42",
            "operators-only",
        ] {
            assert_eq!(
                BotState::Fresh.next(&waiting, text, &budget, PHRASES),
                Next::Reply,
                "{text}"
            );
        }
        assert!(asks_for_person("bitte einen Menschen", &["menschen"]));
        assert!(
            !asks_for_person("human", &[" "]),
            "a blank phrase matches nothing"
        );
    }

    #[test]
    fn the_budget_and_repeated_failures_hand_off() {
        let budget = BotBudget {
            max_replies: 2,
            max_tokens: 100,
            max_failures: 2,
        };
        let waiting = conversation(ConversationStatus::Waiting, None);
        let once = BotState::Fresh.replied(30);
        assert_eq!(once.next(&waiting, "and?", &budget, PHRASES), Next::Reply);
        let twice = once.replied(30);
        assert_eq!(
            twice,
            BotState::Answering {
                replies: 2,
                tokens: 60,
                failures: 0
            }
        );
        assert_eq!(
            twice.next(&waiting, "and?", &budget, PHRASES),
            Next::HandOff(HandoffReason::Budget),
            "two replies"
        );
        let costly = BotState::Fresh.replied(100);
        assert_eq!(
            costly.next(&waiting, "and?", &budget, PHRASES),
            Next::HandOff(HandoffReason::Budget),
            "a hundred tokens"
        );
        assert_eq!(BotState::Fresh.failed(&budget), Next::Silent);
        let failed = BotState::Fresh.with_failure();
        assert_eq!(
            failed.failed(&budget),
            Next::HandOff(HandoffReason::ModelFailing)
        );
        assert_eq!(
            failed.replied(5),
            BotState::Answering {
                replies: 1,
                tokens: 5,
                failures: 0
            },
            "a reply resets failures"
        );
        assert_eq!(HandoffReason::Model("refund".into()).describe(), "refund");
        assert_eq!(
            BotState::Fresh.replied(5).with_failure().with_failure(),
            BotState::Answering {
                replies: 1,
                tokens: 5,
                failures: 2
            },
            "failures add up after a reply"
        );
    }
}
