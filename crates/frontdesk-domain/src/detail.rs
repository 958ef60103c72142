//! What an agent sees of one conversation: the conversation, its customer with the Flashback
//! profile, and the partner the customer came through.

use serde::Serialize;
use time::Date;

use crate::conversation::Conversation;
use crate::customer::{serialize_birthdate, Customer, CustomerId};
use crate::flashback::FlashbackProfile;
use crate::handoff::Handoff;
use crate::partner::Partner;
use crate::timestamp::Timestamp;

/// `GET /api/agent/conversations/:id`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationDetail {
    #[serde(flatten)]
    pub conversation: Conversation,
    pub customer: CustomerCard,
    /// Set once the automated responder gave the conversation to a person.
    pub handoff: Option<Handoff>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerCard {
    pub id: CustomerId,
    pub email: Option<String>,
    pub name: Option<String>,
    #[serde(serialize_with = "serialize_birthdate")]
    pub birthdate: Option<Date>,
    pub partner: PartnerCard,
    /// Only agents see it: partners get it as the `flashback` event.
    pub flashback: Option<FlashbackProfile>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartnerCard {
    /// `partner-<n>`.
    pub id: String,
    pub name: String,
    pub domain: String,
}

impl ConversationDetail {
    pub fn new(
        conversation: Conversation,
        customer: Customer,
        partner: Partner,
        handoff: Option<Handoff>,
    ) -> Self {
        Self {
            conversation,
            handoff,
            customer: CustomerCard {
                id: customer.id,
                email: customer.email,
                name: customer.name,
                birthdate: customer.birthdate,
                partner: PartnerCard {
                    id: partner.id.to_string(),
                    name: partner.name,
                    domain: partner.domain,
                },
                flashback: customer.flashback.map(|f| f.into_profile()),
                created_at: customer.created_at,
                updated_at: customer.updated_at,
            },
        }
    }
}
