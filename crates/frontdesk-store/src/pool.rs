//! The two backends behind one pool type, and the macro that runs one query body on either.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use diesel::{Connection, RunQueryDsl, SqliteConnection};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::deadpool::{Object, Pool as DeadPool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use futures_util::FutureExt;
use tokio::sync::{Mutex, OwnedMutexGuard};

pub use crate::blocking::SqliteConn;
use crate::blocking::SqliteManager;
use crate::error::StoreError;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// Every SQLite connection: WAL so readers never wait for the writer, a busy timeout (see
/// `sqlite_pragmas`) so a writer waits a while for another process's write lock instead of
/// failing at once, and `synchronous = FULL` so a commit is on disk (not only in the OS cache)
/// before we acknowledge a message.
const SQLITE_PRAGMAS: &str =
    "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;";

/// The migrations' busy timeout: another instance may be migrating the same file.
const MIGRATION_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// A lock id that all instances agree on, so only one runs migrations at a time.
const MIGRATION_LOCK_ID: i64 = 0x0f40_7de5_0001;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where the database is and how many connections to hold.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `sqlite://path/to/file.db` (relative paths are from the working directory) or
    /// `postgres://user@host:port/db`.
    pub database_url: String,
    /// Pool size; SQLite serialises writers anyway, so it mostly serves readers there.
    pub max_connections: usize,
    /// How long a database may keep one caller waiting.
    pub timeouts: Timeouts,
    /// Set when the automated responder is on: a customer's message in a waiting
    /// conversation records a reply job in its own commit, claimed by this instance for this
    /// long (the responder renews the lease while it works).
    pub reply_lease: Option<Duration>,
}

/// Bounds on waiting for the database, so one stuck row or a locked file costs its own
/// callers a bounded wait and a 503, not everyone an unbounded one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// PostgreSQL `statement_timeout` on every pooled connection.
    pub statement: Duration,
    /// PostgreSQL `lock_timeout` on every pooled connection: a row another session holds is
    /// given up on after this (keep it below `statement`, so a lock wait reads as one).
    pub lock: Duration,
    /// SQLite `busy_timeout`: how long a write waits for another process's write lock.
    pub sqlite_busy: Duration,
    /// How long a message append may take in all, queueing for the writer included.
    pub append: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            statement: Duration::from_secs(5),
            lock: Duration::from_secs(1),
            sqlite_busy: Duration::from_secs(2),
            append: Duration::from_secs(10),
        }
    }
}

impl StoreConfig {
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            max_connections: 16,
            timeouts: Timeouts::default(),
            reply_lease: None,
        }
    }
}

#[derive(Clone)]
pub(crate) enum Pool {
    /// With the timeouts its connections are opened with, for `dedicated` pools.
    Pg(DeadPool<AsyncPgConnection>, Timeouts),
    /// With the turn that this process's writers take (see `Pool::write`) and the longest
    /// wait for it.
    Sqlite(
        deadpool::managed::Pool<SqliteManager>,
        Arc<Mutex<()>>,
        Duration,
    ),
}

/// Held for the whole of a write on SQLite; nothing on PostgreSQL, whose row locks suffice.
pub(crate) type WriteTurn = Option<OwnedMutexGuard<()>>;

// Checked out for one call on the stack; boxing would add an allocation per query.
#[allow(clippy::large_enum_variant)]
pub(crate) enum DbConn {
    Pg(Object<AsyncPgConnection>),
    Sqlite(deadpool::managed::Object<SqliteManager>),
}

/// Runs `$body` with `$conn` bound to the concrete connection of whichever backend is in use.
/// The body is written once and compiled once per backend against the portable schema.
macro_rules! with_conn {
    ($db:expr, |$conn:ident| $body:expr) => {{
        match &mut $db {
            $crate::pool::DbConn::Pg(object) => {
                let $conn: &mut ::diesel_async::AsyncPgConnection = &mut *object;
                $body
            }
            $crate::pool::DbConn::Sqlite(object) => {
                let $conn: &mut $crate::pool::SqliteConn = &mut object.conn;
                $body
            }
        }
    }};
}
pub(crate) use with_conn;

