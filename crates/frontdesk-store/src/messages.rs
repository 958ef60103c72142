//! Messages: appended under a lock on their conversation, read back in id order.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use frontdesk_domain::{
    Conversation, ConversationId, DomainError, Message, MessageDraft, MessageId, Viewer,
};

use crate::error::{Entity, StoreError};
use crate::group_commit::Outcome;
use crate::pool::with_conn;
use crate::rows::{convert_all, ConversationRow, MessageRow};
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
    /// Stores `draft` durably (the commit has returned) and returns it with its id. A
    /// `clientMessageId` seen before returns the stored message instead (`created` false).
    ///
    /// Appends go through the group-commit writer (group_commit.rs), which locks the
    /// conversation before inserting, so messages of one conversation commit in id order and a
    /// reader paging with `after=<id>` can never skip one that commits late.
    ///
    /// A retry is recognised after the attempt, not before: new messages (nearly all) then cost
    /// no extra query. The batch skips a taken `clientMessageId`; a retry the rules would now
    /// refuse (its conversation closed since) still gets the message stored the first time.
    ///
    /// A draft without `clientMessageId` gets a random append key of its own, so the writer's
    /// retry of it after a commit that had in fact succeeded finds it (`created` stays true:
    /// this request did store it) instead of storing it twice.
    pub async fn append_message(
        &self,
        viewer: &Viewer,
        draft: &MessageDraft,
    ) -> Result<Appended, StoreError> {
        let append_key = draft.client_message_id.is_none().then(new_append_key);
        // Past the deadline the batch may still commit it: looked up below like any failure.
        let outcome = self
            .writer
            .submit(viewer, draft, append_key.clone(), None)
            .await
            .unwrap_or_else(Outcome::Failed);
        match outcome {
            Outcome::Created(appended) => Ok(*appended),
            // Only automated replies are checked against a job (`append_reply`).
            Outcome::Superseded(_) | Outcome::Gone => {
                Err(StoreError::NotFound(Entity::Conversation))
            }
            Outcome::Duplicate => match append_key {
                Some(key) => self
                    .stored_under(viewer, key)
                    .await?
                    .ok_or(StoreError::NotFound(Entity::Conversation)),
                None => self
                    .replay(viewer, draft)
                    .await?
                    .ok_or(StoreError::NotFound(Entity::Conversation)),
            },
            Outcome::Failed(error) => {
                let earlier = match &append_key {
                    // A whole batch that failed on the database may have committed first (a
                    // connection lost during COMMIT): the append key tells. A refusal of this
                    // one append did not commit.
                    Some(key) if error.is_shared_by_all() => {
                        self.stored_under(viewer, key.clone()).await
                    }
                    Some(_) => Ok(None),
                    None => self.replay(viewer, draft).await,
                };
                match earlier {
                    Ok(Some(found)) => Ok(found),
                    // The id was used for another message: that is the answer a retry needs.
                    Err(mismatch @ StoreError::Rule(DomainError::IdempotencyMismatch)) => {
                        Err(mismatch)
                    }
                    // No earlier message (or the look-up itself failed): the refusal stands.
                    Ok(None) | Err(_) => Err(error),
                }
            }
        }
    }

    /// The message this request stored under its append key, if the commit happened after
    /// all (`created` true: this request did store it).
    async fn stored_under(
        &self,
        viewer: &Viewer,
        append_key: String,
    ) -> Result<Option<Appended>, StoreError> {
        let found = self
            .stored_earlier(viewer, Earlier::AppendKey(append_key))
            .await?;
        Ok(found.map(|stored| Appended {
            created: true,
            ..stored
        }))
    }

    /// The message stored earlier under the draft's `clientMessageId`, if there is one.
    async fn replay(
        &self,
        viewer: &Viewer,
        draft: &MessageDraft,
    ) -> Result<Option<Appended>, StoreError> {
        let Some(client_id) = draft.client_message_id.clone() else {
            return Ok(None);
        };
        let found = self
            .stored_earlier(viewer, Earlier::ClientId(draft.conversation_id, client_id))
            .await?;
        let Some(found) = found else {
            return Ok(None);
        };
        if !draft.is_same_as(&found.message) {
            return Err(DomainError::IdempotencyMismatch.into());
        }
        Ok(Some(found))
    }

    /// The stored message `key` names, if `viewer` may see it (`created` false).
    pub(crate) async fn stored_earlier(
        &self,
        viewer: &Viewer,
        key: Earlier,
    ) -> Result<Option<Appended>, StoreError> {
        let mut db = self.pool.get().await?;
        let found: Option<(MessageRow, ConversationRow)> = with_conn!(db, |conn| {
            let query = messages::table
                .inner_join(conversations::table)
                .select((MessageRow::as_select(), ConversationRow::as_select()));
            match &key {
                Earlier::ClientId(conversation, client_id) => {
                    query
                        .filter(messages::conversation_id.eq(conversation.0))
                        .filter(messages::client_message_id.eq(client_id))
                        .first(conn)
                        .await
                }
                Earlier::AppendKey(append_key) => {
                    query
                        .filter(messages::append_key.eq(append_key))
                        .first(conn)
                        .await
                }
            }
            .optional()?
        });
        let Some((message, conversation)) = found else {
            return Ok(None);
        };
        let conversation: Conversation = conversation.try_into()?;
        if !viewer.can_see(&conversation) {
            return Err(StoreError::NotFound(Entity::Conversation));
        }
        Ok(Some(Appended {
            message: message.try_into()?,
            conversation,
            created: false,
        }))
    }

    /// Messages of a conversation with ids above `after`, oldest first, at most `limit`.
    pub async fn messages(
        &self,
        viewer: &Viewer,
        conversation_id: ConversationId,
        after: MessageId,
        limit: i64,
    ) -> Result<Vec<Message>, StoreError> {
        self.conversation(viewer, conversation_id).await?;
        let mut db = self.pool.get().await?;
        let rows: Vec<MessageRow> = with_conn!(db, |conn| {
            messages::table
                .filter(messages::conversation_id.eq(conversation_id.0))
                .filter(messages::id.gt(after.0))
                .order(messages::id.asc())
                .limit(limit)
                .select(MessageRow::as_select())
                .load(conn)
                .await?
        });
        convert_all(rows)
    }
}

/// What identifies a message stored earlier by the same append.
pub(crate) enum Earlier {
    /// `(conversation, clientMessageId)`.
    ClientId(ConversationId, String),
    /// The server-side key of a message sent without one.
    AppendKey(String),
}

/// 128 random bits as hex: unique across instances and restarts without coordination.
fn new_append_key() -> String {
    let bits: u128 = rand::random();
    format!("{bits:032x}")
}

/// Scope first (another partner's conversation is simply not found), then the lifecycle.
pub(crate) fn check(
    viewer: &Viewer,
    draft: &MessageDraft,
    conversation: &Conversation,
) -> Result<(), StoreError> {
    if !viewer.can_see(conversation) {
        return Err(StoreError::NotFound(Entity::Conversation));
    }
    conversation.check_message_from(&draft.sender)?;
    Ok(())
}
