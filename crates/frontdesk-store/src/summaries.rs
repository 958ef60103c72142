//! Conversation lists for agents, with their context loaded in a fixed number of queries
//! (not one per conversation).

use std::collections::HashMap;

use diesel::dsl::{count_star, max, min};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use frontdesk_domain::summary::{ConversationSummary, CustomerBrief, PartnerBrief};
use frontdesk_domain::{AgentId, Conversation, ConversationStatus, Message, PartnerId};

use crate::error::StoreError;
use crate::pool::with_conn;
use crate::rows::{convert_all, MessageRow};
use crate::schema::{customers, messages, partners};
use crate::Store;

type Names = (
    Vec<(i64, String)>,
    Vec<(i64, String, Option<String>, Option<String>)>,
    Vec<(i64, Option<i64>, Option<i64>)>,
    Vec<(i64, i64)>,
);

impl Store {
    /// `list_conversations` with each conversation's customer, partner, first and last
    /// message and unread count.
    pub async fn conversation_summaries(
        &self,
        status: Option<ConversationStatus>,
        holder: Option<AgentId>,
        limit: i64,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        let conversations = self.list_conversations(status, holder, limit).await?;
        if conversations.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = conversations.iter().map(|c| c.id.0).collect();
        let partner_ids: Vec<i64> = conversations.iter().map(|c| c.partner_id.0).collect();
        let customer_ids: Vec<String> = conversations
            .iter()
            .map(|c| c.customer_id.as_str().to_owned())
            .collect();
        let conversation_ids: Vec<_> = conversations.iter().map(|c| c.id).collect();
        let handoffs = self.handoffs(&conversation_ids).await?;
        let mut db = self.pool.get().await?;
        let (partner_rows, customer_rows, bounds, unread): Names = with_conn!(db, |conn| {
            let partner_rows = partners::table
                .filter(partners::id.eq_any(&partner_ids))
                .select((partners::id, partners::name))
                .load(conn)
                .await?;
            let customer_rows = customers::table
                .filter(customers::partner_id.eq_any(&partner_ids))
                .filter(customers::id.eq_any(&customer_ids))
                .select((
                    customers::partner_id,
                    customers::id,
                    customers::name,
                    customers::email,
                ))
                .load(conn)
                .await?;
            let bounds = messages::table
                .filter(messages::conversation_id.eq_any(&ids))
                .group_by(messages::conversation_id)
                .select((
                    messages::conversation_id,
                    min(messages::id),
                    max(messages::id),
                ))
                .load(conn)
                .await?;
            let unread = messages::table
                .filter(messages::conversation_id.eq_any(&ids))
                .filter(messages::is_from_agent.eq(false))
                .filter(messages::read_status.eq(false))
                .group_by(messages::conversation_id)
                .select((messages::conversation_id, count_star()))
                .load(conn)
                .await?;
            (partner_rows, customer_rows, bounds, unread)
        });
        let edge_ids: Vec<i64> = bounds
            .iter()
            .flat_map(|(_, first, last)| [*first, *last])
            .flatten()
            .collect();
        let edge_rows: Vec<MessageRow> = with_conn!(db, |conn| {
            messages::table
                .filter(messages::id.eq_any(&edge_ids))
                .select(MessageRow::as_select())
                .load(conn)
                .await?
        });
        let edges: HashMap<i64, Message> = convert_all::<_, Message>(edge_rows)?
            .into_iter()
            .map(|m| (m.id.0, m))
            .collect();
        let partners: HashMap<i64, String> = partner_rows.into_iter().collect();
        let customers: HashMap<(i64, String), (Option<String>, Option<String>)> = customer_rows
            .into_iter()
            .map(|(p, id, name, email)| ((p, id), (name, email)))
            .collect();
        let bounds: HashMap<i64, (Option<i64>, Option<i64>)> = bounds
            .into_iter()
            .map(|(c, first, last)| (c, (first, last)))
            .collect();
        let unread: HashMap<i64, i64> = unread.into_iter().collect();

        Ok(conversations
            .into_iter()
            .map(|conversation: Conversation| {
                let key = (
                    conversation.partner_id.0,
                    conversation.customer_id.as_str().to_owned(),
                );
                let (name, email) = customers.get(&key).cloned().unwrap_or_default();
                let (first, last) = bounds.get(&conversation.id.0).copied().unwrap_or_default();
                ConversationSummary {
                    customer: CustomerBrief {
                        id: conversation.customer_id.clone(),
                        name,
                        email,
                    },
                    partner: PartnerBrief {
                        id: PartnerId(conversation.partner_id.0).to_string(),
                        name: partners
                            .get(&conversation.partner_id.0)
                            .cloned()
                            .unwrap_or_default(),
                    },
                    first_message: first.and_then(|id| edges.get(&id).cloned()),
                    last_message: last.and_then(|id| edges.get(&id).cloned()),
                    unread_count: unread.get(&conversation.id.0).copied().unwrap_or(0),
                    handoff: handoffs.get(&conversation.id).cloned(),
                    conversation,
                }
            })
            .collect())
    }
}