impl Pool {
    pub(crate) async fn open(config: &StoreConfig) -> Result<Self, StoreError> {
        let url = config.database_url.as_str();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            migrate_postgres(url.to_owned()).await?;
            Ok(Pool::Pg(
                pg_pool(url, config.max_connections, config.timeouts)?,
                config.timeouts,
            ))
        } else if let Some(path) = sqlite_path(url) {
            let path = path.to_string_lossy().into_owned();
            migrate_sqlite(path.clone()).await?;
            let manager = SqliteManager {
                path,
                pragmas: sqlite_pragmas(config.timeouts.sqlite_busy),
            };
            let pool = deadpool::managed::Pool::builder(manager)
                .max_size(config.max_connections)
                .wait_timeout(Some(Duration::from_secs(10)))
                .runtime(deadpool::Runtime::Tokio1)
                .build()
                .map_err(|e| StoreError::Config(e.to_string()))?;
            Ok(Pool::Sqlite(
                pool,
                Arc::new(Mutex::new(())),
                config.timeouts.statement,
            ))
        } else {
            Err(StoreError::Config(format!(
                "unsupported database URL `{url}`: use sqlite://path/to/file.db or postgres://…"
            )))
        }
    }

    /// A pool of `size` connections apart from this one, for one thread or one long-lived task.
    ///
    /// A PostgreSQL connection's socket is driven by a task spawned on the runtime that opened
    /// it. A pool shared by several runtimes (actix runs one per worker thread) hands a caller
    /// connections that another, possibly busy, thread drives, so each round trip waits for
    /// that thread and crosses threads twice. A pool of one's own opens its connections on
    /// first use, from its user. SQLite connections work on blocking threads whoever asks, and
    /// its writers share the turn, so there this is the same pool.
    pub(crate) fn dedicated(&self, url: &str, size: usize) -> Result<Self, StoreError> {
        match self {
            Pool::Pg(_, timeouts) => Ok(Pool::Pg(pg_pool(url, size.max(1), *timeouts)?, *timeouts)),
            Pool::Sqlite(..) => Ok(self.clone()),
        }
    }

    pub(crate) async fn get(&self) -> Result<DbConn, StoreError> {
        Ok(match self {
            Pool::Pg(pool, _) => DbConn::Pg(pool.get().await?),
            Pool::Sqlite(pool, ..) => DbConn::Sqlite(pool.get().await?),
        })
    }

    /// A connection for a transaction that writes, with the turn to keep until it is done.
    ///
    /// SQLite has one writer at a time. A writer that finds the database locked sleeps in
    /// SQLite's busy handler, in steps of up to 100 ms however soon the lock frees: 32
    /// concurrent conversation creations ran ~6x slower than 4. So this process's writers
    /// queue here first (in order, woken as soon as the turn frees) and never meet the lock;
    /// another process on the same file still gets the busy timeout. While that process holds
    /// the lock, each writer here would wait out the busy timeout in turn, so the wait for the
    /// turn is bounded too: beyond it the write fails as busy (503), not after minutes.
    pub(crate) async fn write(&self) -> Result<(WriteTurn, DbConn), StoreError> {
        let turn = match self {
            Pool::Pg(..) => None,
            Pool::Sqlite(_, turn, wait) => Some(
                tokio::time::timeout(*wait, Arc::clone(turn).lock_owned())
                    .await
                    .map_err(|_| {
                        StoreError::Busy(
                            "timed out waiting for this instance's other writers".into(),
                        )
                    })?,
            ),
        };
        Ok((turn, self.get().await?))
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Pool::Pg(..) => Backend::Postgres,
            Pool::Sqlite(..) => Backend::Sqlite,
        }
    }
}

