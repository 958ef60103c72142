//! Group commit for message appends: one writer task per store takes every append waiting at
//! that moment and commits them in one transaction, so one fsync (and, on PostgreSQL, one turn
//! of the event-log lock) serves the whole batch. Nobody is answered before the commit returns,
//! so an acknowledged message is as durable as with one transaction each.
//!
//! A failed batch is told apart by cause. A failure of the database itself (unreachable, busy,
//! full) fails the whole batch at once: retrying each append would make each wait again. A
//! failure that may be one row's (a bad row, a conversation locked by another session past
//! `lock_timeout`) retries the appends one by one, so the others are stored; once one
//! conversation proved locked, its other appends in the batch fail without waiting again.
//! Every append carries a key (its `clientMessageId`, or else a server-side append key), so a
//! retry after a batch whose commit had in fact succeeded finds the stored message instead of
//! storing it twice.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use diesel_async::AsyncConnection;
use frontdesk_domain::{
    Audience, Conversation, ConversationId, ConversationStatus, Event, Message, MessageDraft,
    Timestamp, Viewer,
};
use tokio::sync::{mpsc, oneshot};

use crate::batch::{pg, sqlite};
use crate::broker::Broker;
use crate::error::{Entity, StoreError};
use crate::events::NewEventRow;
use crate::health::StorageHealth;
use crate::messages::{check, Appended};
use crate::pool::{DbConn, Pool};
use crate::rows::{now, ConversationRow, MessageRow, NewMessageRow};
use crate::write::Emitted;

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
    /// Set when the draft has no `clientMessageId`: what a retry of this very append is
    /// recognised by.
    append_key: Option<String>,
    /// Set for an automated reply: the job it finishes (see replies.rs).
    reply: Option<ReplyMark>,
}

/// An automated reply's job: stored only while the job still asks for a reply to `trigger`;
/// its commit deletes the job and counts the reply's `tokens`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplyMark {
    pub trigger: i64,
    pub tokens: i64,
}

pub(crate) enum Outcome {
    Created(Box<Appended>),
    /// The `clientMessageId` was already stored (by an earlier request or earlier in the batch).
    Duplicate,
    Failed(StoreError),
    /// An automated reply whose job now asks for a reply to a newer customer message.
    Superseded(i64),
    /// An automated reply with nothing to answer any more: its job is gone or the
    /// conversation was handed off.
    Gone,
}

/// A conversation's reply job as a batch with automated replies sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JobState {
    pub handed_off: bool,
    /// The job's trigger; `None` without a job.
    pub trigger: Option<i64>,
}

/// The writer's end: where appends are handed in, and how long each may take in all.
#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<AppendJob>,
    deadline: Duration,
}

/// Starts the writer; it stops when every sender (every `Store` clone) is gone.
pub(crate) fn start(
    pool: Pool,
    broker: Broker,
    health: StorageHealth,
    deadline: Duration,
    replies: Replies,
) -> Writer {
    let (jobs, rx) = mpsc::channel(QUEUE);
    tokio::spawn(run(pool, broker, health, replies, rx));
    Writer { jobs, deadline }
}

async fn run(
    pool: Pool,
    broker: Broker,
    health: StorageHealth,
    replies: Replies,
    mut rx: mpsc::Receiver<AppendJob>,
) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        jobs.push(first);
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        // A caller whose deadline passed while it queued has been answered 503 already:
        // storing its message now would contradict that answer.
        jobs.retain(|job| !job.reply.is_closed());
        if jobs.is_empty() {
            continue;
        }
        let (requests, answers): (Vec<Request>, Vec<_>) =
            jobs.drain(..).map(|job| (job.request, job.reply)).unzip();
        let batch = write_batch(&pool, &requests, &replies).await;
        health.note(&batch);
        let (outcomes, failed) = match batch {
            Ok(outcomes) => (outcomes, false),
            Err(error) if error.is_shared_by_all() => {
                let size = requests.len();
                tracing::warn!(%error, size, "batch failed; the database is not writable");
                let outcomes = requests
                    .iter()
                    .map(|_| Outcome::Failed(error.replicate()))
                    .collect();
                (outcomes, true)
            }
            Err(error) => {
                let size = requests.len();
                tracing::warn!(%error, size, "batch failed; writing one by one");
                (
                    one_by_one(&pool, &health, &replies, &requests, &answers).await,
                    true,
                )
            }
        };
        // After a failure too: a commit may have succeeded before the error.
        if failed || outcomes.iter().any(|o| matches!(o, Outcome::Created(_))) {
            broker.events_committed();
        }
        for (reply, outcome) in answers.into_iter().zip(outcomes) {
            // A caller that went away still had its message stored; a retry finds it.
            let _ = reply.send(outcome);
        }
    }
}

