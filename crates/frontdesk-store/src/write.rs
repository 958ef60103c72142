//! The one way to write a change that clients hear of: the change, its events in the same
//! transaction, and the wake-up of this instance's feeds once (and only if) events committed.
//!
//! A write's body returns `Emitted { value, events }`; `write_with_events!` takes the write turn,
//! runs the body and inserts its events in one transaction, notes the outcome for storage
//! health, and wakes the feeds. Nothing else in the crate inserts event rows except the
//! group-commit writer, whose batches need statements of their own (group_commit.rs) and which
//! wakes the feeds through the same `Broker::events_committed`.
//!
//! It is a macro, like `with_conn!`, because the body is written once and compiled once per
//! backend against a different connection type; a function would need a closure generic over
//! the connection.

use crate::error::StoreError;
use crate::events::NewEventRow;
use crate::Store;

/// What a write produced, and the events that tell clients about it (none when it changed
/// nothing they hear of).
pub(crate) struct Emitted<T> {
    pub value: T,
    pub events: Vec<NewEventRow>,
}

impl<T> Emitted<T> {
    /// A result with no event: nothing changed that a client hears of.
    pub(crate) fn nothing(value: T) -> Self {
        Self {
            value,
            events: Vec::new(),
        }
    }

    pub(crate) fn one(value: T, event: NewEventRow) -> Self {
        Self {
            value,
            events: vec![event],
        }
    }
}

/// Runs `$body` (which returns `Result<Emitted<T>, StoreError>` and may `return` early) in a
/// write transaction with `$conn` bound to the backend's connection, appends the events it
/// returned before committing, and evaluates to `Result<T, StoreError>`. See the module doc.
macro_rules! write_with_events {
    ($store:expr, |$conn:ident| $body:expr) => {{
        let store: &$crate::Store = $store;
        let outcome: ::std::result::Result<_, $crate::error::StoreError> = async {
            let (_turn, mut db) = store.pool.write().await?;
            match &mut db {
                $crate::pool::DbConn::Pg(object) => {
                    let conn: &mut ::diesel_async::AsyncPgConnection = &mut *object;
                    ::diesel_async::AsyncConnection::transaction::<_, $crate::error::StoreError, _>(
                        conn,
                        async move |$conn| {
                            let emitted: ::std::result::Result<
                                $crate::write::Emitted<_>,
                                $crate::error::StoreError,
                            > = async { $body }.await;
                            let $crate::write::Emitted { value, events } = emitted?;
                            let any = !events.is_empty();
                            if any {
                                $crate::batch::pg::insert_events($conn, events).await?;
                            }
                            Ok((value, any))
                        },
                    )
                    .await
                }
                $crate::pool::DbConn::Sqlite(object) => {
                    let conn: &mut $crate::pool::SqliteConn = &mut object.conn;
                    ::diesel_async::AsyncConnection::transaction::<_, $crate::error::StoreError, _>(
                        conn,
                        async move |$conn| {
                            let emitted: ::std::result::Result<
                                $crate::write::Emitted<_>,
                                $crate::error::StoreError,
                            > = async { $body }.await;
                            let $crate::write::Emitted { value, events } = emitted?;
                            let any = !events.is_empty();
                            if any {
                                // All the rows in one hop to the connection's blocking thread.
                                $conn
                                    .spawn_blocking(move |conn| {
                                        $crate::batch::sqlite::insert_events(conn, events)
                                    })
                                    .await?;
                            }
                            Ok((value, any))
                        },
                    )
                    .await
                }
            }
        }
        .await;
        store.committed(outcome)
    }};
}
pub(crate) use write_with_events;

impl Store {
    /// The end of every event-emitting write (`write_with_events!`): the outcome noted for
    /// storage health, and this instance's feeds woken when the commit carried events.
    pub(crate) fn committed<T>(
        &self,
        outcome: Result<(T, bool), StoreError>,
    ) -> Result<T, StoreError> {
        let (value, any_events) = self.noted(outcome)?;
        if any_events {
            self.broker.events_committed();
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    //! The write path's promise, on both backends: a write that commits events appends them and
    //! wakes this instance's feeds; one that changes nothing clients hear of, or is refused,
    //! appends nothing and wakes nobody.

    use frontdesk_domain::customer::CustomerChanges;
    use frontdesk_domain::{AgentSignup, CustomerId, MessageDraft, Patch, Sender, Viewer};
    use tokio::sync::broadcast;

    use crate::broker::Signal;
    use crate::Store;

    /// What one write left behind: events appended and wake-ups sent.
    struct Trace<'a> {
        store: &'a Store,
        signals: broadcast::Receiver<Signal>,
        last_event: i64,
    }

    impl Trace<'_> {
        /// `(events appended, wake-ups)` since the last look.
        async fn since_last(&mut self) -> (i64, usize) {
            let latest = self
                .store
                .latest_event_id()
                .await
                .unwrap_or_else(|e| panic!("latest event: {e}"));
            let appended = latest.0 - self.last_event;
            self.last_event = latest.0;
            let mut wakes = 0;
            // The wake is sent before the write returns: nothing is still on its way.
            while let Ok(signal) = self.signals.try_recv() {
                if matches!(signal, Signal::Events) {
                    wakes += 1;
                }
            }
            (appended, wakes)
        }
    }