fn pg_pool(
    url: &str,
    size: usize,
    timeouts: Timeouts,
) -> Result<DeadPool<AsyncPgConnection>, StoreError> {
    let mut manager_config = fast_recycling::<AsyncPgConnection>();
    // Session settings, so every statement of every pooled connection is bounded, whoever
    // holds a lock it needs.
    let setup = format!(
        "SET statement_timeout = {}; SET lock_timeout = {}",
        timeouts.statement.as_millis().max(1),
        timeouts.lock.as_millis().max(1)
    );
    manager_config.custom_setup = Box::new(move |url| {
        let url = url.to_owned();
        let setup = setup.clone();
        async move {
            let mut conn = AsyncPgConnection::establish(&url).await?;
            conn.batch_execute(&setup)
                .await
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        }
        .boxed()
    });
    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, manager_config);
    DeadPool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(10)))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| StoreError::Config(e.to_string()))
}

fn fast_recycling<C: AsyncConnection + 'static>() -> ManagerConfig<C> {
    // A broken connection fails its next query and is then dropped by the pool; checking every
    // checkout with a round trip would double the latency of short requests.
    let mut config = ManagerConfig::default();
    config.recycling_method = RecyclingMethod::Fast;
    config
}

fn sqlite_pragmas(busy_timeout: Duration) -> String {
    // The busy timeout first: `journal_mode` needs a lock another connection may hold.
    format!(
        "PRAGMA busy_timeout = {}; {SQLITE_PRAGMAS}",
        busy_timeout.as_millis().max(1)
    )
}

/// `sqlite://data/x.db`, `sqlite:///abs/x.db` or `sqlite:data/x.db` -> the file path.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    (!rest.is_empty() && !rest.contains(":memory:")).then(|| PathBuf::from(rest))
}

async fn migrate_sqlite(path: String) -> Result<(), StoreError> {
    if let Some(folder) = Path::new(&path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(folder)
            .map_err(|e| StoreError::Config(format!("cannot create {}: {e}", folder.display())))?;
    }
    blocking(move || {
        let mut conn = SqliteConnection::establish(&path)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        diesel::connection::SimpleConnection::batch_execute(
            &mut conn,
            &sqlite_pragmas(MIGRATION_BUSY_TIMEOUT),
        )?;
        conn.run_pending_migrations(SQLITE_MIGRATIONS)
            .map_err(|e| StoreError::Migration(e.to_string()))?;
        Ok(())
    })
    .await
}

