//! Automated replies as durable jobs: one per conversation, written by the commit of the
//! customer message that calls for it (group_commit.rs), claimed by one instance under a lease,
//! and finished in one transaction that stores the reply (or the hand-off, or the failure)
//! and deletes the job. The reply's `clientMessageId` is `bot-reply:<trigger>`, so even two
//! instances that both believed they held the lease store it once.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use frontdesk_domain::event::HandoffNotice;
use frontdesk_domain::handoff::{BotState, Handoff, HandoffReason};
use frontdesk_domain::{
    Audience, Conversation, ConversationId, ConversationStatus, Event, Flashback, Message,
    MessageDraft, MessageId, Timestamp, Viewer,
};
use time::PrimitiveDateTime;

use crate::error::{Entity, StoreError};
use crate::events::NewEventRow;
use crate::group_commit::{Outcome, ReplyMark};
use crate::messages::Appended;
use crate::pool::with_conn;
use crate::rows::{convert_all, now, ConversationRow, MessageRow, NewMessageRow};
use crate::schema::{conversations, customers, messages, reply_jobs};
use crate::write::{write_with_events, Emitted};
use crate::Store;

/// The `clientMessageId` of the hand-off notice: one per conversation, ever.
pub const HANDOFF_NOTICE_ID: &str = "bot-handoff";

/// The `clientMessageId` of the reply to customer message `trigger`.
pub fn reply_id(trigger: MessageId) -> String {
    format!("bot-reply:{trigger}")
}

/// A job this instance holds the lease of.
#[derive(Debug, Clone)]
pub struct ReplyJob {
    pub conversation: Conversation,
    /// The newest customer message the reply must have seen.
    pub trigger: MessageId,
    /// How many instances have claimed it (1 on the first claim): more means an instance died
    /// holding it.
    pub attempts: u32,
    pub bot: BotState,
    /// The customer's Flashback profile, for the prompt (read with the job: one query fewer
    /// per reply).
    pub flashback: Option<Flashback>,
}

/// The customer's stored Flashback, as the job reads it. One that cannot be read is left out
/// of the prompt: the reply (or its hand-off) must not be held up by it.
fn flashback_of(text: Option<String>) -> Result<Option<Flashback>, StoreError> {
    Ok(text.and_then(|text| match serde_json::from_str::<Flashback>(&text) {
        Ok(flashback) => Some(flashback),
        Err(error) => {
            tracing::warn!(%error, "a customer's stored Flashback cannot be read; left out of the prompt");
            None
        }
    }))
}

/// How a job ended, as the responder decided it.
#[derive(Debug, Clone)]
pub enum ReplyOutcome {
    /// Store this reply (`sender` bot; the draft's clientMessageId is replaced by `reply_id`).
    Reply { draft: MessageDraft, tokens: u64 },
    /// Store this notice, flag the conversation, and never reply in it again.
    HandOff {
        notice: MessageDraft,
        reason: HandoffReason,
    },
    /// The model failed; counted towards the failure budget.
    Failed,
    /// Nothing to say (the offline responder greeted already, or the conversation left the
    /// queue): the job is dropped.
    Nothing,
}

/// What finishing a job did.
#[derive(Debug, Clone)]
pub enum Finished {
    /// The reply or notice is stored and announced.
    Stored(Box<Appended>),
    /// A failure was counted; nothing was said.
    Counted,
    /// A newer customer message arrived meanwhile: nothing stored, the job is still held and
    /// must be composed again for this trigger.
    Superseded(MessageId),
    /// Nothing to say any more (an agent took it, it closed, it was handed off, or the reply
    /// was stored already): the job is gone.
    Dropped,
    /// The lease passed to another instance: this one must say nothing.
    Lost,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = conversations)]
struct BotRow {
    bot_replies: i64,
    bot_tokens: i64,
    bot_failures: i64,
    handoff_reason: Option<String>,
    handoff_at: Option<PrimitiveDateTime>,
}

