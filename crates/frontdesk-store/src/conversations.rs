//! Conversations: created by partners, listed per customer.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use frontdesk_domain::event::StatusChange;
use frontdesk_domain::{
    AgentId, Audience, Conversation, ConversationId, ConversationStatus, CustomerId, Event,
    PartnerId, Viewer,
};

use crate::customers::ensure_customer;
use crate::error::{Entity, StoreError};
use crate::events::NewEventRow;
use crate::pool::with_conn;
use crate::rows::{convert_all, now, ConversationRow, NewConversationRow};
use crate::schema::conversations;
use crate::write::{write_with_events, Emitted};
use crate::Store;

impl Store {
    /// Opens a new waiting conversation, creating the customer if it is new.
    pub async fn create_conversation(
        &self,
        partner: PartnerId,
        customer: &CustomerId,
    ) -> Result<Conversation, StoreError> {
        let at = now().as_utc();
        let row = NewConversationRow {
            partner_id: partner.0,
            customer_id: customer.as_str(),
            status: ConversationStatus::Waiting.as_str(),
            created_at: at,
            updated_at: at,
        };
        write_with_events!(self, |conn| {
            ensure_customer!(conn, partner.0, customer.as_str(), at)?;
            let created: Conversation = diesel::insert_into(conversations::table)
                .values(&row)
                .returning(ConversationRow::as_returning())
                .get_result(conn)
                .await?
                .try_into()?;
            let event = NewEventRow::new(
                &Event::Status(StatusChange::of(&created)),
                &Audience::conversation(&created),
                Some(created.id),
                at,
            );
            Ok(Emitted::one(created, event))
        })
    }

    /// A customer's conversations, oldest first. A filter, not a look-up: a customer with none,
    /// known or not, has `[]` (a widget restoring history on a first visit needs no special
    /// case, and nothing tells whether a customer id exists).
    pub async fn customer_conversations(
        &self,
        partner: PartnerId,
        customer: &CustomerId,
    ) -> Result<Vec<Conversation>, StoreError> {
        let mut db = self.pool.get().await?;
        let rows: Vec<ConversationRow> = with_conn!(db, |conn| {
            conversations::table
                .filter(conversations::partner_id.eq(partner.0))
                .filter(conversations::customer_id.eq(customer.as_str()))
                .order(conversations::id.asc())
                .select(ConversationRow::as_select())
                .load(conn)
                .await?
        });
        convert_all(rows)
    }

    /// One conversation, if `viewer` may see it.
    pub async fn conversation(
        &self,
        viewer: &Viewer,
        id: ConversationId,
    ) -> Result<Conversation, StoreError> {
        let mut db = self.pool.get().await?;
        let row: Option<ConversationRow> = with_conn!(db, |conn| {
            conversations::table
                .find(id.0)
                .select(ConversationRow::as_select())
                .first(conn)
                .await
                .optional()?
        });
        let conversation: Conversation = row
            .ok_or(StoreError::NotFound(Entity::Conversation))?
            .try_into()?;
        if viewer.can_see(&conversation) {
            Ok(conversation)
        } else {
            Err(StoreError::NotFound(Entity::Conversation))
        }
    }

    /// Conversations for the agent side, newest activity first: by status, and only those
    /// held by `holder` when given.
    pub async fn list_conversations(
        &self,
        status: Option<ConversationStatus>,
        holder: Option<AgentId>,
        limit: i64,
    ) -> Result<Vec<Conversation>, StoreError> {
        let mut db = self.pool.get().await?;
        let rows: Vec<ConversationRow> = with_conn!(db, |conn| {
            let mut query = conversations::table
                .select(ConversationRow::as_select())
                .order((conversations::updated_at.desc(), conversations::id.desc()))
                .limit(limit)
                .into_boxed();
            if let Some(status) = status {
                query = query.filter(conversations::status.eq(status.as_str()));
            }
            if let Some(holder) = holder {
                query = query.filter(conversations::agent_id.eq(holder.0));
            }
            query.load(conn).await?
        });
        convert_all(rows)
    }
}