/// After a batch failed for a reason that may be one row's: each append on its own, so one bad
/// append (or a deadlock between instances) does not fail the others. A conversation found
/// locked fails its remaining appends without waiting for the lock again, and an append whose
/// caller has meanwhile been answered (its deadline passed) is not written.
async fn one_by_one(
    pool: &Pool,
    health: &StorageHealth,
    jobs: &Replies,
    requests: &[Request],
    replies: &[oneshot::Sender<Outcome>],
) -> Vec<Outcome> {
    let mut locked = HashSet::new();
    let mut outcomes = Vec::with_capacity(requests.len());
    for (request, reply) in requests.iter().zip(replies) {
        if reply.is_closed() {
            outcomes.push(Outcome::Failed(StoreError::Unavailable(
                "the caller's deadline passed".into(),
            )));
            continue;
        }
        let conversation = request.draft.conversation_id;
        if locked.contains(&conversation) {
            outcomes.push(Outcome::Failed(StoreError::RowLocked(format!(
                "conversation {conversation} is locked by another session"
            ))));
            continue;
        }
        let single = write_batch(pool, std::slice::from_ref(request), jobs).await;
        health.note(&single);
        outcomes.push(match single {
            Ok(mut single) => single.pop().unwrap_or(Outcome::Duplicate),
            Err(error) => {
                if matches!(error, StoreError::RowLocked(_)) {
                    locked.insert(conversation);
                }
                Outcome::Failed(error)
            }
        });
    }
    outcomes
}

/// One transaction for the whole batch, in a fixed number of statements whatever its size:
/// lock its conversations, insert its messages (touching their conversations), append the
/// events. The messages of one conversation keep their submission order.
async fn write_batch(
    pool: &Pool,
    requests: &[Request],
    replies: &Replies,
) -> Result<Vec<Outcome>, StoreError> {
    let mut conversation_ids: Vec<i64> =
        requests.iter().map(|r| r.draft.conversation_id.0).collect();
    conversation_ids.sort_unstable();
    conversation_ids.dedup();
    let (_turn, mut db) = pool.write().await?;
    match &mut db {
        DbConn::Pg(conn) => {
            conn.transaction::<_, StoreError, _>(async |conn| {
                let at = now().as_utc();
                let found = by_id(pg::lock_conversations(conn, conversation_ids).await?)?;
                let jobs = pg::reply_state(conn, replying(requests)).await?;
                let mut plan = Plan::decide(requests, &found, &jobs, at);
                let inserted = pg::insert_messages(conn, plan.take_rows(), at).await?;
                let Emitted { value, events } = plan.conclude(inserted, &found, at)?;
                // The jobs the replies finish go before the jobs new messages call for (one
                // conversation may have both in a batch); the events last, as they take the
                // event-log lock until the commit.
                pg::finish_replies(conn, finished(requests, &value)).await?;
                pg::upsert_reply_jobs(conn, replies, replies.triggers(&value), at).await?;
                pg::insert_events(conn, events).await?;
                Ok(value)
            })
            .await
        }
        // The same steps in one hop to the connection's blocking thread, not one per statement.
        DbConn::Sqlite(conn) => {
            let requests = requests.to_vec();
            let replies = replies.clone();
            conn.conn
                .spawn_blocking(move |conn| {
                    Ok(conn.immediate_transaction::<_, StoreError, _>(|conn| {
                        let at = now().as_utc();
                        let found = by_id(sqlite::lock_conversations(conn, conversation_ids)?)?;
                        let jobs = sqlite::reply_state(conn, replying(&requests))?;
                        let mut plan = Plan::decide(&requests, &found, &jobs, at);
                        let inserted = sqlite::insert_messages(conn, plan.take_rows(), at)?;
                        let Emitted { value, events } = plan.conclude(inserted, &found, at)?;
                        sqlite::finish_replies(conn, finished(&requests, &value))?;
                        sqlite::upsert_reply_jobs(conn, &replies, replies.triggers(&value), at)?;
                        sqlite::insert_events(conn, events)?;
                        Ok(value)
                    }))
                })
                .await?
        }
    }
}