impl BotRow {
    fn handoff(&self) -> Option<Handoff> {
        Some(Handoff {
            reason: self.handoff_reason.clone()?,
            at: Timestamp::from_utc(self.handoff_at?),
        })
    }

    fn state(&self) -> BotState {
        let count = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
        BotState::from_stored(
            count(self.bot_replies),
            u64::try_from(self.bot_tokens).unwrap_or(0),
            count(self.bot_failures),
            self.handoff(),
        )
    }
}

/// A job as a claim reads it: trigger, claims so far, the conversation, the bot's counters
/// and the customer's Flashback text.
type Claimed = (MessageId, u32, ConversationRow, BotRow, Option<String>);

/// The job a claim read.
fn job_of((trigger, attempts, row, bot, flashback): Claimed) -> Result<ReplyJob, StoreError> {
    Ok(ReplyJob {
        conversation: row.try_into()?,
        trigger,
        attempts,
        bot: bot.state(),
        flashback: flashback_of(flashback)?,
    })
}

fn lease_end(lease: std::time::Duration) -> PrimitiveDateTime {
    now().as_utc() + lease
}

impl Store {
    /// Claims the job of `conversation` for `owner`, if it exists and nobody else holds a
    /// live lease on it.
    pub async fn claim_reply(
        &self,
        conversation: ConversationId,
        owner: &str,
        lease: std::time::Duration,
    ) -> Result<Option<ReplyJob>, StoreError> {
        let at = now().as_utc();
        let until = lease_end(lease);
        // A write: on SQLite it takes this instance's write turn, like every write.
        let (_turn, mut db) = self.pool.write().await?;
        let claimed: Option<Claimed> = with_conn!(db, |conn| {
            let row: Option<(i64, i64)> = diesel::update(
                reply_jobs::table
                    .filter(reply_jobs::conversation_id.eq(conversation.0))
                    .filter(
                        reply_jobs::owner
                            .is_null()
                            .or(reply_jobs::lease_until.lt(at)),
                    ),
            )
            .set((
                reply_jobs::owner.eq(owner),
                reply_jobs::lease_until.eq(until),
                reply_jobs::attempts.eq(reply_jobs::attempts + 1),
            ))
            .returning((reply_jobs::trigger_id, reply_jobs::attempts))
            .get_result(conn)
            .await
            .optional()?;
            match row {
                None => None,
                Some((trigger, attempts)) => {
                    let (conversation_row, bot, flashback) = conversations::table
                        .inner_join(
                            customers::table.on(customers::partner_id
                                .eq(conversations::partner_id)
                                .and(customers::id.eq(conversations::customer_id))),
                        )
                        .filter(conversations::id.eq(conversation.0))
                        .select((
                            ConversationRow::as_select(),
                            BotRow::as_select(),
                            customers::flashback,
                        ))
                        .first(conn)
                        .await?;
                    Some((
                        MessageId(trigger),
                        u32::try_from(attempts).unwrap_or(u32::MAX),
                        conversation_row,
                        bot,
                        flashback,
                    ))
                }
            }
        });
        claimed.map(job_of).transpose()
    }

    /// The job of `conversation` if `owner` holds its lease already: the commit of the
    /// customer's message claimed it for this instance. A read, so the instance that stored
    /// the message starts on the reply without another write.
    pub async fn adopt_reply(
        &self,
        conversation: ConversationId,
        owner: &str,
    ) -> Result<Option<ReplyJob>, StoreError> {
        let at = now().as_utc();
        let mut db = self.pool.get().await?;
        let held: Option<Claimed> = with_conn!(db, |conn| {
            reply_jobs::table
                .inner_join(conversations::table)
                .inner_join(
                    customers::table.on(customers::partner_id
                        .eq(conversations::partner_id)
                        .and(customers::id.eq(conversations::customer_id))),
                )
                .filter(reply_jobs::conversation_id.eq(conversation.0))
                .filter(reply_jobs::owner.eq(owner))
                .filter(reply_jobs::lease_until.gt(at))
                .select((
                    reply_jobs::trigger_id,
                    reply_jobs::attempts,
                    ConversationRow::as_select(),
                    BotRow::as_select(),
                    customers::flashback,
                ))
                .first::<(i64, i64, ConversationRow, BotRow, Option<String>)>(conn)
                .await
                .optional()?
                .map(|(trigger, attempts, row, bot, flashback)| {
                    let attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
                    (MessageId(trigger), attempts, row, bot, flashback)
                })
        });
        held.map(job_of).transpose()
    }

