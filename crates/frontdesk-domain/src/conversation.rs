//! Conversations and their lifecycle: waiting -> active -> closed.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::customer::CustomerId;
use crate::error::{DomainError, ValidationError};
use crate::ids::{AgentId, ConversationId};
use crate::message::Sender;
use crate::partner::PartnerId;
use crate::timestamp::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConversationStatus {
    /// No agent yet: the automated responder answers.
    Waiting,
    /// An agent holds it.
    Active,
    /// Over: no more messages.
    Closed,
}

impl ConversationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Active => "active",
            Self::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "waiting" => Some(Self::Waiting),
            "active" => Some(Self::Active),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }
}

impl fmt::Display for ConversationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The guide's Conversation object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    pub id: ConversationId,
    #[serde(skip)]
    pub partner_id: PartnerId,
    pub customer_id: CustomerId,
    /// `null` while unassigned.
    pub agent_id: Option<AgentId>,
    pub status: ConversationStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Conversation {
    /// Whether `sender` may add a message now: the customer of this conversation until it is
    /// closed, the agent holding it, and the automated responder only while it waits.
    pub fn check_message_from(&self, sender: &Sender) -> Result<(), DomainError> {
        match sender {
            Sender::Customer(id) if *id != self.customer_id => Err(ValidationError::new(
                "senderId",
                "must be the conversation's customerId",
            )
            .into()),
            Sender::Customer(_) => self.check_customer_message(),
            Sender::Agent(agent_id) => self.check_agent_message(*agent_id),
            Sender::Bot => match self.status {
                ConversationStatus::Waiting => Ok(()),
                ConversationStatus::Active => Err(DomainError::AssignedElsewhere),
                ConversationStatus::Closed => Err(DomainError::ConversationClosed),
            },
        }
    }

    /// A customer may write until the conversation is closed.
    pub fn check_customer_message(&self) -> Result<(), DomainError> {
        match self.status {
            ConversationStatus::Closed => Err(DomainError::ConversationClosed),
            ConversationStatus::Waiting | ConversationStatus::Active => Ok(()),
        }
    }

    /// An agent takes a waiting conversation; taking one it already holds changes nothing.
    pub fn check_assign(&self, agent_id: AgentId) -> Result<(), DomainError> {
        match (self.status, self.agent_id) {
            (ConversationStatus::Closed, _) => Err(DomainError::ConversationClosed),
            (ConversationStatus::Active, Some(holder)) if holder != agent_id => {
                Err(DomainError::AssignedElsewhere)
            }
            _ => Ok(()),
        }
    }

    /// Only the agent holding an active conversation speaks in it.
    pub fn check_agent_message(&self, agent_id: AgentId) -> Result<(), DomainError> {
        match (self.status, self.agent_id) {
            (ConversationStatus::Closed, _) => Err(DomainError::ConversationClosed),
            (ConversationStatus::Active, Some(holder)) if holder == agent_id => Ok(()),
            (ConversationStatus::Active, _) => Err(DomainError::AssignedElsewhere),
            (ConversationStatus::Waiting, _) => Err(DomainError::Transition {
                from: ConversationStatus::Waiting,
                to: ConversationStatus::Active,
            }),
        }
    }

    /// Typing and read receipts from an agent: like sending, only the holder of an active
    /// conversation; any agent may still look at (and mark read) a waiting or closed one.
    pub fn check_agent_activity(&self, agent_id: AgentId) -> Result<(), DomainError> {
        match (self.status, self.agent_id) {
            (ConversationStatus::Active, Some(holder)) if holder != agent_id => {
                Err(DomainError::AssignedElsewhere)
            }
            _ => Ok(()),
        }
    }

    /// The agent holding a conversation closes it; any agent may close a waiting one (spam),
    /// and an admin any open one.
    pub fn check_close_by(&self, agent_id: AgentId, is_admin: bool) -> Result<(), DomainError> {
        self.check_close()?;
        match (self.status, self.agent_id) {
            (ConversationStatus::Active, Some(holder)) if holder != agent_id && !is_admin => {
                Err(DomainError::AssignedElsewhere)
            }
            _ => Ok(()),
        }
    }

    /// Closing twice is a conflict: the caller's view is stale.
    pub fn check_close(&self) -> Result<(), DomainError> {
        match self.status {
            ConversationStatus::Closed => Err(DomainError::ConversationClosed),
            ConversationStatus::Waiting | ConversationStatus::Active => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AgentId, ConversationId};
    use time::macros::datetime;

    fn conversation(status: ConversationStatus, agent_id: Option<i64>) -> Conversation {
        let at = Timestamp::new(datetime!(2023-01-01 00:00 UTC));
        Conversation {
            id: ConversationId(1),
            partner_id: PartnerId(1),
            customer_id: CustomerId::from_stored("customer-12345".into()),
            agent_id: agent_id.map(AgentId),
            status,
            created_at: at,
            updated_at: at,
        }
    }

    use ConversationStatus::{Active, Closed, Waiting};

    /// A case: what it is, what the rule answered, what it must answer.
    type Case<'a> = (&'a str, Result<(), DomainError>, Result<(), DomainError>);

    /// `label: got`, for every case whose outcome is not the expected one.
    fn mismatches(cases: Vec<Case>) -> String {
        cases
            .into_iter()
            .filter(|(_, got, want)| got != want)
            .map(|(label, got, want)| format!("{label}: got {got:?}, want {want:?}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    const OK: Result<(), DomainError> = Ok(());
    const CLOSED: Result<(), DomainError> = Err(DomainError::ConversationClosed);
    const TAKEN: Result<(), DomainError> = Err(DomainError::AssignedElsewhere);
    /// An agent speaking in a waiting conversation must take it first.
    const NOT_TAKEN: Result<(), DomainError> = Err(DomainError::Transition {
        from: Waiting,
        to: Active,
    });

    #[test]
    fn who_may_add_a_message() {
        let own = Sender::Customer(CustomerId::from_stored("customer-12345".into()));
        let stranger = Sender::Customer(CustomerId::from_stored("customer-99".into()));
        let wrong_customer = Err(DomainError::Invalid(ValidationError::new(
            "senderId",
            "must be the conversation's customerId",
        )));
        let waiting = conversation(Waiting, None);
        let active = conversation(Active, Some(2));
        let closed = conversation(Closed, Some(2));
        let wrong = mismatches(vec![
            ("customer, waiting", waiting.check_message_from(&own), OK),
            ("customer, active", active.check_message_from(&own), OK),
            ("customer, closed", closed.check_message_from(&own), CLOSED),
            (
                "other customer, waiting",
                waiting.check_message_from(&stranger),
                wrong_customer.clone(),
            ),
            (
                "other customer, closed",
                closed.check_message_from(&stranger),
                wrong_customer,
            ),
            (
                "holder, active",
                active.check_message_from(&Sender::Agent(AgentId(2))),
                OK,
            ),
            (
                "other agent, active",
                active.check_message_from(&Sender::Agent(AgentId(5))),
                TAKEN,
            ),
            (
                "agent, waiting",
                waiting.check_message_from(&Sender::Agent(AgentId(2))),
                NOT_TAKEN,
            ),
            (
                "holder, closed",
                closed.check_message_from(&Sender::Agent(AgentId(2))),
                CLOSED,
            ),
            ("bot, waiting", waiting.check_message_from(&Sender::Bot), OK),
            (
                "bot, active",
                active.check_message_from(&Sender::Bot),
                TAKEN,
            ),
            (
                "bot, closed",
                closed.check_message_from(&Sender::Bot),
                CLOSED,
            ),
        ]);
        assert!(wrong.is_empty(), "{wrong}");
    }

    #[test]
    fn customers_write_until_closed() {
        let wrong = mismatches(vec![
            (
                "waiting",
                conversation(Waiting, None).check_customer_message(),
                OK,
            ),
            (
                "active",
                conversation(Active, Some(2)).check_customer_message(),
                OK,
            ),
            (
                "closed",
                conversation(Closed, None).check_customer_message(),
                CLOSED,
            ),
        ]);
        assert!(wrong.is_empty(), "{wrong}");
    }

    #[test]
    fn assigning() {
        let wrong = mismatches(vec![
            (
                "waiting",
                conversation(Waiting, None).check_assign(AgentId(2)),
                OK,
            ),
            (
                "already mine",
                conversation(Active, Some(2)).check_assign(AgentId(2)),
                OK,
            ),
            (
                "another's",
                conversation(Active, Some(3)).check_assign(AgentId(2)),
                TAKEN,
            ),
            (
                "closed, was mine",
                conversation(Closed, Some(2)).check_assign(AgentId(2)),
                CLOSED,
            ),
            (
                "closed, never taken",
                conversation(Closed, None).check_assign(AgentId(5)),
                CLOSED,
            ),
        ]);
        assert!(wrong.is_empty(), "{wrong}");
    }

    #[test]
    fn only_the_holder_speaks_or_types() {
        let wrong = mismatches(vec![
            (
                "message: holder",
                conversation(Active, Some(2)).check_agent_message(AgentId(2)),
                OK,
            ),
            (
                "message: other agent",
                conversation(Active, Some(2)).check_agent_message(AgentId(5)),
                TAKEN,
            ),
            (
                "message: active without holder",
                conversation(Active, None).check_agent_message(AgentId(2)),
                TAKEN,
            ),
            (
                "message: waiting",
                conversation(Waiting, None).check_agent_message(AgentId(2)),
                NOT_TAKEN,
            ),
            (
                "message: closed, was holder",
                conversation(Closed, Some(2)).check_agent_message(AgentId(2)),
                CLOSED,
            ),
            (
                "activity: holder",
                conversation(Active, Some(2)).check_agent_activity(AgentId(2)),
                OK,
            ),
            (
                "activity: other agent",
                conversation(Active, Some(2)).check_agent_activity(AgentId(5)),
                TAKEN,
            ),
            (
                "activity: waiting",
                conversation(Waiting, None).check_agent_activity(AgentId(5)),
                OK,
            ),
            (
                "activity: closed, other agent",
                conversation(Closed, Some(2)).check_agent_activity(AgentId(5)),
                OK,
            ),
        ]);
        assert!(wrong.is_empty(), "{wrong}");
    }

    #[test]
    fn closing() {
        let wrong = mismatches(vec![
            (
                "close: waiting",
                conversation(Waiting, None).check_close(),
                OK,
            ),
            (
                "close: active",
                conversation(Active, Some(2)).check_close(),
                OK,
            ),
            (
                "close: closed",
                conversation(Closed, Some(2)).check_close(),
                CLOSED,
            ),
            (
                "waiting, any agent",
                conversation(Waiting, None).check_close_by(AgentId(5), false),
                OK,
            ),
            (
                "active, holder",
                conversation(Active, Some(2)).check_close_by(AgentId(2), false),
                OK,
            ),
            (
                "active, other agent",
                conversation(Active, Some(2)).check_close_by(AgentId(5), false),
                TAKEN,
            ),
            (
                "active, admin",
                conversation(Active, Some(2)).check_close_by(AgentId(5), true),
                OK,
            ),
            (
                "closed, holder",
                conversation(Closed, Some(2)).check_close_by(AgentId(2), false),
                CLOSED,
            ),
            (
                "closed, admin",
                conversation(Closed, Some(2)).check_close_by(AgentId(5), true),
                CLOSED,
            ),
        ]);
        assert!(wrong.is_empty(), "{wrong}");
    }

    #[test]
    fn statuses_read_and_write_as_the_guide_spells_them() {
        for (status, text) in [(Waiting, "waiting"), (Active, "active"), (Closed, "closed")] {
            assert_eq!(status.as_str(), text);
            assert_eq!(status.to_string(), text);
            assert_eq!(ConversationStatus::parse(text), Some(status));
        }
        assert_eq!(ConversationStatus::parse("Waiting"), None);
        assert_eq!(ConversationStatus::parse(""), None);
    }

    #[test]
    fn serialises_like_the_guide() {
        let json = serde_json::to_value(conversation(Active, Some(2))).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({
                "id": 1,
                "customerId": "customer-12345",
                "agentId": 2,
                "status": "active",
                "createdAt": "2023-01-01T00:00:00.000Z",
                "updatedAt": "2023-01-01T00:00:00.000Z"
            })
        );
    }
}