/// Whether customer messages in waiting conversations get a reply job in their commit. A
/// new job is claimed by this instance (`owner`) in that same commit, with a lease of `lease`:
/// the instance that stored the message answers it without another write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Replies {
    Off,
    On { owner: Arc<str>, lease: Duration },
}

impl Replies {
    /// For each conversation where a customer's new message now waits for an agent, the
    /// newest such message: the reply it calls for must have seen it.
    fn triggers(&self, outcomes: &[Outcome]) -> Vec<(i64, i64)> {
        if *self == Replies::Off {
            return Vec::new();
        }
        let mut newest: HashMap<i64, i64> = HashMap::new();
        for outcome in outcomes {
            let Outcome::Created(appended) = outcome else {
                continue;
            };
            let conversation = &appended.conversation;
            if appended.message.sender.is_agent_side()
                || conversation.status != ConversationStatus::Waiting
                || conversation.agent_id.is_some()
            {
                continue;
            }
            let id = appended.message.id.0;
            newest
                .entry(conversation.id.0)
                .and_modify(|n| *n = (*n).max(id))
                .or_insert(id);
        }
        let mut triggers: Vec<(i64, i64)> = newest.into_iter().collect();
        triggers.sort_unstable();
        triggers
    }
}

/// The conversations the batch's automated replies are for.
fn replying(requests: &[Request]) -> Vec<i64> {
    requests
        .iter()
        .filter(|r| r.reply.is_some())
        .map(|r| r.draft.conversation_id.0)
        .collect()
}

/// `(conversation, trigger, tokens)` of each automated reply the batch stored.
fn finished(requests: &[Request], outcomes: &[Outcome]) -> Vec<(i64, i64, i64)> {
    requests
        .iter()
        .zip(outcomes)
        .filter_map(|(request, outcome)| match (request.reply, outcome) {
            (Some(mark), Outcome::Created(_)) => {
                Some((request.draft.conversation_id.0, mark.trigger, mark.tokens))
            }
            _ => None,
        })
        .collect()
}

/// The locked rows, which are what the checks see.
fn by_id(rows: Vec<ConversationRow>) -> Result<HashMap<ConversationId, Conversation>, StoreError> {
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
        found: &HashMap<ConversationId, Conversation>,
        jobs: &HashMap<i64, JobState>,
        at: time::PrimitiveDateTime,
    ) -> Self {
        let mut plan = Plan {
            outcomes: Vec::with_capacity(requests.len()),
            accepted: Vec::new(),
            rows: Vec::new(),
        };
        for (i, request) in requests.iter().enumerate() {
            if let Some(refused) = stale_reply(request, jobs) {
                plan.outcomes.push(Some(refused));
                continue;
            }
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
        found: &HashMap<ConversationId, Conversation>,
        at: time::PrimitiveDateTime,
    ) -> Result<Emitted<Vec<Outcome>>, StoreError> {
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
                .ok_or(StoreError::NotFound(Entity::Conversation))?;
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
        Ok(Emitted {
            value: outcomes,
            events,
        })
    }
}

/// Why an automated reply may no longer be stored, checked against its job as the batch
/// found it (the conversation is locked, so the job cannot change before the commit).
fn stale_reply(request: &Request, jobs: &HashMap<i64, JobState>) -> Option<Outcome> {
    let mark = request.reply?;
    let job = jobs.get(&request.draft.conversation_id.0)?;
    match job.trigger {
        _ if job.handed_off => Some(Outcome::Gone),
        None => Some(Outcome::Gone),
        Some(trigger) if trigger != mark.trigger => Some(Outcome::Superseded(trigger)),
        Some(_) => None,
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
        conversation.ok_or(StoreError::NotFound(Entity::Conversation))?,
    )?;
    NewMessageRow::from_draft(draft, at, request.append_key.clone())
}

