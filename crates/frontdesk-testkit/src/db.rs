//! A fresh database per test (or bench scenario): a temporary SQLite file, or a new PostgreSQL
//! database on the server at TEST_DATABASE_URL, dropped when the value is dropped.
//!
//! `TestDb::new` gives a PostgreSQL database already migrated: it is a copy (`CREATE DATABASE x
//! TEMPLATE t`) of a template database named after a digest of `migrations/postgres`, migrated
//! once per schema version by whichever test process gets there first, under an advisory lock
//! so parallel test binaries do not race. `TestDb::empty` gives one without tables (migration
//! tests, and tests whose server must run the migrations itself).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use rand::Rng;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// A backend runs unless FRONTDESK_TEST_BACKENDS is set and does not name it.
    pub fn enabled(self) -> bool {
        match std::env::var("FRONTDESK_TEST_BACKENDS") {
            Ok(list) => list.split(',').any(|b| b.trim() == self.name()),
            Err(_) => true,
        }
    }
}

/// What a new PostgreSQL database starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// No tables: whoever opens it first runs the migrations.
    Empty,
    /// A copy of the migrated template.
    Migrated,
}

pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    /// Holds the SQLite file (and is the server's working directory).
    pub dir: TempDir,
    pg: Option<PgDatabase>,
}

struct PgDatabase {
    admin_url: String,
    name: String,
}

