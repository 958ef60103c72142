//! Conversation lifecycle: assign, close, read receipts. Each change and its event commit
//! together.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use frontdesk_domain::event::{ReadReceipt, StatusChange};
use frontdesk_domain::{
    AgentId, Audience, Conversation, ConversationId, ConversationStatus, Event, MessageId, Viewer,
};

use crate::error::{Entity, StoreError};
use crate::events::NewEventRow;
use crate::rows::{now, ConversationRow};
use crate::schema::{conversations, messages};
use crate::write::{write_with_events, Emitted};
use crate::Store;

/// What a status change does, decided by the domain against the locked row.
#[derive(Debug, Clone, Copy)]
enum Change {
    Assign { agent: AgentId },
    Close { agent: AgentId, is_admin: bool },
}

impl Store {
    /// An agent takes a conversation: `active`, `agentId` = the agent. Concurrent takers are
    /// serialised on the conversation row; the losers get `AssignedElsewhere`.
    pub async fn assign(
        &self,
        agent: AgentId,
        conversation: ConversationId,
    ) -> Result<Conversation, StoreError> {
        self.change_status(conversation, Change::Assign { agent })
            .await
    }

    pub async fn close(
        &self,
        agent: AgentId,
        is_admin: bool,
        conversation: ConversationId,
    ) -> Result<Conversation, StoreError> {
        self.change_status(conversation, Change::Close { agent, is_admin })
            .await
    }

    async fn change_status(
        &self,
        id: ConversationId,
        change: Change,
    ) -> Result<Conversation, StoreError> {
        write_with_events!(self, |conn| {
            let at = now().as_utc();
            // Locks the row (and on SQLite the database) before deciding anything, without
            // changing it: a refused or no-op change leaves no trace.
            let before: Conversation = diesel::update(conversations::table.find(id.0))
                .set(conversations::updated_at.eq(conversations::updated_at))
                .returning(ConversationRow::as_returning())
                .get_result(conn)
                .await
                .optional()?
                .ok_or(StoreError::NotFound(Entity::Conversation))?
                .try_into()?;
            let (status, agent) = match change {
                Change::Assign { agent } => {
                    before.check_assign(agent)?;
                    if before.status == ConversationStatus::Active {
                        // Taking what you already hold changes nothing.
                        return Ok(Emitted::nothing(before));
                    }
                    (ConversationStatus::Active, Some(agent))
                }
                Change::Close { agent, is_admin } => {
                    before.check_close_by(agent, is_admin)?;
                    (ConversationStatus::Closed, before.agent_id)
                }
            };
            let after: Conversation = diesel::update(conversations::table.find(id.0))
                .set((
                    conversations::status.eq(status.as_str()),
                    conversations::agent_id.eq(agent.map(|agent| agent.0)),
                    conversations::updated_at.eq(at),
                ))
                .returning(ConversationRow::as_returning())
                .get_result(conn)
                .await?
                .try_into()?;
            let event = NewEventRow::new(
                &Event::Status(StatusChange::of(&after)),
                &Audience::transition(&before, &after),
                Some(id),
                at,
            );
            Ok(Emitted::one(after, event))
        })
    }

    /// Marks the other side's messages up to `up_to` read. Returns the highest id newly
    /// marked, or `None` when there was nothing unread (then no event is emitted).
    pub async fn mark_read(
        &self,
        reader: &Viewer,
        conversation: ConversationId,
        up_to: MessageId,
    ) -> Result<Option<MessageId>, StoreError> {
        let reader_is_agent = matches!(reader, Viewer::Agent(_));
        write_with_events!(self, |conn| {
            let at = now().as_utc();
            // The write comes first so SQLite takes its write lock at once.
            let ids: Vec<i64> = diesel::update(
                messages::table
                    .filter(messages::conversation_id.eq(conversation.0))
                    .filter(messages::id.le(up_to.0))
                    .filter(messages::is_from_agent.eq(!reader_is_agent))
                    .filter(messages::read_status.eq(false)),
            )
            .set(messages::read_status.eq(true))
            .returning(messages::id)
            .get_results(conn)
            .await?;
            let current: Conversation = conversations::table
                .find(conversation.0)
                .select(ConversationRow::as_select())
                .first(conn)
                .await
                .optional()?
                .ok_or(StoreError::NotFound(Entity::Conversation))?
                .try_into()?;
            if !reader.can_see(&current) {
                return Err(StoreError::NotFound(Entity::Conversation));
            }
            // Refused after the update: the transaction rolls it back.
            reader.check_activity(&current)?;
            let Some(last) = ids.into_iter().max().map(MessageId) else {
                return Ok(Emitted::nothing(None));
            };
            let event = NewEventRow::new(
                &Event::Read(ReadReceipt {
                    conversation_id: conversation,
                    message_id: last,
                    is_agent: reader_is_agent,
                }),
                &Audience::conversation(&current),
                Some(conversation),
                at,
            );
            Ok(Emitted::one(Some(last), event))
        })
    }
}
