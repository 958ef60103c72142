//! Messages: appended under a lock on their conversation, read back in id order.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use frontdesk_domain::{Audience, Conversation, DomainError, Event, Message, MessageDraft, Viewer};

use crate::error::StoreError;
use crate::events::{append_event, NewEventRow};
use crate::pool::with_conn;
use crate::rows::{convert_all, now, ConversationRow, MessageRow, NewMessageRow};
use crate::schema::{conversations, messages};
use crate::Store;

/// The outcome of an append.
#[derive(Debug, Clone)]
pub struct Appended {
    pub message: Message,
    /// The conversation as it stands after the append.
    pub conversation: Conversation,
    /// False when a `clientMessageId` retry returned the message stored earlier.
    pub created: bool,
}

impl Store {
    /// Stores `draft` durably (the commit has returned) and returns it with its id.
    ///
    /// The conversation row is updated first in the same transaction: that takes its row lock
    /// on PostgreSQL and the write lock on SQLite, so messages of one conversation commit in id
    /// order and a reader paging with `after=<id>` can never skip one that commits late.
    pub async fn append_message(
        &self,
        viewer: &Viewer,
        draft: &MessageDraft,
    ) -> Result<Appended, StoreError> {
        if let Some(replayed) = self.replay(viewer, draft).await? {
            return Ok(replayed);
        }
        match self.insert_message(viewer, draft).await {
            // Two retries raced past the replay check; the loser returns the winner's row.
            Err(error) if error.is_unique_violation() => {
                self.replay(viewer, draft).await?.ok_or(error)
            }
            other => other,
        }
    }

    async fn insert_message(
        &self,
        viewer: &Viewer,
        draft: &MessageDraft,
    ) -> Result<Appended, StoreError> {
        let metadata = draft
            .metadata
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let pg = self.is_postgres();
        let mut db = self.pool.get().await?;
        let (conversation, message): (Conversation, Message) = with_conn!(db, |conn| {
            conn.transaction::<_, StoreError, _>(async move |conn| {
                let at = now().as_utc();
                let conversation: ConversationRow =
                    diesel::update(conversations::table.find(draft.conversation_id))
                        .set(conversations::updated_at.eq(at))
                        .returning(ConversationRow::as_returning())
                        .get_result(conn)
                        .await
                        .optional()?
                        .ok_or(StoreError::NotFound("conversation"))?;
                check(viewer, draft, conversation_from_row(&conversation)?)?;
                let row = NewMessageRow {
                    conversation_id: draft.conversation_id,
                    sender_id: draft.sender.to_string(),
                    content: &draft.content,
                    is_from_agent: draft.sender.is_agent_side(),
                    created_at: at,
                    read_status: false,
                    metadata,
                    client_message_id: draft.client_message_id.as_deref(),
                };
                let stored: Message = diesel::insert_into(messages::table)
                    .values(&row)
                    .returning(MessageRow::as_returning())
                    .get_result(conn)
                    .await?
                    .try_into()?;
                let conversation: Conversation = conversation.try_into()?;
                let event = Event::Message(stored.clone());
                let audience = Audience::conversation(&conversation);
                append_event!(
                    conn,
                    pg,
                    NewEventRow::new(&event, &audience, Some(conversation.id), at)
                );
                Ok((conversation, stored))
            })
            .await?
        });
        self.events_committed();
        Ok(Appended {
            message,
            conversation,
            created: true,
        })
    }

    /// The message stored earlier under the draft's `clientMessageId`, if there is one.
    async fn replay(
        &self,
        viewer: &Viewer,
        draft: &MessageDraft,
    ) -> Result<Option<Appended>, StoreError> {
        let Some(client_id) = draft.client_message_id.as_deref() else {
            return Ok(None);
        };
        let mut db = self.pool.get().await?;
        let found: Option<(MessageRow, ConversationRow)> = with_conn!(db, |conn| {
            messages::table
                .inner_join(conversations::table)
                .filter(messages::conversation_id.eq(draft.conversation_id))
                .filter(messages::client_message_id.eq(client_id))
                .select((MessageRow::as_select(), ConversationRow::as_select()))
                .first(conn)
                .await
                .optional()?
        });
        let Some((message, conversation)) = found else {
            return Ok(None);
        };
        let conversation: Conversation = conversation.try_into()?;
        if !viewer.can_see(&conversation) {
            return Err(StoreError::NotFound("conversation"));
        }
        let message: Message = message.try_into()?;
        if !draft.is_same_as(&message) {
            return Err(DomainError::IdempotencyMismatch.into());
        }
        Ok(Some(Appended {
            message,
            conversation,
            created: false,
        }))
    }

    /// Messages of a conversation with ids above `after`, oldest first, at most `limit`.
    pub async fn messages(
        &self,
        viewer: &Viewer,
        conversation_id: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Message>, StoreError> {
        self.conversation(viewer, conversation_id).await?;
        let mut db = self.pool.get().await?;
        let rows: Vec<MessageRow> = with_conn!(db, |conn| {
            messages::table
                .filter(messages::conversation_id.eq(conversation_id))
                .filter(messages::id.gt(after))
                .order(messages::id.asc())
                .limit(limit)
                .select(MessageRow::as_select())
                .load(conn)
                .await?
        });
        convert_all(rows)
    }
}

fn conversation_from_row(row: &ConversationRow) -> Result<Conversation, StoreError> {
    ConversationRow {
        id: row.id,
        partner_id: row.partner_id,
        customer_id: row.customer_id.clone(),
        agent_id: row.agent_id,
        status: row.status.clone(),
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
    .try_into()
}

/// Scope first (another partner's conversation is simply not found), then the lifecycle.
fn check(
    viewer: &Viewer,
    draft: &MessageDraft,
    conversation: Conversation,
) -> Result<(), StoreError> {
    if !viewer.can_see(&conversation) {
        return Err(StoreError::NotFound("conversation"));
    }
    conversation.check_message_from(&draft.sender)?;
    Ok(())
}
