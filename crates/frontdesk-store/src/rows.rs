//! Rows as diesel reads and writes them, and their conversion to domain models.

use diesel::prelude::*;
use frontdesk_domain::{
    AgentId, Conversation, ConversationId, ConversationStatus, Customer, CustomerId, Flashback,
    Message, MessageId, Metadata, Partner, PartnerId, Sender, Timestamp,
};
use time::{Date, OffsetDateTime, PrimitiveDateTime};

use crate::error::StoreError;
use crate::schema::{conversations, customer_sessions, customers, messages, partners};

/// The current instant as stored: UTC, whole milliseconds.
pub(crate) fn now() -> Timestamp {
    Timestamp::new(OffsetDateTime::now_utc())
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = partners)]
pub(crate) struct PartnerRow {
    pub id: i64,
    pub name: String,
    pub domain: String,
    pub created_at: PrimitiveDateTime,
}

impl From<PartnerRow> for Partner {
    fn from(row: PartnerRow) -> Self {
        Partner {
            id: PartnerId(row.id),
            name: row.name,
            domain: row.domain,
            created_at: Timestamp::from_utc(row.created_at),
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = partners)]
pub(crate) struct NewPartnerRow<'a> {
    pub name: &'a str,
    pub domain: &'a str,
    pub api_key_hash: &'a str,
    pub created_at: PrimitiveDateTime,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = customers)]
pub(crate) struct CustomerRow {
    pub partner_id: i64,
    pub id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub birthdate: Option<Date>,
    pub flashback: Option<String>,
    pub created_at: PrimitiveDateTime,
    pub updated_at: PrimitiveDateTime,
}

impl TryFrom<CustomerRow> for Customer {
    type Error = StoreError;

    fn try_from(row: CustomerRow) -> Result<Self, StoreError> {
        let flashback = row
            .flashback
            .map(|text| serde_json::from_str::<Flashback>(&text))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("customer flashback: {e}")))?;
        Ok(Customer {
            id: CustomerId::from_stored(row.id),
            partner_id: PartnerId(row.partner_id),
            email: row.email,
            name: row.name,
            birthdate: row.birthdate,
            flashback,
            created_at: Timestamp::from_utc(row.created_at),
            updated_at: Timestamp::from_utc(row.updated_at),
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = conversations)]
pub(crate) struct ConversationRow {
    pub id: i64,
    pub partner_id: i64,
    pub customer_id: String,
    pub agent_id: Option<i64>,
    pub status: String,
    pub created_at: PrimitiveDateTime,
    pub updated_at: PrimitiveDateTime,
}

impl TryFrom<ConversationRow> for Conversation {
    type Error = StoreError;

    fn try_from(row: ConversationRow) -> Result<Self, StoreError> {
        let status = ConversationStatus::parse(&row.status)
            .ok_or_else(|| StoreError::Corrupt(format!("conversation status {}", row.status)))?;
        Ok(Conversation {
            id: ConversationId(row.id),
            partner_id: PartnerId(row.partner_id),
            customer_id: CustomerId::from_stored(row.customer_id),
            agent_id: row.agent_id.map(AgentId),
            status,
            created_at: Timestamp::from_utc(row.created_at),
            updated_at: Timestamp::from_utc(row.updated_at),
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = conversations)]
pub(crate) struct NewConversationRow<'a> {
    pub partner_id: i64,
    pub customer_id: &'a str,
    pub status: &'a str,
    pub created_at: PrimitiveDateTime,
    pub updated_at: PrimitiveDateTime,
}

#[derive(Queryable, QueryableByName, Selectable)]
#[diesel(table_name = messages)]
pub(crate) struct MessageRow {
    pub id: i64,
    pub conversation_id: i64,
    pub sender_id: String,
    pub content: String,
    pub is_from_agent: bool,
    pub created_at: PrimitiveDateTime,
    pub read_status: bool,
    pub metadata: Option<String>,
    pub client_message_id: Option<String>,
    /// Internal (see the append-keys migration); not part of `Message`.
    pub append_key: Option<String>,
}

impl TryFrom<MessageRow> for Message {
    type Error = StoreError;

    fn try_from(row: MessageRow) -> Result<Self, StoreError> {
        let metadata = row
            .metadata
            .map(|text| serde_json::from_str::<Metadata>(&text))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("message metadata: {e}")))?;
        Ok(Message {
            id: MessageId(row.id),
            conversation_id: ConversationId(row.conversation_id),
            sender: Sender::from_stored(row.sender_id, row.is_from_agent),
            content: row.content,
            is_from_agent: row.is_from_agent,
            timestamp: Timestamp::from_utc(row.created_at),
            read_status: row.read_status,
            metadata,
            client_message_id: row.client_message_id,
        })
    }
}

/// Owned, so a batch can move into a blocking task; `None` is NULL, as multi-row inserts need.
#[derive(Insertable, Clone)]
#[diesel(table_name = messages, treat_none_as_default_value = false)]
pub(crate) struct NewMessageRow {
    pub conversation_id: i64,
    pub sender_id: String,
    pub content: String,
    pub is_from_agent: bool,
    pub created_at: PrimitiveDateTime,
    pub read_status: bool,
    pub metadata: Option<String>,
    pub client_message_id: Option<String>,
    pub append_key: Option<String>,
}

impl NewMessageRow {
    /// The row for a checked draft, stored at `at`.
    pub(crate) fn from_draft(
        draft: &frontdesk_domain::MessageDraft,
        at: PrimitiveDateTime,
        append_key: Option<String>,
    ) -> Result<Self, StoreError> {
        let metadata = draft
            .metadata
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(NewMessageRow {
            conversation_id: draft.conversation_id.0,
            sender_id: draft.sender.to_string(),
            content: draft.content.clone(),
            is_from_agent: draft.sender.is_agent_side(),
            created_at: at,
            read_status: false,
            metadata,
            client_message_id: draft.client_message_id.clone(),
            append_key,
        })
    }
}

#[cfg(test)]
impl NewMessageRow {
    /// The row the database returns for `row`, stored as `id`.
    pub(crate) fn stored_as(row: &NewMessageRow, id: i64) -> MessageRow {
        MessageRow {
            id,
            conversation_id: row.conversation_id,
            sender_id: row.sender_id.clone(),
            content: row.content.clone(),
            is_from_agent: row.is_from_agent,
            created_at: row.created_at,
            read_status: row.read_status,
            metadata: row.metadata.clone(),
            client_message_id: row.client_message_id.clone(),
            append_key: row.append_key.clone(),
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = customer_sessions)]
pub(crate) struct NewSessionRow<'a> {
    pub token_hash: &'a str,
    pub partner_id: i64,
    pub customer_id: &'a str,
    pub created_at: PrimitiveDateTime,
    pub expires_at: PrimitiveDateTime,
}

/// Converts a batch of rows, failing on the first unreadable one.
pub(crate) fn convert_all<R, T>(rows: Vec<R>) -> Result<Vec<T>, StoreError>
where
    T: TryFrom<R, Error = StoreError>,
{
    rows.into_iter().map(T::try_from).collect()
}
