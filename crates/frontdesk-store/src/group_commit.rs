//! Group commit for message appends: one writer task per store takes every append waiting at
//! that moment and commits them in one transaction, so one fsync (and, on PostgreSQL, one turn
//! of the event-log lock) serves the whole batch. Nobody is answered before the commit returns,
//! so an acknowledged message is as durable as with one transaction each.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use frontdesk_domain::{Audience, Conversation, Event, Message, MessageDraft, Timestamp, Viewer};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::error::StoreError;
use crate::events::{append_event, NewEventRow};
use crate::feed::Signal;
use crate::messages::{check, Appended};
use crate::pool::{with_conn, Backend, Pool};
use crate::rows::{now, ConversationRow, MessageRow, NewMessageRow};
use crate::schema::{conversations, messages};

/// The most appends in one transaction. Also the largest burst of events one commit can hand a
/// single WebSocket, so connection queues must hold at least this many frames.
pub const MAX_BATCH: usize = 128;
/// Appends that may wait for the writer before senders wait to enqueue.
const QUEUE: usize = 8192;

pub(crate) struct AppendJob {
    pub viewer: Viewer,
    pub draft: MessageDraft,
    pub reply: oneshot::Sender<Outcome>,
}

pub(crate) enum Outcome {
    Created(Box<Appended>),
    /// The `clientMessageId` was already stored (by an earlier request or earlier in the batch).
    Duplicate,
    Failed(StoreError),
}

/// Starts the writer; it stops when every sender (every `Store` clone) is gone.
pub(crate) fn start(pool: Pool, signals: broadcast::Sender<Signal>) -> mpsc::Sender<AppendJob> {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(run(pool, signals, rx));
    tx
}

async fn run(pool: Pool, signals: broadcast::Sender<Signal>, mut rx: mpsc::Receiver<AppendJob>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        jobs.push(first);
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let outcomes = match write_batch(&pool, &jobs).await {
            Ok(outcomes) => outcomes,
            Err(error) => {
                // One bad append (or a deadlock between instances) must not fail the others:
                // retry each on its own.
                tracing::warn!(%error, size = jobs.len(), "batch failed; writing one by one");
                let mut outcomes = Vec::with_capacity(jobs.len());
                for job in &jobs {
                    let outcome = match write_batch(&pool, std::slice::from_ref(job)).await {
                        Ok(mut single) => single.pop().unwrap_or(Outcome::Duplicate),
                        Err(error) => Outcome::Failed(error),
                    };
                    outcomes.push(outcome);
                }
                outcomes
            }
        };
        if outcomes.iter().any(|o| matches!(o, Outcome::Created(_))) {
            let _ = signals.send(Signal::Events);
        }
        for (job, outcome) in jobs.drain(..).zip(outcomes) {
            // A caller that went away still had its message stored; a retry finds it.
            let _ = job.reply.send(outcome);
        }
    }
}

/// One transaction for the whole batch. Conversations are locked in ascending id order (the
/// jobs of one conversation keep their order), so two instances' batches cannot deadlock.
async fn write_batch(pool: &Pool, jobs: &[AppendJob]) -> Result<Vec<Outcome>, StoreError> {
    let pg = pool.backend() == Backend::Postgres;
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| jobs[i].draft.conversation_id);
    let rows: Vec<Result<(String, Option<String>), StoreError>> = jobs
        .iter()
        .map(|job| {
            let metadata = job
                .draft
                .metadata
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok((job.draft.sender.to_string(), metadata))
        })
        .collect();
    let mut db = pool.get().await?;
    let mut by_position: Vec<(usize, Outcome)> = with_conn!(db, |conn| {
        conn.transaction::<_, StoreError, _>(async |conn| {
            let at = now().as_utc();
            let mut outcomes = Vec::with_capacity(jobs.len());
            let mut events: Vec<NewEventRow> = Vec::new();
            let mut touched: Vec<i64> = Vec::new();
            for &i in &order {
                let draft = &jobs[i].draft;
                let (sender_id, metadata) = match &rows[i] {
                    Ok(row) => row.clone(),
                    Err(error) => {
                        outcomes.push((i, Outcome::Failed(StoreError::Corrupt(error.to_string()))));
                        continue;
                    }
                };
                // Locks the conversation without changing it (row lock on PostgreSQL; on
                // SQLite the first write takes the database's write lock).
                let locked: Option<ConversationRow> =
                    diesel::update(conversations::table.find(draft.conversation_id))
                        .set(conversations::updated_at.eq(conversations::updated_at))
                        .returning(ConversationRow::as_returning())
                        .get_result(conn)
                        .await
                        .optional()?;
                let Some(locked) = locked else {
                    outcomes.push((i, Outcome::Failed(StoreError::NotFound("conversation"))));
                    continue;
                };
                let mut conversation: Conversation = locked.try_into()?;
                if let Err(error) = check(&jobs[i].viewer, draft, &conversation) {
                    outcomes.push((i, Outcome::Failed(error)));
                    continue;
                }
                let inserted: Option<MessageRow> = diesel::insert_into(messages::table)
                    .values(NewMessageRow {
                        conversation_id: draft.conversation_id,
                        sender_id,
                        content: &draft.content,
                        is_from_agent: draft.sender.is_agent_side(),
                        created_at: at,
                        read_status: false,
                        metadata,
                        client_message_id: draft.client_message_id.as_deref(),
                    })
                    .on_conflict((messages::conversation_id, messages::client_message_id))
                    .do_nothing()
                    .returning(MessageRow::as_returning())
                    .get_result(conn)
                    .await
                    .optional()?;
                let Some(inserted) = inserted else {
                    outcomes.push((i, Outcome::Duplicate));
                    continue;
                };
                let message: Message = inserted.try_into()?;
                conversation.updated_at = Timestamp::from_utc(at);
                events.push(NewEventRow::new(
                    &Event::Message(message.clone()),
                    &Audience::conversation(&conversation),
                    Some(conversation.id),
                    at,
                ));
                touched.push(conversation.id);
                outcomes.push((
                    i,
                    Outcome::Created(Box::new(Appended {
                        message,
                        conversation,
                        created: true,
                    })),
                ));
            }
            if !touched.is_empty() {
                touched.dedup();
                diesel::update(conversations::table.filter(conversations::id.eq_any(&touched)))
                    .set(conversations::updated_at.eq(at))
                    .execute(conn)
                    .await?;
                append_event!(conn, pg, std::mem::take(&mut events));
            }
            Ok(outcomes)
        })
        .await?
    });
    by_position.sort_by_key(|(i, _)| *i);
    Ok(by_position
        .into_iter()
        .map(|(_, outcome)| outcome)
        .collect())
}

/// Hands one append to the writer and waits for its commit.
pub(crate) async fn submit(
    writer: &mpsc::Sender<AppendJob>,
    viewer: &Viewer,
    draft: &MessageDraft,
) -> Result<Outcome, StoreError> {
    let (reply, outcome) = oneshot::channel();
    let job = AppendJob {
        viewer: viewer.clone(),
        draft: draft.clone(),
        reply,
    };
    let stopped = || StoreError::Unavailable("the message writer has stopped".into());
    writer.send(job).await.map_err(|_| stopped())?;
    outcome.await.map_err(|_| stopped())
}
