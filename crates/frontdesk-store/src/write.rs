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
                    let conn: &mut $crate::pool::SqliteConn = &mut *object;
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
