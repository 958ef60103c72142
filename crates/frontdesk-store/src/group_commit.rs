//! Group commit for message appends: one writer task per store takes every append waiting at
//! that moment and commits them in one transaction, so one fsync (and, on PostgreSQL, one turn
//! of the event-log lock) serves the whole batch. Nobody is answered before the commit returns,
//! so an acknowledged message is as durable as with one transaction each.

use std::collections::HashMap;

use diesel_async::AsyncConnection;
use frontdesk_domain::{Audience, Conversation, Event, Message, MessageDraft, Timestamp, Viewer};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::batch::BatchWrites;
use crate::error::StoreError;
use crate::events::NewEventRow;
use crate::feed::Signal;
use crate::messages::{check, Appended};
use crate::pool::{with_conn, Pool};
use crate::rows::{now, NewMessageRow};

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

/// One transaction for the whole batch, in a fixed number of statements whatever its size:
/// lock its conversations, insert its messages (touching their conversations), append the
/// events. The messages of one conversation keep their submission order.
async fn write_batch(pool: &Pool, jobs: &[AppendJob]) -> Result<Vec<Outcome>, StoreError> {
    let mut conversation_ids: Vec<i64> = jobs.iter().map(|j| j.draft.conversation_id).collect();
    conversation_ids.sort_unstable();
    conversation_ids.dedup();
    let mut db = pool.get().await?;
    with_conn!(db, |conn| {
        conn.transaction::<_, StoreError, _>(async |conn| {
            let at = now().as_utc();
            // The locked rows are what the checks below see.
            let mut found: HashMap<i64, Conversation> = HashMap::new();
            for row in conn.lock_conversations(conversation_ids).await? {
                let conversation: Conversation = row.try_into()?;
                found.insert(conversation.id, conversation);
            }

            // Decide each job; the accepted ones become rows to insert.
            let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(jobs.len());
            let mut accepted: Vec<usize> = Vec::new();
            let mut rows: Vec<NewMessageRow> = Vec::new();
            for (i, job) in jobs.iter().enumerate() {
                match accept(job, found.get(&job.draft.conversation_id), at) {
                    Ok(row) => {
                        outcomes.push(None);
                        accepted.push(i);
                        rows.push(row);
                    }
                    Err(error) => outcomes.push(Some(Outcome::Failed(error))),
                }
            }

            let inserted = conn.insert_messages(rows, at).await?;
            let mut events: Vec<NewEventRow> = Vec::new();
            for (i, stored) in accepted.into_iter().zip(inserted) {
                let Some(stored) = stored else {
                    outcomes[i] = Some(Outcome::Duplicate);
                    continue;
                };
                let message: Message = stored.try_into()?;
                let mut conversation = found
                    .get(&message.conversation_id)
                    .cloned()
                    .ok_or(StoreError::NotFound("conversation"))?;
                conversation.updated_at = Timestamp::from_utc(at);
                events.push(NewEventRow::new(
                    &Event::Message(message.clone()),
                    &Audience::conversation(&conversation),
                    Some(conversation.id),
                    at,
                ));
                outcomes[i] = Some(Outcome::Created(Box::new(Appended {
                    message,
                    conversation,
                    created: true,
                })));
            }
            conn.insert_events(events).await?;
            Ok(outcomes
                .into_iter()
                .map(|o| o.unwrap_or(Outcome::Duplicate))
                .collect())
        })
        .await
    })
}

/// The row to insert for `job`, or why it is refused.
fn accept(
    job: &AppendJob,
    conversation: Option<&Conversation>,
    at: time::PrimitiveDateTime,
) -> Result<NewMessageRow, StoreError> {
    let draft = &job.draft;
    check(
        &job.viewer,
        draft,
        conversation.ok_or(StoreError::NotFound("conversation"))?,
    )?;
    let metadata = draft
        .metadata
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(NewMessageRow {
        conversation_id: draft.conversation_id,
        sender_id: draft.sender.to_string(),
        content: draft.content.clone(),
        is_from_agent: draft.sender.is_agent_side(),
        created_at: at,
        read_status: false,
        metadata,
        client_message_id: draft.client_message_id.clone(),
    })
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
