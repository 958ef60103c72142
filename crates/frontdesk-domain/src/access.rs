//! Who is asking, and what they may see.

use crate::conversation::Conversation;
use crate::customer::CustomerId;
use crate::error::DomainError;
use crate::ids::AgentId;
use crate::partner::PartnerId;

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    /// A partner's server, with its API key: all of that partner's customers.
    Partner(PartnerId),
    /// A browser holding a customer session token: that one customer.
    Customer(PartnerId, CustomerId),
    /// A support agent: every conversation (the queue is shared).
    Agent(AgentId),
}

impl Viewer {
    pub fn partner(&self) -> Option<PartnerId> {
        match self {
            Viewer::Partner(p) | Viewer::Customer(p, _) => Some(*p),
            Viewer::Agent(_) => None,
        }
    }

    /// Another partner's conversation is indistinguishable from a missing one.
    pub fn can_see(&self, conversation: &Conversation) -> bool {
        match self {
            Viewer::Partner(p) => conversation.partner_id == *p,
            Viewer::Customer(p, c) => {
                conversation.partner_id == *p && conversation.customer_id == *c
            }
            Viewer::Agent(_) => true,
        }
    }

    /// Whether this viewer may send typing and read receipts in a conversation it can see:
    /// an agent not in one another agent holds (the same rule as for sending).
    pub fn check_activity(&self, conversation: &Conversation) -> Result<(), DomainError> {
        match self {
            Viewer::Agent(agent) => conversation.check_agent_activity(*agent),
            Viewer::Partner(_) | Viewer::Customer(..) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::ConversationStatus;
    use crate::ids::{AgentId, ConversationId};
    use crate::timestamp::Timestamp;
    use time::macros::datetime;

    fn conversation(partner: i64, customer: &str, agent: Option<i64>) -> Conversation {
        let at = Timestamp::new(datetime!(2023-01-01 00:00 UTC));
        Conversation {
            id: ConversationId(1),
            partner_id: PartnerId(partner),
            customer_id: CustomerId::from_stored(customer.into()),
            agent_id: agent.map(AgentId),
            status: if agent.is_some() {
                ConversationStatus::Active
            } else {
                ConversationStatus::Waiting
            },
            created_at: at,
            updated_at: at,
        }
    }

    fn ann() -> CustomerId {
        CustomerId::from_stored("ann".into())
    }

    #[test]
    fn partners_and_customers_see_only_their_own() {
        let mine = conversation(1, "ann", None);
        let sibling = conversation(1, "bob", None);
        let same_id_elsewhere = conversation(2, "ann", None);
        let partner = Viewer::Partner(PartnerId(1));
        let customer = Viewer::Customer(PartnerId(1), ann());
        assert_eq!(partner.partner(), Some(PartnerId(1)));
        assert_eq!(customer.partner(), Some(PartnerId(1)));
        assert_eq!(Viewer::Agent(AgentId(2)).partner(), None);
        let seen =
            |viewer: &Viewer| [&mine, &sibling, &same_id_elsewhere].map(|c| viewer.can_see(c));
        assert_eq!(seen(&partner), [true, true, false]);
        assert_eq!(seen(&customer), [true, false, false]);
        assert_eq!(
            seen(&Viewer::Agent(AgentId(2))),
            [true, true, true],
            "the queue is shared"
        );
    }

    #[test]
    fn only_agents_are_held_to_the_holder_rule() {
        let held = conversation(1, "ann", Some(2));
        assert_eq!(Viewer::Agent(AgentId(2)).check_activity(&held), Ok(()));
        assert_eq!(
            Viewer::Agent(AgentId(5)).check_activity(&held),
            Err(DomainError::AssignedElsewhere)
        );
        assert_eq!(
            Viewer::Customer(PartnerId(1), ann()).check_activity(&held),
            Ok(())
        );
        assert_eq!(Viewer::Partner(PartnerId(1)).check_activity(&held), Ok(()));
    }
}
