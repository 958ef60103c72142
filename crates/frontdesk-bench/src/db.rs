//! A fresh, empty database per scenario: a SQLite file in a temporary folder, or a new
//! PostgreSQL database (`bench_<random>`) dropped afterwards. Also direct SQL for seeding and
//! for checking what was really stored.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use rand::Rng;
use tempfile::TempDir;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

pub struct FreshDb {
    pub backend: Backend,
    pub url: String,
    /// Holds the SQLite file; also the server's working directory.
    pub dir: TempDir,
    pg: Option<PgDatabase>,
}

struct PgDatabase {
    admin_url: String,
    name: String,
}

impl FreshDb {
    /// `admin_url`: a PostgreSQL database we may connect to and run CREATE DATABASE from.
    pub async fn create(backend: Backend, admin_url: &str) -> Result<Self> {
        // On the same disk as everything else, so SQLite's fsync costs what it costs.
        let dir = tempfile::Builder::new()
            .prefix("frontdesk-bench-")
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
                let name = format!("bench_{:016x}", rand::rng().random::<u64>());
                pg_execute(admin_url, &format!("CREATE DATABASE {name}")).await?;
                let base = admin_url
                    .rsplit_once('/')
                    .map(|(base, _)| base.to_owned())
                    .ok_or_else(|| anyhow!("PostgreSQL URL without a database: {admin_url}"))?;
                Ok(Self {
                    backend,
                    url: format!("{base}/{name}"),
                    dir,
                    pg: Some(PgDatabase {
                        admin_url: admin_url.to_owned(),
                        name,
                    }),
                })
            }
        }
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.dir.path().join("data").join("frontdesk.db")
    }

    /// Runs statements directly, outside the server (seeding).
    pub async fn execute(&self, sql: &str) -> Result<()> {
        match self.backend {
            Backend::Postgres => pg_execute(&self.url, sql).await,
            Backend::Sqlite => sqlite3(self.sqlite_path(), sql, false).await.map(drop),
        }
    }

    /// The first column of the first row of a query, as text.
    pub async fn scalar(&self, sql: &str) -> Result<String> {
        match self.backend {
            Backend::Postgres => {
                let client = pg_connect(&self.url).await?;
                let rows = client.simple_query(sql).await.context(sql.to_owned())?;
                rows.into_iter()
                    .find_map(|message| match message {
                        tokio_postgres::SimpleQueryMessage::Row(row) => {
                            row.get(0).map(str::to_owned)
                        }
                        _ => None,
                    })
                    .ok_or_else(|| anyhow!("no row from {sql}"))
            }
            Backend::Sqlite => sqlite3(self.sqlite_path(), sql, true).await,
        }
    }

    /// `SELECT COUNT(*) FROM {from}`: `from` may carry a WHERE clause.
    pub async fn count(&self, from: &str) -> Result<u64> {
        let table = from;
        let text = self
            .scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .await?;
        text.parse()
            .with_context(|| format!("count of {table}: {text:?}"))
    }

    /// Drops the PostgreSQL database (the SQLite folder goes with `self`).
    pub async fn remove(mut self) {
        if let Some(pg) = self.pg.take() {
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", pg.name);
            if let Err(error) = pg_execute(&pg.admin_url, &sql).await {
                eprintln!("warning: could not drop {}: {error:#}", pg.name);
            }
        }
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        // An early return skipped `remove`: drop the database on a short-lived runtime of its
        // own thread (we may be inside the async runtime here).
        let Some(pg) = self.pg.take() else {
            return;
        };
        let _ = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", pg.name);
                let _ = runtime.block_on(pg_execute(&pg.admin_url, &sql));
            }
        })
        .join();
    }
}

async fn pg_connect(url: &str) -> Result<tokio_postgres::Client> {
    let connecting = tokio_postgres::connect(url, tokio_postgres::NoTls);
    let (client, connection) = tokio::time::timeout(Duration::from_secs(5), connecting)
        .await
        .map_err(|_| anyhow!("PostgreSQL at {url} did not answer within 5 s"))?
        .with_context(|| format!("connecting to PostgreSQL at {url}"))?;
    tokio::spawn(connection);
    Ok(client)
}

async fn pg_execute(url: &str, sql: &str) -> Result<()> {
    let client = pg_connect(url).await?;
    client
        .batch_execute(sql)
        .await
        .with_context(|| sql.to_owned())?;
    Ok(())
}

/// Whether the PostgreSQL server answers (the PostgreSQL runs are skipped otherwise).
pub async fn postgres_reachable(admin_url: &str) -> Result<()> {
    let client = pg_connect(admin_url).await?;
    client.simple_query("SELECT 1").await?;
    Ok(())
}

/// Runs `sql` with the sqlite3 CLI on the database file (outside the server); its output,
/// trimmed.
async fn sqlite3(path: impl AsRef<std::ffi::OsStr>, sql: &str, read_only: bool) -> Result<String> {
    let mut command = std::process::Command::new("sqlite3");
    if read_only {
        command.arg("-readonly");
    }
    command
        .arg("-cmd")
        .arg(".timeout 30000")
        .arg(path.as_ref())
        .arg(sql);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await?
        .context("running sqlite3 (apt-get install sqlite3)")?;
    if !output.status.success() {
        bail!("sqlite3: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
