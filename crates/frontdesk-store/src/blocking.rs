//! The runtime under SQLite connections.
//!
//! diesel-async's own tokio runtime for `SyncConnectionWrapper` waits for a cancelled query in
//! `Drop` with `block_in_place`, which panics on a current-thread runtime, and every actix-web
//! worker is one: a client that disconnects mid-query (or a failing extractor that cancels a
//! sibling) would kill the worker. This one lets the cancelled call finish in the background
//! instead. Calls on one connection stay ordered by the wrapper's mutex, and a connection left
//! inside a transaction is discarded by the pool on return, which rolls the transaction back.

use std::error::Error;

use diesel_async::sync_connection_wrapper::SpawnBlocking;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, TryFutureExt};
use tokio::runtime::Handle;

pub struct DetachOnCancel(Handle);

impl SpawnBlocking for DetachOnCancel {
    fn spawn_blocking<'a, R>(
        &mut self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> BoxFuture<'a, Result<R, Box<dyn Error + Send + Sync + 'static>>>
    where
        R: Send + 'static,
    {
        // Dropping a JoinHandle detaches the task; it does not cancel or wait for it.
        self.0.spawn_blocking(task).map_err(Box::from).boxed()
    }

    fn get_runtime() -> Self {
        // Connections are only ever established from inside the server's or a test's runtime.
        Self(Handle::current())
    }
}