impl Writer {
    /// Hands one append to the writer and waits for its commit, within the append deadline
    /// (beyond it: unavailable, and the writer skips the append if it has not started it).
    pub(crate) async fn submit(
        &self,
        viewer: &Viewer,
        draft: &MessageDraft,
        append_key: Option<String>,
        mark: Option<ReplyMark>,
    ) -> Result<Outcome, StoreError> {
        let (reply, outcome) = oneshot::channel();
        let job = AppendJob {
            request: Request {
                viewer: viewer.clone(),
                draft: draft.clone(),
                append_key,
                reply: mark,
            },
            reply,
        };
        let stopped = || StoreError::Unavailable("the message writer has stopped".into());
        let handed = async {
            self.jobs.send(job).await.map_err(|_| stopped())?;
            outcome.await.map_err(|_| stopped())
        };
        tokio::time::timeout(self.deadline, handed)
            .await
            .map_err(|_| {
                StoreError::Unavailable(format!(
                    "the message was not stored within {} ms",
                    self.deadline.as_millis()
                ))
            })?
    }
}

#[cfg(test)]
mod plan {
    //! What each caller of a batch is answered, decided without a database: the checks before
    //! the insert (`Plan::decide`) and the pairing of what was stored with who sent it
    //! (`Plan::conclude`).

    use frontdesk_domain::{ConversationStatus, CustomerId, DomainError, PartnerId, Sender};

    use super::*;

    const ACME: PartnerId = PartnerId(1);
    const OTHER: PartnerId = PartnerId(2);

    fn at() -> time::PrimitiveDateTime {
        now().as_utc()
    }

    fn ann() -> CustomerId {
        CustomerId::from_stored("ann".into())
    }

    fn conversation(id: i64, partner: PartnerId, status: ConversationStatus) -> Conversation {
        // An hour old, so a touch by the batch shows.
        let then = Timestamp::from_utc(at() - time::Duration::hours(1));
        Conversation {
            id: ConversationId(id),
            partner_id: partner,
            customer_id: ann(),
            agent_id: None,
            status,
            created_at: then,
            updated_at: then,
        }
    }

    /// Conversations 1 (waiting) and 2 (closed) of Acme, 3 of another partner.
    fn found() -> HashMap<ConversationId, Conversation> {
        [
            conversation(1, ACME, ConversationStatus::Waiting),
            conversation(2, ACME, ConversationStatus::Closed),
            conversation(3, OTHER, ConversationStatus::Waiting),
        ]
        .into_iter()
        .map(|c| (c.id, c))
        .collect()
    }

    /// Ann's message `content` in `conversation`, sent through Acme's API key.
    fn request(conversation: i64, content: &str) -> Request {
        let draft = MessageDraft::new(
            ConversationId(conversation),
            Sender::Customer(ann()),
            content.into(),
            None,
            Some(format!("client-{content}")),
        )
        .unwrap_or_else(|e| panic!("draft: {e}"));
        Request {
            viewer: Viewer::Partner(ACME),
            draft,
            append_key: None,
            reply: None,
        }
    }

    /// Each outcome as `created <content>`, `duplicate` or `failed <error>`.
    fn shown(outcomes: &[Outcome]) -> Vec<String> {
        outcomes
            .iter()
            .map(|outcome| match outcome {
                Outcome::Created(appended) => format!("created {}", appended.message.content),
                Outcome::Duplicate => "duplicate".to_owned(),
                Outcome::Failed(error) => format!("failed {error}"),
                Outcome::Superseded(trigger) => format!("superseded by {trigger}"),
                Outcome::Gone => "gone".to_owned(),
            })
            .collect()
    }

    /// The bot's reply to customer message `trigger` in `conversation`, through Acme's key.
    fn reply(conversation: i64, trigger: i64) -> Request {
        reply_from(ACME, conversation, trigger)
    }

