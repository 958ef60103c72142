//! Frontdesk's storage: one API over SQLite (embedded default) and PostgreSQL (several server
//! instances), with diesel-async, deadpool and embedded migrations run on start.

mod blocking;
mod conversations;
mod customers;
mod error;
mod messages;
mod partners;
mod pool;
mod rows;
mod schema;
mod sessions;

pub use error::StoreError;
pub use messages::Appended;
pub use pool::{Backend, StoreConfig};
pub use sessions::CustomerSession;

use diesel_async::RunQueryDsl;

use crate::pool::{with_conn, Pool};

/// A handle on the database; cheap to clone (it is a pool).
#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

impl Store {
    /// Connects, creating the SQLite file and its folder if needed, and runs pending
    /// migrations (under an advisory lock on PostgreSQL, so instances may start together).
    pub async fn open(config: &StoreConfig) -> Result<Self, StoreError> {
        Ok(Self {
            pool: Pool::open(config).await?,
        })
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
