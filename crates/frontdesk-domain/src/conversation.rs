//! Conversations and their lifecycle: waiting -> active -> closed.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::customer::CustomerId;
use crate::error::{DomainError, ValidationError};
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
    pub id: i64,
    #[serde(skip)]
    pub partner_id: PartnerId,
    pub customer_id: CustomerId,
    /// `null` while unassigned.
    pub agent_id: Option<i64>,
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
    pub fn check_assign(&self, agent_id: i64) -> Result<(), DomainError> {
        match (self.status, self.agent_id) {
            (ConversationStatus::Closed, _) => Err(DomainError::ConversationClosed),
            (ConversationStatus::Active, Some(holder)) if holder != agent_id => {
                Err(DomainError::AssignedElsewhere)
            }
            _ => Ok(()),
        }
    }

    /// Only the agent holding an active conversation speaks in it.
    pub fn check_agent_message(&self, agent_id: i64) -> Result<(), DomainError> {
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
    pub fn check_agent_activity(&self, agent_id: i64) -> Result<(), DomainError> {
        match (self.status, self.agent_id) {
            (ConversationStatus::Active, Some(holder)) if holder != agent_id => {
                Err(DomainError::AssignedElsewhere)
            }
            _ => Ok(()),
        }
    }

    /// The agent holding a conversation closes it; any agent may close a waiting one (spam),
    /// and an admin any open one.
    pub fn check_close_by(&self, agent_id: i64, is_admin: bool) -> Result<(), DomainError> {
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
    use time::macros::datetime;

    fn conversation(status: ConversationStatus, agent_id: Option<i64>) -> Conversation {
        let at = Timestamp::new(datetime!(2023-01-01 00:00 UTC));
        Conversation {
            id: 1,
            partner_id: PartnerId(1),
            customer_id: CustomerId::from_stored("customer-12345".into()),
            agent_id,
            status,
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn lifecycle_rules() {
        use ConversationStatus::*;
        assert!(conversation(Waiting, None).check_customer_message().is_ok());
        assert!(conversation(Active, Some(2))
            .check_customer_message()
            .is_ok());
        assert_eq!(
            conversation(Closed, None).check_customer_message(),
            Err(DomainError::ConversationClosed)
        );
        assert!(conversation(Waiting, None).check_assign(2).is_ok());
        assert!(conversation(Active, Some(2)).check_assign(2).is_ok());
        assert_eq!(
            conversation(Active, Some(3)).check_assign(2),
            Err(DomainError::AssignedElsewhere)
        );
        assert!(conversation(Active, Some(2)).check_agent_message(2).is_ok());
        assert!(conversation(Waiting, None).check_agent_message(2).is_err());
        assert_eq!(
            conversation(Closed, Some(2)).check_close(),
            Err(DomainError::ConversationClosed)
        );
        assert!(conversation(Waiting, None).check_close_by(5, false).is_ok());
        assert!(conversation(Active, Some(2))
            .check_close_by(2, false)
            .is_ok());
        assert_eq!(
            conversation(Active, Some(2)).check_close_by(5, false),
            Err(DomainError::AssignedElsewhere)
        );
        assert!(conversation(Active, Some(2))
            .check_close_by(5, true)
            .is_ok());
        assert!(conversation(Waiting, None).check_agent_activity(5).is_ok());
        assert!(conversation(Active, Some(2))
            .check_agent_activity(2)
            .is_ok());
        assert_eq!(
            conversation(Active, Some(2)).check_agent_activity(5),
            Err(DomainError::AssignedElsewhere)
        );
    }

    #[test]
    fn serialises_like_the_guide() {
        let json = serde_json::to_value(conversation(ConversationStatus::Active, Some(2)))
            .unwrap_or_default();
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