    /// The same for `partner`'s conversation (the database tests below use it too).
    pub(super) fn reply_from(partner: PartnerId, conversation: i64, trigger: i64) -> Request {
        let draft = MessageDraft::new(
            ConversationId(conversation),
            Sender::Bot,
            format!("answer to {trigger}"),
            None,
            Some(format!("bot-reply:{trigger}")),
        )
        .unwrap_or_else(|e| panic!("draft: {e}"));
        Request {
            viewer: Viewer::Partner(partner),
            draft,
            append_key: None,
            reply: Some(ReplyMark { trigger, tokens: 7 }),
        }
    }

    #[test]
    fn an_automated_reply_is_stored_only_while_its_job_still_asks_for_it() {
        let at = at();
        let mut found = found();
        for id in [4, 5, 6] {
            found.insert(
                ConversationId(id),
                conversation(id, ACME, ConversationStatus::Waiting),
            );
        }
        let job = |trigger: Option<i64>, handed_off: bool| JobState {
            handed_off,
            trigger,
        };
        let jobs: HashMap<i64, JobState> = [
            (1, job(Some(10), false)),
            (4, job(Some(12), false)),
            (5, job(None, false)),
            (6, job(Some(20), true)),
        ]
        .into_iter()
        .collect();
        let requests = [
            reply(1, 10),
            reply(4, 11),
            reply(5, 9),
            reply(6, 20),
            // Conversation 2 is closed: the rules refuse the bot there.
            reply(2, 3),
        ];
        let mut plan = Plan::decide(&requests, &found, &jobs, at);
        let rows = plan.take_rows();
        assert_eq!(rows.len(), 1, "only the reply its job still asks for");
        let inserted = vec![Some(NewMessageRow::stored_as(&rows[0], 30))];
        let Ok(Emitted { value, .. }) = plan.conclude(inserted, &found, at) else {
            panic!("conclude failed");
        };
        let shown = shown(&value);
        assert_eq!(
            shown[..4],
            ["created answer to 10", "superseded by 12", "gone", "gone"]
        );
        assert!(shown[4].starts_with("failed"), "{shown:?}");
        assert_eq!(finished(&requests, &value), [(1, 10, 7)]);
        assert_eq!(replying(&requests), [1, 4, 5, 6, 2]);
    }

    #[test]
    fn a_refused_append_fails_alone_and_the_others_are_stored_in_order() {
        let at = at();
        let found = found();
        let requests = [
            request(1, "first"),
            request(2, "to a closed one"),
            request(99, "to nowhere"),
            request(3, "to another partner's"),
            request(1, "last"),
        ];
        let mut plan = Plan::decide(&requests, &found, &HashMap::new(), at);
        let rows = plan.take_rows();
        let contents: Vec<&str> = rows.iter().map(|r| r.content.as_str()).collect();
        assert_eq!(contents, ["first", "last"], "only the accepted, in order");
        let inserted = vec![
            Some(NewMessageRow::stored_as(&rows[0], 10)),
            Some(NewMessageRow::stored_as(&rows[1], 11)),
        ];
        let Ok(Emitted { value, events }) = plan.conclude(inserted, &found, at) else {
            panic!("conclude failed");
        };
        assert_eq!(
            shown(&value),
            [
                "created first",
                "failed conversation is closed",
                "failed conversation not found",
                "failed conversation not found",
                "created last",
            ]
        );
        assert!(matches!(
            &value[1],
            Outcome::Failed(StoreError::Rule(DomainError::ConversationClosed))
        ));
        // One event per stored message, in id order.
        let ids: Vec<i64> = events
            .iter()
            .map(|e| serde_json::from_str::<serde_json::Value>(&e.payload))
            .map(|p| p.map_or(0, |p| p["id"].as_i64().unwrap_or(0)))
            .collect();
        assert_eq!(ids, [10, 11]);
        assert!(events.iter().all(|e| e.kind == "message"));
    }

