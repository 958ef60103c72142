//! A fresh, empty database per test: a temporary SQLite file, or a new PostgreSQL database
//! created on the server at TEST_DATABASE_URL and dropped when the test ends.

use std::path::PathBuf;

use rand::Rng;
use tempfile::TempDir;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// PostgreSQL runs unless FRONTDESK_TEST_BACKENDS names only sqlite.
    pub fn enabled(self) -> bool {
        match std::env::var("FRONTDESK_TEST_BACKENDS") {
            Ok(list) => list.split(',').any(|b| {
                b.trim()
                    == match self {
                        Backend::Sqlite => "sqlite",
                        Backend::Postgres => "postgres",
                    }
            }),
            Err(_) => true,
        }
    }
}

pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    /// Holds the SQLite file (and is the server's working directory).
    pub dir: TempDir,
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        match backend {
            Backend::Sqlite => {
                let path = dir.path().join("data").join("frontdesk.db");
                Self {
                    backend,
                    url: format!("sqlite://{}", path.display()),
                    dir,
                    pg_name: None,
                }
            }
            Backend::Postgres => {
                let name = format!("frontdesk_test_{:016x}", rand::rng().random::<u64>());
                admin_execute(&format!("CREATE DATABASE {name}")).await;
                let admin = postgres_admin_url();
                let base = admin
                    .rsplit_once('/')
                    .map(|(base, _)| base.to_owned())
                    .unwrap_or(admin);
                Self {
                    backend,
                    url: format!("{base}/{name}"),
                    dir,
                    pg_name: Some(name),
                }
            }
        }
    }

    pub fn sqlite_path(&self) -> Option<PathBuf> {
        (self.backend == Backend::Sqlite).then(|| self.dir.path().join("data").join("frontdesk.db"))
    }

    /// A PostgreSQL session of the test's own on this database, for work that must not open a
    /// new connection each time (sampling the server's sessions).
    pub async fn postgres_client(&self) -> tokio_postgres::Client {
        assert_eq!(self.backend, Backend::Postgres, "a PostgreSQL-only helper");
        connect(&self.url).await
    }

    /// Rows of a query as text, whichever the backend (for checking what is really stored).
    pub async fn query_text(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        match self.backend {
            Backend::Postgres => {
                let client = connect(&self.url).await;
                let rows = client
                    .simple_query(sql)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
                rows.into_iter()
                    .filter_map(|message| match message {
                        tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                            (0..row.len())
                                .map(|i| row.get(i).map(str::to_owned))
                                .collect(),
                        ),
                        _ => None,
                    })
                    .collect()
            }
            Backend::Sqlite => {
                let path = self.sqlite_path().unwrap_or_default();
                let output = std::process::Command::new("sqlite3")
                    .arg("-readonly")
                    .arg("-separator")
                    .arg("\u{1f}")
                    .arg("-nullvalue")
                    .arg("\u{1}NULL")
                    .arg(&path)
                    .arg(sql)
                    .output();
                match output {
                    Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
                        .lines()
                        .map(|line| {
                            line.split('\u{1f}')
                                .map(|cell| (cell != "\u{1}NULL").then(|| cell.to_owned()))
                                .collect()
                        })
                        .collect(),
                    Ok(out) => panic!("sqlite3 {sql}: {}", String::from_utf8_lossy(&out.stderr)),
                    Err(e) => {
                        panic!("sqlite3 is needed by the tests (apt-get install sqlite3): {e}")
                    }
                }
            }
        }
    }

    /// Runs a statement directly (to age a token, say), outside the server.
    pub async fn execute(&self, sql: &str) {
        match self.backend {
            Backend::Postgres => {
                let client = connect(&self.url).await;
                client
                    .batch_execute(sql)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
            Backend::Sqlite => {
                let path = self.sqlite_path().unwrap_or_default();
                let status = std::process::Command::new("sqlite3")
                    .arg("-cmd")
                    .arg(".timeout 5000")
                    .arg(&path)
                    .arg(sql)
                    .status()
                    .unwrap_or_else(|e| panic!("sqlite3: {e}"));
                assert!(status.success(), "{sql}");
            }
        }
    }

    pub async fn count(&self, table: &str) -> i64 {
        let rows = self
            .query_text(&format!("SELECT COUNT(*) FROM {table}"))
            .await;
        rows.first()
            .and_then(|row| row.first().cloned().flatten())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("count of {table}"))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        // Drop runs outside async; a short-lived runtime on its own thread does the cleanup.
        let _ = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                runtime.block_on(admin_execute(&format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )));
            }
        })
        .join();
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {url}: {e}. Start it, point TEST_DATABASE_URL \
                 at one, or set FRONTDESK_TEST_BACKENDS=sqlite to test SQLite only."
            )
        });
    tokio::spawn(connection);
    client
}

async fn admin_execute(sql: &str) {
    let client = connect(&postgres_admin_url()).await;
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}
