//! Frontdesk's storage: one API over SQLite (embedded default) and PostgreSQL (several server
//! instances), with diesel-async, deadpool and embedded migrations run on start.

mod agents;
mod batch;
mod blocking;
mod broker;
mod conversations;
mod customers;
mod error;
mod events;
mod feed;
mod group_commit;
mod health;
mod lifecycle;
mod messages;
mod partners;
mod pool;
mod replies;
mod rows;
mod schema;
mod sessions;
mod summaries;
#[cfg(test)]
mod test_store;
mod throttle;
mod write;

pub use broker::{DeltaSignal, Origin, TypingSignal};
pub use error::{DatabaseError, Entity, StoreError};
pub use events::StoredEvent;
pub use feed::{EventFeed, FeedItem};
pub use group_commit::MAX_BATCH as MAX_APPEND_BATCH;
pub use messages::Appended;
pub use pool::{Backend, StoreConfig, Timeouts};
pub use replies::{reply_id, Finished, ReplyJob, ReplyOutcome, HANDOFF_NOTICE_ID};
pub use sessions::CustomerSession;
pub use throttle::ThrottleCount;

use std::sync::Arc;

use diesel_async::RunQueryDsl;

use crate::broker::Broker;
use crate::pool::{with_conn, Pool};

/// A handle on the database; cheap to clone (it is a pool).
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    database_url: String,
    /// Wakes this instance's event feeds and carries signals between instances.
    broker: Broker,
    /// The group-commit writer of message appends.
    writer: group_commit::Writer,
    /// Whether writes are failing for lack of space.
    health: health::StorageHealth,
    /// This process, as the holder of reply-job leases.
    instance: Arc<str>,
}

impl Store {
    /// Connects, creating the SQLite file and its folder if needed, and runs pending
    /// migrations (under an advisory lock on PostgreSQL, so instances may start together).
    pub async fn open(config: &StoreConfig) -> Result<Self, StoreError> {
        let pool = Pool::open(config).await?;
        let broker = Broker::for_pool(&pool, &config.database_url);
        let health = health::StorageHealth::default();
        let instance: Arc<str> = format!("instance-{:016x}", rand::random::<u64>()).into();
        Ok(Self {
            instance: Arc::clone(&instance),
            // The writer's own connection: in the server a 32-message batch took 3.7 ms through the
            // shared pool against 2.6 ms without HTTP (see `Pool::dedicated`).
            writer: group_commit::start(
                pool.dedicated(&config.database_url, 1)?,
                broker.clone(),
                health.clone(),
                config.timeouts.append,
                match config.reply_lease {
                    Some(lease) => group_commit::Replies::On {
                        owner: Arc::clone(&instance),
                        lease,
                    },
                    None => group_commit::Replies::Off,
                },
            ),
            health,
            pool,
            database_url: config.database_url.clone(),
            broker,
        })
    }

    /// A handle on the same database, writer and feed with a PostgreSQL pool of its own, of
    /// up to `size` connections opened by the thread that first uses them. The server gives one
    /// to each worker thread, so a request's own queries never wait for another thread (message
    /// appends still go through the writer).
    pub fn with_own_pool(&self, size: usize) -> Result<Store, StoreError> {
        let pool = self.pool.dedicated(&self.database_url, size)?;
        Ok(Store {
            // Typing and revocations are published through the worker's pool too.
            broker: self.broker.with_pool(&pool),
            pool,
            ..self.clone()
        })
    }

    /// This process's name as the holder of reply jobs (random per start).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub fn backend(&self) -> Backend {
        self.pool.backend()
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut db = self.pool.get().await?;
        with_conn!(db, |conn| {
            diesel::sql_query("SELECT 1").execute(conn).await?;
        });
        Ok(())
    }
}