    /// Jobs nobody holds a live lease on (their instance died), and `owner`'s own (one it
    /// holds but may not be running: a trigger it missed), oldest first.
    pub async fn unclaimed_replies(
        &self,
        owner: &str,
        limit: i64,
    ) -> Result<Vec<ConversationId>, StoreError> {
        let at = now().as_utc();
        let mut db = self.pool.get().await?;
        let ids: Vec<i64> = with_conn!(db, |conn| {
            reply_jobs::table
                .filter(
                    reply_jobs::owner
                        .is_null()
                        .or(reply_jobs::lease_until.lt(at))
                        .or(reply_jobs::owner.eq(owner)),
                )
                .order(reply_jobs::created_at.asc())
                .limit(limit)
                .select(reply_jobs::conversation_id)
                .load(conn)
                .await?
        });
        Ok(ids.into_iter().map(ConversationId).collect())
    }

    /// Extends `owner`'s lease; the job's current trigger, or `None` when the lease (or the
    /// job) is gone.
    pub async fn renew_reply(
        &self,
        conversation: ConversationId,
        owner: &str,
        lease: std::time::Duration,
    ) -> Result<Option<MessageId>, StoreError> {
        let until = lease_end(lease);
        // A write: on SQLite it takes this instance's write turn, like every write.
        let (_turn, mut db) = self.pool.write().await?;
        let trigger: Option<i64> = with_conn!(db, |conn| {
            diesel::update(
                reply_jobs::table
                    .filter(reply_jobs::conversation_id.eq(conversation.0))
                    .filter(reply_jobs::owner.eq(owner)),
            )
            .set(reply_jobs::lease_until.eq(until))
            .returning(reply_jobs::trigger_id)
            .get_result(conn)
            .await
            .optional()?
        });
        Ok(trigger.map(MessageId))
    }

    /// Counts model tokens spent in `conversation` without a stored reply (a call cancelled
    /// by a newer message) against its budget.
    pub async fn charge_reply(
        &self,
        conversation: ConversationId,
        tokens: u64,
    ) -> Result<(), StoreError> {
        let tokens = i64::try_from(tokens).unwrap_or(i64::MAX);
        // A write: on SQLite it takes this instance's write turn, like every write.
        let (_turn, mut db) = self.pool.write().await?;
        with_conn!(db, |conn| {
            diesel::update(conversations::table.find(conversation.0))
                .set(conversations::bot_tokens.eq(conversations::bot_tokens + tokens))
                .execute(conn)
                .await?;
        });
        Ok(())
    }

    /// Stores the automated reply to `job` through the group-commit writer: checked in its
    /// batch against the job (still at this trigger, not handed off) and the locked
    /// conversation (still waiting for an agent), with the job deleted and the reply counted
    /// in the same commit. Hundreds of replies finishing at once then share a few commits
    /// (and turns of the event-log lock) instead of taking one each.
    async fn append_reply(
        &self,
        job: &ReplyJob,
        draft: &MessageDraft,
        tokens: u64,
    ) -> Result<Finished, StoreError> {
        let mut draft = draft.clone();
        draft.client_message_id = Some(reply_id(job.trigger));
        let mark = ReplyMark {
            trigger: job.trigger.0,
            tokens: i64::try_from(tokens).unwrap_or(i64::MAX),
        };
        let viewer = Viewer::Partner(job.conversation.partner_id);
        let outcome = self
            .writer
            .submit(&viewer, &draft, None, Some(mark))
            .await?;
        Ok(match outcome {
            Outcome::Created(appended) => Finished::Stored(appended),
            Outcome::Superseded(trigger) => Finished::Superseded(MessageId(trigger)),
            // Stored already (by an instance whose lease had run out), or nothing to answer.
            Outcome::Duplicate | Outcome::Gone => Finished::Dropped,
            // The conversation left the queue (an agent took it, or it closed) meanwhile.
            Outcome::Failed(StoreError::Rule(_) | StoreError::NotFound(_)) => Finished::Dropped,
            Outcome::Failed(error) => return Err(error),
        })
    }

