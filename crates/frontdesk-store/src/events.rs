//! The event log: appended inside the transaction that makes the change, read back by cursor.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use frontdesk_domain::{
    AgentId, Audience, ConversationId, Cursor, CustomerId, PartnerId, Recipient,
};

use frontdesk_domain::event::AGENT_ONLY_KINDS;

use crate::error::StoreError;
use crate::pool::with_conn;
use crate::schema::events;
use crate::Store;

/// An event as the log holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub id: Cursor,
    pub kind: String,
    /// The payload as JSON text, ready to be framed.
    pub payload: String,
    pub conversation_id: Option<ConversationId>,
    pub audience: Audience,
}

/// `None` is NULL (not DEFAULT), which lets SQLite insert many rows in one statement.
#[derive(Insertable)]
#[diesel(table_name = events, treat_none_as_default_value = false)]
pub(crate) struct NewEventRow {
    pub kind: &'static str,
    pub partner_id: i64,
    pub customer_id: String,
    pub conversation_id: Option<i64>,
    pub agent_id: Option<i64>,
    pub all_agents: bool,
    pub payload: String,
    pub created_at: time::PrimitiveDateTime,
}

impl NewEventRow {
    pub(crate) fn new(
        event: &frontdesk_domain::Event,
        audience: &Audience,
        conversation_id: Option<ConversationId>,
        at: time::PrimitiveDateTime,
    ) -> Self {
        Self {
            kind: event.kind(),
            partner_id: audience.partner.0,
            customer_id: audience.customer.as_str().to_owned(),
            conversation_id: conversation_id.map(|id| id.0),
            agent_id: audience.agent.map(|id| id.0),
            all_agents: audience.all_agents,
            payload: event.payload_json(),
            created_at: at,
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = events)]
struct EventRow {
    id: i64,
    kind: String,
    partner_id: i64,
    customer_id: String,
    conversation_id: Option<i64>,
    agent_id: Option<i64>,
    all_agents: bool,
    payload: String,
}

impl From<EventRow> for StoredEvent {
    fn from(row: EventRow) -> Self {
        StoredEvent {
            id: Cursor(row.id),
            kind: row.kind,
            payload: row.payload,
            conversation_id: row.conversation_id.map(ConversationId),
            audience: Audience {
                partner: PartnerId(row.partner_id),
                customer: CustomerId::from_stored(row.customer_id),
                agent: row.agent_id.map(AgentId),
                all_agents: row.all_agents,
            },
        }
    }
}

impl Store {
    /// Events `recipient` hears with ids above `since`, oldest first.
    pub async fn events_for(
        &self,
        recipient: &Recipient,
        since: Cursor,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut db = self.pool.get().await?;
        let rows: Vec<EventRow> = with_conn!(db, |conn| {
            let query = events::table
                .filter(events::id.gt(since.0))
                .order(events::id.asc())
                .limit(limit)
                .select(EventRow::as_select());
            match recipient {
                Recipient::Customer(partner, customer) => {
                    query
                        .filter(events::partner_id.eq(partner.0))
                        .filter(events::customer_id.eq(customer.as_str()))
                        .filter(events::kind.ne_all(AGENT_ONLY_KINDS))
                        .load(conn)
                        .await?
                }
                Recipient::Agent(agent) => {
                    query
                        .filter(events::agent_id.eq(agent.0).or(events::all_agents.eq(true)))
                        .load(conn)
                        .await?
                }
            }
        });
        Ok(rows.into_iter().map(StoredEvent::from).collect())
    }

    /// Every event with an id above `after`, oldest first (the instance's tail of the log).
    pub async fn events_after(
        &self,
        after: Cursor,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut db = self.pool.get().await?;
        let rows: Vec<EventRow> = with_conn!(db, |conn| {
            events::table
                .filter(events::id.gt(after.0))
                .order(events::id.asc())
                .limit(limit)
                .select(EventRow::as_select())
                .load(conn)
                .await?
        });
        Ok(rows.into_iter().map(StoredEvent::from).collect())
    }

    /// The newest cursor, 0 when the log is empty.
    pub async fn latest_event_id(&self) -> Result<Cursor, StoreError> {
        let mut db = self.pool.get().await?;
        let latest: Option<i64> = with_conn!(db, |conn| {
            events::table
                .select(diesel::dsl::max(events::id))
                .first(conn)
                .await?
        });
        Ok(latest.map_or(Cursor::START, Cursor))
    }
}