    async fn only_committed_events_wake(url: &str) {
        let (store, partner) = crate::test_store::with_acme(url).await;
        let signup = |email: &str| AgentSignup {
            email: email.into(),
            name: "Agent".into(),
            password_hash: "not a real hash".into(),
            is_admin: false,
        };
        let holder = store
            .create_agent(&signup("holder@example.com"))
            .await
            .unwrap_or_else(|e| panic!("agent: {e}"));
        let other = store
            .create_agent(&signup("other@example.com"))
            .await
            .unwrap_or_else(|e| panic!("agent: {e}"));
        let ann = CustomerId::parse("ann").unwrap_or_else(|e| panic!("{e}"));
        let mut trace = Trace {
            store: &store,
            signals: store.broker.local_signals(),
            last_event: 0,
        };
        trace.since_last().await;

        let conversation = store
            .create_conversation(partner.id, &ann)
            .await
            .unwrap_or_else(|e| panic!("conversation: {e}"));
        assert_eq!(trace.since_last().await, (1, 1), "a new conversation");
        let id = conversation.id;

        let taken = store.assign(holder.id, id).await;
        assert!(taken.is_ok(), "assign: {taken:?}");
        assert_eq!(trace.since_last().await, (1, 1), "an assignment");

        let again = store.assign(holder.id, id).await;
        assert!(again.is_ok(), "assign again: {again:?}");
        assert_eq!(trace.since_last().await, (0, 0), "taking what one holds");

        assert!(store.assign(other.id, id).await.is_err());
        assert_eq!(trace.since_last().await, (0, 0), "a refused assignment");
        assert!(store.close(other.id, false, id).await.is_err());
        assert_eq!(trace.since_last().await, (0, 0), "a refused close");

        let read = store
            .mark_read(
                &Viewer::Agent(holder.id),
                id,
                frontdesk_domain::MessageId(i64::MAX),
            )
            .await;
        assert!(matches!(read, Ok(None)), "{read:?}");
        assert_eq!(trace.since_last().await, (0, 0), "nothing unread");

        // The message writer's batches wake through the same broker.
        let draft = MessageDraft::new(id, Sender::Customer(ann.clone()), "hi".into(), None, None)
            .unwrap_or_else(|e| panic!("draft: {e}"));
        let appended = store
            .append_message(&Viewer::Partner(partner.id), &draft)
            .await
            .unwrap_or_else(|e| panic!("append: {e}"));
        assert_eq!(trace.since_last().await, (1, 1), "a message");
        let read = store
            .mark_read(&Viewer::Agent(holder.id), id, appended.message.id)
            .await;
        assert!(matches!(read, Ok(Some(_))), "{read:?}");
        assert_eq!(trace.since_last().await, (1, 1), "a read receipt");

        let changes = CustomerChanges {
            name: Patch::Set("Ann".into()),
            ..CustomerChanges::default()
        };
        let upserted = store.upsert_customer(partner.id, &ann, changes).await;
        assert!(upserted.is_ok(), "upsert: {upserted:?}");
        assert_eq!(
            trace.since_last().await,
            (0, 0),
            "a change no client hears of"
        );

        let closed = store.close(holder.id, false, id).await;
        assert!(closed.is_ok(), "close: {closed:?}");
        assert_eq!(trace.since_last().await, (1, 1), "a close");
    }

    #[tokio::test]
    async fn sqlite() {
        let db = frontdesk_testkit::TestDb::new(frontdesk_testkit::Backend::Sqlite).await;
        only_committed_events_wake(&db.url).await;
    }

    #[tokio::test]
    async fn postgres() {
        if frontdesk_testkit::Backend::Postgres.enabled() {
            let db = frontdesk_testkit::TestDb::new(frontdesk_testkit::Backend::Postgres).await;
            only_committed_events_wake(&db.url).await;
        }
    }
}