    /// Ends `job` with `outcome`. The rules are checked again against the locked conversation,
    /// so an agent who took it while the model was writing wins, and the half-made reply is
    /// dropped. A reply goes through the group-commit writer (`append_reply`); a hand-off, a
    /// failure or nothing to say, rare, in a transaction of their own that also checks this
    /// instance still holds the lease. A reply needs no lease check: its `clientMessageId`
    /// `bot-reply:<trigger>` stores it once whoever writes it.
    pub async fn finish_reply(
        &self,
        job: &ReplyJob,
        owner: &str,
        outcome: ReplyOutcome,
    ) -> Result<Finished, StoreError> {
        let ReplyOutcome::Reply { draft, tokens } = &outcome else {
            return self.end_reply(job, owner, outcome).await;
        };
        let finished = self.append_reply(job, draft, *tokens).await?;
        if !matches!(finished, Finished::Dropped) {
            return Ok(finished);
        }
        // Nothing stored: the job goes now, not when its lease runs out, unless a newer
        // customer message moved it meanwhile (then it is answered next).
        match self.end_reply(job, owner, ReplyOutcome::Nothing).await? {
            superseded @ Finished::Superseded(_) => Ok(superseded),
            _ => Ok(Finished::Dropped),
        }
    }

    /// A hand-off, a failure or nothing to say, in one transaction under the conversation's
    /// lock.
    async fn end_reply(
        &self,
        job: &ReplyJob,
        owner: &str,
        outcome: ReplyOutcome,
    ) -> Result<Finished, StoreError> {
        let id = job.conversation.id;
        write_with_events!(self, |conn| {
            let at = now().as_utc();
            // Locks the row (and on SQLite the database) first, changing nothing.
            let (row, bot): (ConversationRow, BotRow) =
                diesel::update(conversations::table.find(id.0))
                    .set(conversations::updated_at.eq(conversations::updated_at))
                    .returning((ConversationRow::as_returning(), BotRow::as_returning()))
                    .get_result(conn)
                    .await
                    .optional()?
                    .ok_or(StoreError::NotFound(Entity::Conversation))?;
            let mut conversation: Conversation = row.try_into()?;
            let held: Option<(i64, Option<String>)> = reply_jobs::table
                .find(id.0)
                .select((reply_jobs::trigger_id, reply_jobs::owner))
                .first(conn)
                .await
                .optional()?;
            let Some((trigger, holder)) = held else {
                return Ok(Emitted::nothing(Finished::Lost));
            };
            if holder.as_deref() != Some(owner) {
                return Ok(Emitted::nothing(Finished::Lost));
            }
            let forget = diesel::delete(reply_jobs::table.find(id.0));
            let open = conversation.status == ConversationStatus::Waiting
                && conversation.agent_id.is_none()
                && bot.handoff_reason.is_none();
            if !open {
                forget.execute(conn).await?;
                return Ok(Emitted::nothing(Finished::Dropped));
            }
            if trigger != job.trigger.0 && !matches!(outcome, ReplyOutcome::HandOff { .. }) {
                return Ok(Emitted::nothing(Finished::Superseded(MessageId(trigger))));
            }
            let (draft, client_id) = match &outcome {
                ReplyOutcome::Failed => {
                    diesel::update(conversations::table.find(id.0))
                        .set(conversations::bot_failures.eq(conversations::bot_failures + 1))
                        .execute(conn)
                        .await?;
                    forget.execute(conn).await?;
                    return Ok(Emitted::nothing(Finished::Counted));
                }
                ReplyOutcome::Nothing => {
                    forget.execute(conn).await?;
                    return Ok(Emitted::nothing(Finished::Dropped));
                }
                // Stored through the writer (`finish_reply`), never here.
                ReplyOutcome::Reply { .. } => return Ok(Emitted::nothing(Finished::Dropped)),
                ReplyOutcome::HandOff { notice, .. } => (notice, HANDOFF_NOTICE_ID.to_owned()),
            };
            let mut new_row = NewMessageRow::from_draft(draft, at, None)?;
            new_row.client_message_id = Some(client_id);
            let stored: Option<MessageRow> = diesel::insert_into(messages::table)
                .values(new_row)
                .on_conflict_do_nothing()
                .returning(MessageRow::as_returning())
                .get_result(conn)
                .await
                .optional()?;
            forget.execute(conn).await?;
            let Some(stored) = stored else {
                // Stored already (by an instance whose lease had run out): once is enough.
                return Ok(Emitted::nothing(Finished::Dropped));
            };
            let message: Message = stored.try_into()?;
            let mut events = Vec::with_capacity(2);
            match &outcome {
                ReplyOutcome::HandOff { reason, .. } => {
                    let reason = reason.describe();
                    diesel::update(conversations::table.find(id.0))
                        .set((
                            conversations::updated_at.eq(at),
                            conversations::handoff_reason.eq(&reason),
                            conversations::handoff_at.eq(at),
                        ))
                        .execute(conn)
                        .await?;
                    let notice = Event::Handoff(HandoffNotice {
                        conversation_id: id,
                        handoff: Handoff {
                            reason,
                            at: Timestamp::from_utc(at),
                        },
                    });
                    events.push(NewEventRow::new(
                        &notice,
                        &Audience::conversation(&conversation),
                        Some(id),
                        at,
                    ));
                }
                ReplyOutcome::Reply { .. } | ReplyOutcome::Failed | ReplyOutcome::Nothing => {}
            }
            conversation.updated_at = Timestamp::from_utc(at);
            events.insert(
                0,
                NewEventRow::new(
                    &Event::Message(message.clone()),
                    &Audience::conversation(&conversation),
                    Some(id),
                    at,
                ),
            );
            Ok(Emitted {
                value: Finished::Stored(Box::new(Appended {
                    message,
                    conversation,
                    created: true,
                })),
                events,
            })
        })
    }