    #[test]
    fn an_append_the_database_skipped_is_a_duplicate_for_its_caller_only() {
        let at = at();
        let found = found();
        let requests = [request(1, "a"), request(1, "b"), request(1, "c")];
        let mut plan = Plan::decide(&requests, &found, &HashMap::new(), at);
        let rows = plan.take_rows();
        // `b`'s clientMessageId was taken (by an earlier request, or earlier in this batch).
        let inserted = vec![
            Some(NewMessageRow::stored_as(&rows[0], 5)),
            None,
            Some(NewMessageRow::stored_as(&rows[2], 6)),
        ];
        let Ok(Emitted { value, events }) = plan.conclude(inserted, &found, at) else {
            panic!("conclude failed");
        };
        assert_eq!(shown(&value), ["created a", "duplicate", "created c"]);
        assert_eq!(events.len(), 2, "no event for the skipped one");
    }

    #[test]
    fn a_created_message_comes_with_its_conversation_as_the_batch_left_it() {
        let at = at();
        let found = found();
        let requests = [request(1, "hi")];
        let mut plan = Plan::decide(&requests, &found, &HashMap::new(), at);
        let rows = plan.take_rows();
        let inserted = vec![Some(NewMessageRow::stored_as(&rows[0], 7))];
        let Ok(Emitted { value, events }) = plan.conclude(inserted, &found, at) else {
            panic!("conclude failed");
        };
        let [Outcome::Created(appended)] = value.as_slice() else {
            panic!("{:?}", shown(&value));
        };
        assert!(appended.created);
        assert_eq!(appended.message.id, frontdesk_domain::MessageId(7));
        assert_eq!(appended.conversation.id, ConversationId(1));
        assert_eq!(appended.conversation.updated_at, Timestamp::from_utc(at));
        assert_eq!(events[0].conversation_id, Some(1));
        assert_eq!(events[0].partner_id, ACME.0);
    }

    #[test]
    fn a_batch_refused_entirely_writes_nothing() {
        let at = at();
        let found = found();
        let requests = [request(2, "closed"), request(3, "not ours")];
        let mut plan = Plan::decide(&requests, &found, &HashMap::new(), at);
        assert!(plan.take_rows().is_empty());
        let Ok(Emitted { value, events }) = plan.conclude(Vec::new(), &found, at) else {
            panic!("conclude failed");
        };
        assert!(value.iter().all(|o| matches!(o, Outcome::Failed(_))));
        assert!(events.is_empty());
    }
}

#[cfg(test)]
mod tests {
    //! The writer's retry after a batch whose commit succeeded although the writer saw an
    //! error (a connection lost during COMMIT, say): the same requests written again.

    use frontdesk_domain::{CustomerId, Sender};

    use super::*;

    /// Ann's message `content` in `conversation`, through the partner's key.
    fn customer_request(
        partner: &frontdesk_domain::Partner,
        conversation: &Conversation,
        content: &str,
        client_id: Option<&str>,
        append_key: Option<&str>,
    ) -> Request {
        Request {
            viewer: Viewer::Partner(partner.id),
            draft: MessageDraft::new(
                conversation.id,
                Sender::Customer(conversation.customer_id.clone()),
                content.into(),
                None,
                client_id.map(str::to_owned),
            )
            .unwrap_or_else(|e| panic!("draft: {e}")),
            append_key: append_key.map(str::to_owned),
            reply: None,
        }
    }