async fn migrate_postgres(url: String) -> Result<(), StoreError> {
    blocking(move || {
        let mut conn = <AsyncConnectionWrapper<AsyncPgConnection> as Connection>::establish(&url)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        // Instances starting together wait here instead of racing through the same DDL.
        diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_ID})"))
            .execute(&mut conn)?;
        let outcome = conn
            .run_pending_migrations(POSTGRES_MIGRATIONS)
            .map(|_| ())
            .map_err(|e| StoreError::Migration(e.to_string()));
        diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_ID})"))
            .execute(&mut conn)?;
        outcome
    })
    .await
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Migration(format!("migration task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use diesel::sql_types::{Integer, Text};
    use frontdesk_domain::{CustomerId, MessageDraft, PartnerRegistration, Secret, Sender, Viewer};

    use super::*;
    use crate::Store;

    /// The settings a SQLite connection runs with, as SQLite reports them.
    #[derive(diesel::QueryableByName, Debug, PartialEq, Eq)]
    struct Settings {
        #[diesel(sql_type = Integer)]
        synchronous: i32,
        #[diesel(sql_type = Text)]
        journal_mode: String,
        #[diesel(sql_type = Integer)]
        foreign_keys: i32,
        #[diesel(sql_type = Integer)]
        busy_timeout: i32,
    }

    async fn settings(db: &mut DbConn) -> Settings {
        let DbConn::Sqlite(conn) = db else {
            panic!("a SQLite connection expected");
        };
        let query = diesel::sql_query(
            "SELECT (SELECT synchronous FROM pragma_synchronous) AS synchronous, \
                    (SELECT journal_mode FROM pragma_journal_mode) AS journal_mode, \
                    (SELECT foreign_keys FROM pragma_foreign_keys) AS foreign_keys, \
                    (SELECT timeout FROM pragma_busy_timeout) AS busy_timeout",
        );
        diesel_async::RunQueryDsl::get_result(query, &mut conn.conn)
            .await
            .unwrap_or_else(|e| panic!("pragmas: {e}"))
    }

    /// docs/architecture.md's power-loss claim rests on `synchronous = FULL` (2) on every
    /// connection that commits, not only on the first one the pool opens: every connection the
    /// pool can hold is checked out at once (after the group-commit writer has committed through
    /// one), and the pools the writer and the server's workers are given.
    #[tokio::test]
    async fn every_pooled_sqlite_connection_syncs_fully() {
        const SIZE: usize = 4;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let url = format!("sqlite://{}", dir.path().join("f.db").display());
        let mut config = StoreConfig::new(&url);
        config.max_connections = SIZE;
        let store = Store::open(&config)
            .await
            .unwrap_or_else(|e| panic!("open: {e}"));
        // A message through the writer first, so its connection is one of those checked.
        let partner = store
            .create_partner(
                &PartnerRegistration {
                    name: "Acme".into(),
                    domain: "acme.example.com".into(),
                },
                &Secret::presented("fdk_test").hash(),
            )
            .await
            .unwrap_or_else(|e| panic!("partner: {e}"));
        let ann = CustomerId::parse("ann").unwrap_or_else(|e| panic!("{e}"));
        let conversation = store
            .create_conversation(partner.id, &ann)
            .await
            .unwrap_or_else(|e| panic!("conversation: {e}"));
        let draft = MessageDraft::new(
            conversation.id,
            Sender::Customer(ann),
            "hello".into(),
            None,
            None,
        )
        .unwrap_or_else(|e| panic!("draft: {e}"));
        store
            .append_message(&Viewer::Partner(partner.id), &draft)
            .await
            .unwrap_or_else(|e| panic!("append: {e}"));

        let expected = Settings {
            synchronous: 2,
            journal_mode: "wal".into(),
            foreign_keys: 1,
            busy_timeout: 2000,
        };
        let mut held = Vec::new();
        for n in 0..SIZE {
            let mut db = store
                .pool
                .get()
                .await
                .unwrap_or_else(|e| panic!("get: {e}"));
            assert_eq!(settings(&mut db).await, expected, "pooled connection {n}");
            held.push(db);
        }
        let Pool::Sqlite(pool, ..) = &store.pool else {
            panic!("a SQLite pool expected");
        };
        // All of them at once: the pool at its full size, each connection a different one.
        assert_eq!(pool.status().size, SIZE);
        drop(held);
        // On SQLite the writer and the workers share this pool today; checking them keeps the
        // claim true if they are ever given pools of their own.
        for (what, other) in [
            ("the writer's", store.pool.dedicated(&url, 1)),
            ("a worker's", store.pool.dedicated(&url, SIZE)),
        ] {
            let other = other.unwrap_or_else(|e| panic!("{what} pool: {e}"));
            let mut db = other.get().await.unwrap_or_else(|e| panic!("get: {e}"));
            assert_eq!(settings(&mut db).await, expected, "{what} pool");
        }
    }

    #[test]
    fn sqlite_urls() {
        assert_eq!(
            sqlite_path("sqlite://data/frontdesk.db"),
            Some(PathBuf::from("data/frontdesk.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:///tmp/f.db"),
            Some(PathBuf::from("/tmp/f.db"))
        );
        assert_eq!(sqlite_path("sqlite:f.db"), Some(PathBuf::from("f.db")));
        assert_eq!(sqlite_path("sqlite://:memory:"), None);
        assert_eq!(sqlite_path("mysql://x"), None);
    }
}