    /// The newest `limit` messages of a conversation, oldest first: what the model is shown.
    pub async fn recent_messages(
        &self,
        conversation: ConversationId,
        limit: i64,
    ) -> Result<Vec<Message>, StoreError> {
        let mut db = self.pool.get().await?;
        let mut rows: Vec<MessageRow> = with_conn!(db, |conn| {
            messages::table
                .filter(messages::conversation_id.eq(conversation.0))
                .order(messages::id.desc())
                .limit(limit)
                .select(MessageRow::as_select())
                .load(conn)
                .await?
        });
        rows.reverse();
        convert_all(rows)
    }

    /// The hand-offs of these conversations, for the agent API.
    pub async fn handoffs(
        &self,
        ids: &[ConversationId],
    ) -> Result<HashMap<ConversationId, Handoff>, StoreError> {
        let ids: Vec<i64> = ids.iter().map(|id| id.0).collect();
        let mut db = self.pool.get().await?;
        let rows: Vec<(i64, BotRow)> = with_conn!(db, |conn| {
            conversations::table
                .filter(conversations::id.eq_any(&ids))
                .filter(conversations::handoff_at.is_not_null())
                .select((conversations::id, BotRow::as_select()))
                .load(conn)
                .await?
        });
        Ok(rows
            .into_iter()
            .filter_map(|(id, bot)| Some((ConversationId(id), bot.handoff()?)))
            .collect())
    }
}