    async fn retry_after_a_commit_stores_nothing_twice(url: &str) {
        let (store, partner) = crate::test_store::with_acme(url).await;
        let ann = CustomerId::parse("ann").unwrap_or_else(|e| panic!("{e}"));
        let conversation = store
            .create_conversation(partner.id, &ann)
            .await
            .unwrap_or_else(|e| panic!("conversation: {e}"));
        let request = |content: &str, client_id: Option<&str>, key: Option<&str>| {
            customer_request(&partner, &conversation, content, client_id, key)
        };
        let batch = vec![
            request("no id", None, Some("key-1")),
            request("with id", Some("c-1"), None),
            request("another", None, Some("key-2")),
        ];
        let first = write_batch(&store.pool, &batch, &Replies::Off)
            .await
            .unwrap_or_else(|e| panic!("first: {e}"));
        assert!(first.iter().all(|o| matches!(o, Outcome::Created(_))));
        // The writer's retry, one by one, as after a failed batch.
        for single in &batch {
            let again = write_batch(&store.pool, std::slice::from_ref(single), &Replies::Off)
                .await
                .unwrap_or_else(|e| panic!("retry: {e}"));
            assert!(matches!(again.as_slice(), [Outcome::Duplicate]));
        }
        let stored = store
            .messages(
                &Viewer::Partner(partner.id),
                conversation.id,
                frontdesk_domain::MessageId(0),
                100,
            )
            .await
            .unwrap_or_else(|e| panic!("history: {e}"));
        let contents: Vec<&str> = stored.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(contents, ["no id", "with id", "another"]);
        // And the caller finds its message by its key.
        let found = store
            .stored_earlier(
                &Viewer::Partner(partner.id),
                crate::messages::Earlier::AppendKey("key-2".into()),
            )
            .await
            .unwrap_or_else(|e| panic!("look-up: {e}"));
        assert_eq!(found.map(|a| a.message.content), Some("another".into()));
    }

    #[tokio::test]
    async fn sqlite() {
        let db = frontdesk_testkit::TestDb::new(frontdesk_testkit::Backend::Sqlite).await;
        retry_after_a_commit_stores_nothing_twice(&db.url).await;
    }

    #[tokio::test]
    async fn postgres() {
        if frontdesk_testkit::Backend::Postgres.enabled() {
            let db = frontdesk_testkit::TestDb::new(frontdesk_testkit::Backend::Postgres).await;
            retry_after_a_commit_stores_nothing_twice(&db.url).await;
        }
    }

    /// A bot reply to `t1` and the customer's next message `t2` in one batch: the reply is
    /// stored, its job finished, and a new job for `t2` left, held by this instance. (Were the
    /// job finished after the new message's upsert, `t2` would lose its job.)
    async fn a_reply_and_the_next_message_in_one_batch_leave_a_job_for_the_next(url: &str) {
        let (store, partner) = crate::test_store::with_acme(url).await;
        let ann = CustomerId::parse("ann").unwrap_or_else(|e| panic!("{e}"));
        let conversation = store
            .create_conversation(partner.id, &ann)
            .await
            .unwrap_or_else(|e| panic!("conversation: {e}"));
        let replies = Replies::On {
            owner: Arc::from("instance-a"),
            lease: Duration::from_secs(60),
        };
        let said = |content: &str| {
            let client_id = format!("c-{content}");
            customer_request(&partner, &conversation, content, Some(&client_id), None)
        };
        let first = write_batch(&store.pool, &[said("first")], &replies)
            .await
            .unwrap_or_else(|e| panic!("first: {e}"));
        let [Outcome::Created(first)] = first.as_slice() else {
            panic!("first not stored");
        };
        let t1 = first.message.id.0;
        let reply = super::plan::reply_from(partner.id, conversation.id.0, t1);
        let both = write_batch(&store.pool, &[reply, said("second")], &replies)
            .await
            .unwrap_or_else(|e| panic!("batch: {e}"));
        let [Outcome::Created(_), Outcome::Created(second)] = both.as_slice() else {
            panic!("both should be stored");
        };
        let job = store
            .adopt_reply(conversation.id, "instance-a")
            .await
            .unwrap_or_else(|e| panic!("adopt: {e}"))
            .unwrap_or_else(|| panic!("the next message lost its job"));
        assert_eq!(job.trigger, second.message.id);
        assert_eq!(job.bot.replies(), 1, "the reply was counted");
    }

    #[tokio::test]
    async fn reply_batch_sqlite() {
        let db = frontdesk_testkit::TestDb::new(frontdesk_testkit::Backend::Sqlite).await;
        a_reply_and_the_next_message_in_one_batch_leave_a_job_for_the_next(&db.url).await;
    }

    #[tokio::test]
    async fn reply_batch_postgres() {
        if frontdesk_testkit::Backend::Postgres.enabled() {
            let db = frontdesk_testkit::TestDb::new(frontdesk_testkit::Backend::Postgres).await;
            a_reply_and_the_next_message_in_one_batch_leave_a_job_for_the_next(&db.url).await;
        }
    }
}
