//! Group commit for message appends: one writer task per store takes every append waiting at
//! that moment and commits them in one transaction, so one fsync (and, on PostgreSQL, one turn
//! of the event-log lock) serves the whole batch. Nobody is answered before the commit returns,
//! so an acknowledged message is as durable as with one transaction each.

use std::collections::HashMap;

use diesel_async::AsyncConnection;
use frontdesk_domain::{Audience, Conversation, Event, Message, MessageDraft, Timestamp, Viewer};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::batch::{pg, sqlite};
use crate::error::StoreError;
use crate::events::NewEventRow;
use crate::feed::Signal;
use crate::messages::{check, Appended};
use crate::pool::{DbConn, Pool};
use crate::rows::{now, ConversationRow, MessageRow, NewMessageRow};

/// The most appends in one transaction. Also the largest burst of events one commit can hand a
/// single WebSocket, so connection queues must hold at least this many frames.
pub const MAX_BATCH: usize = 128;
/// Appends that may wait for the writer before senders wait to enqueue.
const QUEUE: usize = 8192;

pub(crate) struct AppendJob {
    request: Request,
    reply: oneshot::Sender<Outcome>,
}

/// One append as the batch sees it.
#[derive(Clone)]
struct Request {
    viewer: Viewer,
    draft: MessageDraft,
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
        let (requests, replies): (Vec<Request>, Vec<_>) =
            jobs.drain(..).map(|job| (job.request, job.reply)).unzip();
        let outcomes = match write_batch(&pool, &requests).await {
            Ok(outcomes) => outcomes,
            Err(error) => {
                // One bad append (or a deadlock between instances) must not fail the others:
                // retry each on its own.
                tracing::warn!(%error, size = requests.len(), "batch failed; writing one by one");
                let mut outcomes = Vec::with_capacity(requests.len());
                for request in &requests {
                    let outcome = match write_batch(&pool, std::slice::from_ref(request)).await {
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
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            // A caller that went away still had its message stored; a retry finds it.
            let _ = reply.send(outcome);
        }
    }
}

/// One transaction for the whole batch, in a fixed number of statements whatever its size:
/// lock its conversations, insert its messages (touching their conversations), append the
/// events. The messages of one conversation keep their submission order.
async fn write_batch(pool: &Pool, requests: &[Request]) -> Result<Vec<Outcome>, StoreError> {
    let mut conversation_ids: Vec<i64> = requests.iter().map(|r| r.draft.conversation_id).collect();
    conversation_ids.sort_unstable();
    conversation_ids.dedup();
    let (_turn, mut db) = pool.write().await?;
    match &mut db {
        DbConn::Pg(conn) => {
            conn.transaction::<_, StoreError, _>(async |conn| {
                let at = now().as_utc();
                let found = by_id(pg::lock_conversations(conn, conversation_ids).await?)?;
                let mut plan = Plan::decide(requests, &found, at);
                let inserted = pg::insert_messages(conn, plan.take_rows(), at).await?;
                let (outcomes, events) = plan.conclude(inserted, &found, at)?;
                pg::insert_events(conn, events).await?;
                Ok(outcomes)
            })
            .await
        }
        // The same steps in one hop to the connection's blocking thread, not one per statement.
        DbConn::Sqlite(conn) => {
            let requests = requests.to_vec();
            conn.spawn_blocking(move |conn| {
                Ok(conn.immediate_transaction::<_, StoreError, _>(|conn| {
                    let at = now().as_utc();
                    let found = by_id(sqlite::lock_conversations(conn, conversation_ids)?)?;
                    let mut plan = Plan::decide(&requests, &found, at);
                    let inserted = sqlite::insert_messages(conn, plan.take_rows(), at)?;
                    let (outcomes, events) = plan.conclude(inserted, &found, at)?;
                    sqlite::insert_events(conn, events)?;
                    Ok(outcomes)
                }))
            })
            .await?
        }
    }
}

/// The locked rows, which are what the checks see.
fn by_id(rows: Vec<ConversationRow>) -> Result<HashMap<i64, Conversation>, StoreError> {
    rows.into_iter()
        .map(|row| Conversation::try_from(row).map(|c| (c.id, c)))
        .collect()
}

/// What a batch decided before inserting: each request's outcome if already known (refused),
/// and the rows of the accepted ones.
struct Plan {
    outcomes: Vec<Option<Outcome>>,
    accepted: Vec<usize>,
    rows: Vec<NewMessageRow>,
}

impl Plan {
    fn decide(
        requests: &[Request],
        found: &HashMap<i64, Conversation>,
        at: time::PrimitiveDateTime,
    ) -> Self {
        let mut plan = Plan {
            outcomes: Vec::with_capacity(requests.len()),
            accepted: Vec::new(),
            rows: Vec::new(),
        };
        for (i, request) in requests.iter().enumerate() {
            match accept(request, found.get(&request.draft.conversation_id), at) {
                Ok(row) => {
                    plan.outcomes.push(None);
                    plan.accepted.push(i);
                    plan.rows.push(row);
                }
                Err(error) => plan.outcomes.push(Some(Outcome::Failed(error))),
            }
        }
        plan
    }

    fn take_rows(&mut self) -> Vec<NewMessageRow> {
        std::mem::take(&mut self.rows)
    }

    /// Every request's outcome, given what the insert stored for each accepted row (`None`: a
    /// taken `clientMessageId`), and the events of the new messages.
    fn conclude(
        mut self,
        inserted: Vec<Option<MessageRow>>,
        found: &HashMap<i64, Conversation>,
        at: time::PrimitiveDateTime,
    ) -> Result<(Vec<Outcome>, Vec<NewEventRow>), StoreError> {
        let mut events = Vec::with_capacity(inserted.len());
        for (i, stored) in self.accepted.into_iter().zip(inserted) {
            let Some(stored) = stored else {
                self.outcomes[i] = Some(Outcome::Duplicate);
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
            self.outcomes[i] = Some(Outcome::Created(Box::new(Appended {
                message,
                conversation,
                created: true,
            })));
        }
        let outcomes = self
            .outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::Duplicate))
            .collect();
        Ok((outcomes, events))
    }
}

/// The row to insert for `request`, or why it is refused.
fn accept(
    request: &Request,
    conversation: Option<&Conversation>,
    at: time::PrimitiveDateTime,
) -> Result<NewMessageRow, StoreError> {
    let draft = &request.draft;
    check(
        &request.viewer,
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
        request: Request {
            viewer: viewer.clone(),
            draft: draft.clone(),
        },
        reply,
    };
    let stopped = || StoreError::Unavailable("the message writer has stopped".into());
    writer.send(job).await.map_err(|_| stopped())?;
    outcome.await.map_err(|_| stopped())
}