impl TestDb {
    /// A fresh database on `backend`; on PostgreSQL already migrated (from the template).
    pub async fn new(backend: Backend) -> Self {
        Self::create(backend, &postgres_admin_url(), Schema::Migrated)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// A fresh database without tables, on either backend.
    pub async fn empty(backend: Backend) -> Self {
        Self::create(backend, &postgres_admin_url(), Schema::Empty)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// `admin_url`: a PostgreSQL database we may connect to and run CREATE DATABASE from.
    /// SQLite files always start empty (the store's migrations take milliseconds there).
    pub async fn create(backend: Backend, admin_url: &str, schema: Schema) -> Result<Self> {
        // In the system's temporary folder, on the same disk as everything else, so SQLite's
        // fsync costs what it costs.
        let dir = tempfile::Builder::new()
            .prefix("frontdesk-test-")
            .tempdir()
            .context("creating a temporary folder")?;
        match backend {
            Backend::Sqlite => {
                let path = dir.path().join("data").join("frontdesk.db");
                Ok(Self {
                    backend,
                    url: format!("sqlite://{}", path.display()),
                    dir,
                    pg: None,
                })
            }
            Backend::Postgres => {
                let name = format!("frontdesk_test_{:016x}", rand::rng().random::<u64>());
                let create = match schema {
                    Schema::Empty => format!("CREATE DATABASE {name}"),
                    Schema::Migrated => {
                        let template = template(admin_url).await?;
                        format!("CREATE DATABASE {name} TEMPLATE {template}")
                    }
                };
                pg_execute(admin_url, &create).await?;
                Ok(Self {
                    backend,
                    url: database_url(admin_url, &name)?,
                    dir,
                    pg: Some(PgDatabase {
                        admin_url: admin_url.to_owned(),
                        name,
                    }),
                })
            }
        }
    }

    pub fn sqlite_path(&self) -> Option<PathBuf> {
        (self.backend == Backend::Sqlite).then(|| self.dir.path().join("data").join("frontdesk.db"))
    }

    /// The PostgreSQL database's name.
    pub fn postgres_name(&self) -> Option<&str> {
        self.pg.as_ref().map(|pg| pg.name.as_str())
    }

    /// Opens the store on this database (running the migrations if they are not there yet).
    pub async fn store(&self) -> frontdesk_store::Store {
        frontdesk_store::Store::open(&frontdesk_store::StoreConfig::new(&self.url))
            .await
            .unwrap_or_else(|e| panic!("opening the store on {}: {e}", self.url))
    }

    /// A PostgreSQL session of the test's own on this database, for work that must not open a
    /// new connection each time (sampling the server's sessions).
    pub async fn postgres_client(&self) -> tokio_postgres::Client {
        assert_eq!(self.backend, Backend::Postgres, "a PostgreSQL-only helper");
        connect_or_panic(&self.url).await
    }

    /// Rows of a query as text, whichever the backend (for checking what is really stored).
    pub async fn query_text(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        self.try_query_text(sql)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Rows of a query as text; NULL is `None`.
    pub async fn try_query_text(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
        match self.backend {
            Backend::Postgres => {
                let client = pg_connect(&self.url).await?;
                let rows = client.simple_query(sql).await.context(sql.to_owned())?;
                Ok(rows
                    .into_iter()
                    .filter_map(|message| match message {
                        tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                            (0..row.len())
                                .map(|i| row.get(i).map(str::to_owned))
                                .collect(),
                        ),
                        _ => None,
                    })
                    .collect())
            }
            Backend::Sqlite => {
                let path = self.sqlite_path().unwrap_or_default();
                let mut command = std::process::Command::new("sqlite3");
                command
                    .arg("-readonly")
                    .arg("-cmd")
                    .arg(".timeout 30000")
                    .arg("-separator")
                    .arg("\u{1f}")
                    .arg("-nullvalue")
                    .arg("\u{1}NULL")
                    .arg(&path)
                    .arg(sql);
                let out = run(command).await?;
                Ok(String::from_utf8_lossy(&out)
                    .lines()
                    .map(|line| {
                        line.split('\u{1f}')
                            .map(|cell| (cell != "\u{1}NULL").then(|| cell.to_owned()))
                            .collect()
                    })
                    .collect())
            }
        }
    }

    /// Runs a statement directly (to age a token, say), outside the server.
    pub async fn execute(&self, sql: &str) {
        self.try_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Runs statements directly (seeding), outside the server.
    pub async fn try_execute(&self, sql: &str) -> Result<()> {
        match self.backend {
            Backend::Postgres => pg_execute(&self.url, sql).await,
            Backend::Sqlite => {
                let mut command = std::process::Command::new("sqlite3");
                command
                    .arg("-cmd")
                    .arg(".timeout 30000")
                    .arg(self.sqlite_path().unwrap_or_default())
                    .arg(sql);
                run(command).await.map(drop)
            }
        }
    }

    /// The first column of the first row of a query, as text.
    pub async fn scalar(&self, sql: &str) -> Result<String> {
        self.try_query_text(sql)
            .await?
            .into_iter()
            .next()
            .and_then(|row| row.into_iter().next().flatten())
            .ok_or_else(|| anyhow!("no value from {sql}"))
    }

    /// `SELECT COUNT(*) FROM {from}`: `from` may carry a WHERE clause.
    pub async fn try_count(&self, from: &str) -> Result<u64> {
        let text = self.scalar(&format!("SELECT COUNT(*) FROM {from}")).await?;
        text.parse()
            .with_context(|| format!("count of {from}: {text:?}"))
    }

    pub async fn count(&self, table: &str) -> i64 {
        self.try_count(table)
            .await
            .ok()
            .and_then(|n| i64::try_from(n).ok())
            .unwrap_or_else(|| panic!("count of {table}"))
    }

    /// Drops the PostgreSQL database now, telling why if it cannot (the SQLite folder goes
    /// with `self`). `Drop` does the same quietly.
    pub async fn remove(mut self) {
        if let Some(pg) = self.pg.take() {
            if let Err(error) = pg.drop_database().await {
                eprintln!("warning: could not drop {}: {error:#}", pg.name);
            }
        }
    }
}

impl PgDatabase {
    async fn drop_database(&self) -> Result<()> {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        pg_execute(&self.admin_url, &sql).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(pg) = self.pg.take() else {
            return;
        };
        // Drop runs outside async (or inside a runtime that must not block): a short-lived
        // runtime on its own thread does the cleanup.
        let _ = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = runtime.block_on(pg.drop_database());
            }
        })
        .join();
    }
}

/// The URL of database `name` on the server of `admin_url`.
fn database_url(admin_url: &str, name: &str) -> Result<String> {
    let base = admin_url
        .rsplit_once('/')
        .map(|(base, _)| base)
        .ok_or_else(|| anyhow!("PostgreSQL URL without a database: {admin_url}"))?;
    Ok(format!("{base}/{name}"))
}

/// An advisory lock id all test processes agree on, held while a template is made.
const TEMPLATE_LOCK_ID: i64 = 0x0f40_7de5_7e57;

/// The folder of the PostgreSQL migrations, as this crate was built.
fn migrations_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations/postgres")
}

