//! The runtime under SQLite connections, and the pool manager that knows when a connection is
//! still busy with a cancelled call.
//!
//! diesel-async's own tokio runtime for `SyncConnectionWrapper` waits for a cancelled query in
//! `Drop` with `block_in_place`, which panics on a current-thread runtime, and every actix-web
//! worker is one: a client that disconnects mid-query (or a failing extractor that cancels a
//! sibling) would kill the worker. This one lets the cancelled call finish in the background
//! instead. Calls on one connection stay ordered by the wrapper's mutex, and a connection left
//! inside a transaction is discarded by the pool on return, which rolls the transaction back.
//!
//! A cancelled call still running holds the connection, so the pool must not hand it out
//! again: diesel-async's own recycle check panics on a connection in use ("Cannot access
//! shared transaction state"), which a client could trigger at will by disconnecting. So each
//! connection counts the blocking calls running on it, and `SqliteManager` waits for that
//! count to reach zero before handing the connection out again (a cancelled call ends within
//! the busy timeout), or discards the connection if it does not (it closes once its last call
//! ends). Waiting beats opening another connection: the cancelled call may hold the write lock
//! its successor needs.

use std::error::Error;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::{Connection, SqliteConnection};
use diesel_async::pooled_connection::{PoolError, PoolableConnection};
use diesel_async::sync_connection_wrapper::{SpawnBlocking, SyncConnectionWrapper};
use diesel_async::SimpleAsyncConnection;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, TryFutureExt};
use tokio::runtime::Handle;

/// How long a connection whose cancelled call still runs is waited for before it is dropped.
const BUSY_WAIT: Duration = Duration::from_secs(5);

pub type SqliteConn = SyncConnectionWrapper<SqliteConnection, DetachOnCancel>;

pub struct DetachOnCancel {
    handle: Handle,
    /// Blocking calls running on this connection, the cancelled ones included.
    running: Arc<AtomicUsize>,
}

impl DetachOnCancel {
    fn tracking(running: Arc<AtomicUsize>) -> Self {
        Self {
            handle: Handle::current(),
            running,
        }
    }
}

impl SpawnBlocking for DetachOnCancel {
    fn spawn_blocking<'a, R>(
        &mut self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> BoxFuture<'a, Result<R, Box<dyn Error + Send + Sync + 'static>>>
    where
        R: Send + 'static,
    {
        let running = Arc::clone(&self.running);
        running.fetch_add(1, Ordering::AcqRel);
        // Dropping a JoinHandle detaches the task; it does not cancel or wait for it. The
        // count drops once `task` has returned, and with it its hold on the connection.
        self.handle
            .spawn_blocking(move || {
                let outcome = task();
                running.fetch_sub(1, Ordering::AcqRel);
                outcome
            })
            .map_err(Box::from)
            .boxed()
    }

    fn get_runtime() -> Self {
        // Connections are only ever established from inside the server's or a test's runtime.
        Self::tracking(Arc::new(AtomicUsize::new(0)))
    }
}

/// A pooled SQLite connection and the count of calls running on it.
pub struct SqliteSlot {
    pub conn: SqliteConn,
    running: Arc<AtomicUsize>,
}

/// Opens SQLite connections with their pragmas, and takes back only idle ones.
pub struct SqliteManager {
    pub path: String,
    pub pragmas: String,
}

impl deadpool::managed::Manager for SqliteManager {
    type Type = SqliteSlot;
    type Error = PoolError;

    async fn create(&self) -> Result<SqliteSlot, PoolError> {
        let path = self.path.clone();
        let raw = tokio::task::spawn_blocking(move || SqliteConnection::establish(&path))
            .await
            .map_err(|e| {
                PoolError::ConnectionError(diesel::ConnectionError::BadConnection(e.to_string()))
            })?
            .map_err(PoolError::ConnectionError)?;
        let running = Arc::new(AtomicUsize::new(0));
        let mut conn = SyncConnectionWrapper::with_runtime(
            raw,
            DetachOnCancel::tracking(Arc::clone(&running)),
        );
        conn.batch_execute(&self.pragmas).await.map_err(|e| {
            PoolError::ConnectionError(diesel::ConnectionError::CouldntSetupConfiguration(e))
        })?;
        Ok(SqliteSlot { conn, running })
    }

    async fn recycle(
        &self,
        slot: &mut SqliteSlot,
        _: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<PoolError> {
        let since = Instant::now();
        while slot.running.load(Ordering::Acquire) > 0 {
            if since.elapsed() > BUSY_WAIT {
                return Err(deadpool::managed::RecycleError::Message(
                    "a cancelled call still runs on it".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if std::thread::panicking() || slot.conn.is_broken() {
            return Err(deadpool::managed::RecycleError::Message(
                "broken connection".into(),
            ));
        }
        Ok(())
    }
}
