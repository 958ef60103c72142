//! Who is asking, and what they may see.

use crate::conversation::Conversation;
use crate::customer::CustomerId;
use crate::error::DomainError;
use crate::partner::PartnerId;

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    /// A partner's server, with its API key: all of that partner's customers.
    Partner(PartnerId),
    /// A browser holding a customer session token: that one customer.
    Customer(PartnerId, CustomerId),
    /// A support agent: every conversation (the queue is shared).
    Agent(i64),
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