/// A digest of every file under `dir` (relative path and contents, in path order).
fn digest_of(dir: &Path) -> Result<String> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).with_context(|| format!("{folder:?}"))? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut hasher = Sha256::new();
    for file in files {
        let relative = file.strip_prefix(dir).unwrap_or(&file);
        hasher.update(relative.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(std::fs::read(&file).with_context(|| format!("{file:?}"))?);
        hasher.update([0]);
    }
    Ok(hex::encode(&hasher.finalize()[..8]))
}

/// The name of the migrated template for the current migrations, made if it does not exist.
/// Each process asks the server once; which process makes it is decided by the lock.
async fn template(admin_url: &str) -> Result<String> {
    static TEMPLATE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    TEMPLATE
        .get_or_try_init(|| async {
            let name = format!("frontdesk_template_{}", digest_of(&migrations_dir())?);
            make_template(admin_url, &name).await?;
            Ok::<_, anyhow::Error>(name)
        })
        .await
        .cloned()
}

async fn make_template(admin_url: &str, name: &str) -> Result<()> {
    let admin = pg_connect(admin_url).await?;
    // A session lock: released by the unlock below, or by the session ending if we die.
    admin
        .batch_execute(&format!("SELECT pg_advisory_lock({TEMPLATE_LOCK_ID})"))
        .await
        .context("taking the template lock")?;
    let made = async {
        let exists = admin
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await?
            .is_some();
        if exists {
            return Ok(());
        }
        // Built under another name and renamed when complete, so a process killed half-way
        // leaves no half-migrated template behind under the real name.
        let building = format!("{name}_building");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
            .await?;
        admin
            .batch_execute(&format!("CREATE DATABASE {building}"))
            .await?;
        let url = database_url(admin_url, &building)?;
        let store = frontdesk_store::Store::open(&frontdesk_store::StoreConfig::new(&url))
            .await
            .map_err(|e| anyhow!("migrating the template {building}: {e}"))?;
        drop(store);
        // The store's pool and writer close their sessions in the background; a template must
        // have none (CREATE DATABASE ... TEMPLATE refuses while anyone is connected).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let row = admin
                .query_one(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                     WHERE datname = $1 AND pid <> pg_backend_pid()",
                    &[&building],
                )
                .await?;
            if row.get::<_, i64>(0) == 0 {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                bail!("sessions on {building} did not end");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Like template0: nobody may connect to it, so copying it never meets a session.
        admin
            .batch_execute(&format!(
                "ALTER DATABASE {building} RENAME TO {name}; \
                 ALTER DATABASE {name} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"
            ))
            .await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    let unlocked = admin
        .batch_execute(&format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK_ID})"))
        .await;
    made.with_context(|| format!("making the template database {name}"))?;
    unlocked.context("releasing the template lock")?;
    Ok(())
}

/// Runs a command off the runtime's threads; its stdout, or its stderr as the error.
async fn run(mut command: std::process::Command) -> Result<Vec<u8>> {
    let output = tokio::task::spawn_blocking(move || command.output())
        .await?
        .context("running sqlite3 (apt-get install sqlite3)")?;
    if !output.status.success() {
        bail!("sqlite3: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(output.stdout)
}

pub async fn pg_connect(url: &str) -> Result<tokio_postgres::Client> {
    let connecting = tokio_postgres::connect(url, tokio_postgres::NoTls);
    let (client, connection) = tokio::time::timeout(Duration::from_secs(10), connecting)
        .await
        .map_err(|_| anyhow!("PostgreSQL at {url} did not answer within 10 s"))?
        .with_context(|| {
            format!(
                "PostgreSQL is not reachable at {url}. Start it, point TEST_DATABASE_URL at \
                 one, or set FRONTDESK_TEST_BACKENDS=sqlite to test SQLite only"
            )
        })?;
    tokio::spawn(connection);
    Ok(client)
}

async fn connect_or_panic(url: &str) -> tokio_postgres::Client {
    pg_connect(url).await.unwrap_or_else(|e| panic!("{e:#}"))
}

async fn pg_execute(url: &str, sql: &str) -> Result<()> {
    let client = pg_connect(url).await?;
    client
        .batch_execute(sql)
        .await
        .with_context(|| sql.to_owned())?;
    Ok(())
}

/// Whether the PostgreSQL server answers (the bench skips its PostgreSQL runs otherwise).
pub async fn postgres_reachable(admin_url: &str) -> Result<()> {
    let client = pg_connect(admin_url).await?;
    client.simple_query("SELECT 1").await?;
    Ok(())
}
