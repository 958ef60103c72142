//! Item of issue 12: a full disk. Writes that fail for lack of space get 503 `storage_full`
//! (not 500), and `/healthz` answers 503 from then until a write succeeds again.
//!
//! The disk is really full here: the database's files are on a small tmpfs the test mounts
//! (so the kernel answers ENOSPC exactly as a full disk does), SQLite's whole data folder or the
//! PostgreSQL messages table (moved to a tablespace on it). A ballast file on the same tmpfs is
//! deleted to free space again. Mounting needs root (CAP_SYS_ADMIN); without it the test says
//! so and passes without running, as it cannot make a disk full for real.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rand::distr::{Alphanumeric, SampleString};
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{error_code, Backend, Server, TestDb};

const GUARD: Duration = Duration::from_secs(30);

/// A tmpfs of `size` mounted at a path, unmounted on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(at).unwrap_or_else(|e| panic!("mkdir {}: {e}", at.display()));
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!("SKIPPED: cannot mount a tmpfs here (needs root), so no real full disk");
            return None;
        }
        Some(Self(at.to_owned()))
    }

    /// Takes `bytes` of the disk, to give back later.
    fn ballast(&self, bytes: usize) -> PathBuf {
        let path = self.0.join("ballast");
        std::fs::write(&path, vec![1u8; bytes]).unwrap_or_else(|e| panic!("ballast: {e}"));
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Posts messages of incompressible text until one is refused; that answer.
async fn fill(server: &Server, key: &str, conversation: i64) -> (StatusCode, Option<u64>, Value) {
    for _ in 0..2_000 {
        let content = Alphanumeric.sample_string(&mut rand::rng(), 9_000);
        let response = tokio::time::timeout(
            GUARD,
            server
                .client
                .post(server.url("/api/partner/messages"))
                .bearer_auth(key)
                .json(
                    &json!({"conversationId": conversation, "senderId": "ann", "content": content}),
                )
                .send(),
        )
        .await
        .unwrap_or_else(|_| panic!("no answer within {GUARD:?}"))
        .unwrap_or_else(|e| panic!("send: {e}"));
        if response.status() != StatusCode::CREATED {
            let status = response.status();
            let retry_after = support::retry_after(&response);
            return (
                status,
                retry_after,
                response.json().await.unwrap_or(Value::Null),
            );
        }
    }
    panic!("2,000 messages fitted on the small disk")
}

async fn healthz(server: &Server) -> (StatusCode, Value) {
    server
        .call(reqwest::Method::GET, "/healthz", None, None)
        .await
}

/// Fills the disk, checks the 503s, frees the ballast and checks recovery.
async fn full_then_freed(server: &Server, ballast: &Path) {
    let partner = server.register("Acme").await;
    let conversation = server.conversation(&partner, "ann").await;
    assert_eq!(healthz(server).await.0, StatusCode::OK);

    let (status, retry_after, body) = fill(server, &partner.key, conversation).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(error_code(&body), "storage_full", "{body}");
    assert!(retry_after.is_some(), "no Retry-After");
    let (status, body) = healthz(server).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(error_code(&body), "storage_full");

    std::fs::remove_file(ballast).unwrap_or_else(|e| panic!("freeing space: {e}"));
    let stored = server
        .say(&partner, conversation, "ann", "space again")
        .await;
    assert_eq!(stored["content"], "space again");
    assert_eq!(healthz(server).await.0, StatusCode::OK);
    assert!(!server.log().contains("store failure"), "{}", server.log());
    server.assert_no_panics();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_disk_full_is_503_and_not_ready() {
    let db = TestDb::new(Backend::Sqlite).await;
    let folder = db.dir.path().join("data");
    let Some(disk) = SmallDisk::mount(&folder, "3m") else {
        return;
    };
    let ballast = disk.ballast(768 * 1024);
    let server = Server::start(&db).await;
    full_then_freed(&server, &ballast).await;
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_disk_full_is_503_and_not_ready() {
    if !Backend::Postgres.enabled() {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let server = Server::start(&db).await;
    let base = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    // PostgreSQL's own user must reach the tablespace folder.
    let _ = Command::new("chmod").arg("755").arg(base.path()).status();
    let folder = base.path().join("space");
    let Some(disk) = SmallDisk::mount(&folder, "1m") else {
        return;
    };
    let chowned = Command::new("chown")
        .args(["postgres:postgres"])
        .arg(&folder)
        .status()
        .is_ok_and(|s| s.success());
    if !chowned {
        eprintln!("SKIPPED: no postgres user to own the tablespace (PostgreSQL is not local)");
        return;
    }
    let ballast = disk.ballast(256 * 1024);
    let tablespace = format!("frontdesk_small_{:08x}", rand::random::<u32>());
    let admin = Admin::connect(&support::db::postgres_admin_url()).await;
    admin
        .run(&format!(
            "CREATE TABLESPACE {tablespace} LOCATION '{}'",
            folder.display()
        ))
        .await;
    let owner = Admin::connect(&db.url).await;
    owner
        .run(&format!("ALTER TABLE messages SET TABLESPACE {tablespace}"))
        .await;
    drop(owner);

    full_then_freed(&server, &ballast).await;

    drop(server);
    drop(db);
    admin.run(&format!("DROP TABLESPACE {tablespace}")).await;
    drop(disk);
}

/// A PostgreSQL session for the test's own DDL.
struct Admin(tokio_postgres::Client);

impl Admin {
    async fn connect(url: &str) -> Self {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("connect {url}: {e}"));
        tokio::spawn(connection);
        Self(client)
    }

    async fn run(&self, sql: &str) {
        self.0
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}
