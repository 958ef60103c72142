//! Findings 9 and 12 (SQLite busy, disk full) of issue 12: when the database cannot take a
//! write, the writer answers 503 JSON with `Retry-After` within a bounded time, never holds up
//! writes that do not need what is stuck, and never stores a message twice.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{error_code, Backend, Server, TestDb};

/// "It ended at all": far above any timeout the server is configured with here.
const GUARD: Duration = Duration::from_secs(30);

/// POSTs a message with the partner's key; status, `Retry-After` and JSON body, within GUARD.
async fn post(server: &Server, key: &str, body: &Value) -> (StatusCode, Option<u64>, Value) {
    let request = server
        .client
        .post(server.url("/api/partner/messages"))
        .bearer_auth(key)
        .json(body)
        .send();
    let response = tokio::time::timeout(GUARD, request)
        .await
        .unwrap_or_else(|_| panic!("no answer within {GUARD:?}: the append hung"))
        .unwrap_or_else(|e| panic!("send: {e}"));
    let status = response.status();
    let retry_after = support::retry_after(&response);
    let body = response.json().await.unwrap_or(Value::Null);
    (status, retry_after, body)
}

fn message(conversation: i64, customer: &str, content: &str) -> Value {
    json!({"conversationId": conversation, "senderId": customer, "content": content})
}

fn assert_503(status: StatusCode, retry_after: &Option<u64>, body: &Value, code: &str) {
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(error_code(body), code, "{body}");
    assert!(
        retry_after.is_some_and(|s| s >= 1),
        "Retry-After: {retry_after:?}"
    );
}

/// Another session holds conversation A's row `FOR UPDATE` (for as long as the test wants):
/// messages to B are stored meanwhile, the messages to A get 503 instead of waiting for ever,
/// and after the lock is released retrying A stores each message exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_row_fails_its_own_writes_fast_and_no_one_elses() {
    if !Backend::Postgres.enabled() {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let server = Server::start_with(&db, &[("FRONTDESK_DB_LOCK_TIMEOUT_MS", "500")]).await;
    let partner = server.register("Acme").await;
    let a = server.conversation(&partner, "ann").await;
    let b = server.conversation(&partner, "bob").await;

    let (locker, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    tokio::spawn(connection);
    locker
        .batch_execute(&format!(
            "BEGIN; SELECT * FROM conversations WHERE id = {a} FOR UPDATE"
        ))
        .await
        .unwrap_or_else(|e| panic!("lock: {e}"));

    // All at once, so they share batches with the stuck ones: A without and with a
    // clientMessageId, B's in between.
    let mut sends = Vec::new();
    for i in 0..12 {
        let body = match i % 4 {
            0 => message(a, "ann", &format!("to A {i}")),
            1 => {
                let mut body = message(a, "ann", &format!("to A {i}"));
                body["clientMessageId"] = json!(format!("a-{i}"));
                body
            }
            _ => message(b, "bob", &format!("to B {i}")),
        };
        let (server_base, key) = (server.base.clone(), partner.key.clone());
        sends.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let response = tokio::time::timeout(
                GUARD,
                client
                    .post(format!("{server_base}/api/partner/messages"))
                    .bearer_auth(&key)
                    .json(&body)
                    .send(),
            )
            .await
            .unwrap_or_else(|_| panic!("no answer within {GUARD:?} for {body}"))
            .unwrap_or_else(|e| panic!("send: {e}"));
            let status = response.status();
            let retry_after = support::retry_after(&response);
            (
                body,
                status,
                retry_after,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }));
    }
    let mut refused = Vec::new();
    for send in sends {
        let (body, status, retry_after, answer) =
            send.await.unwrap_or_else(|e| panic!("join: {e}"));
        if body["conversationId"] == b {
            assert_eq!(
                status,
                StatusCode::CREATED,
                "B waited on A's lock: {answer}"
            );
        } else {
            assert_503(status, &retry_after, &answer, "database_busy");
            refused.push(body);
        }
    }
    // Still locked: B keeps working, A keeps failing fast.
    let (status, _, answer) = post(&server, &partner.key, &message(b, "bob", "B again")).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let (status, retry_after, answer) = post(&server, &partner.key, &refused[0]).await;
    assert_503(status, &retry_after, &answer, "database_busy");

    locker
        .batch_execute("ROLLBACK")
        .await
        .unwrap_or_else(|e| panic!("unlock: {e}"));
    for body in &refused {
        let (status, _, answer) = post(&server, &partner.key, body).await;
        assert_eq!(status, StatusCode::CREATED, "retry of {body}: {answer}");
    }
    // A retry of an id-carrying message that did get through is a replay, not a second copy.
    let (status, _, _) = post(&server, &partner.key, &refused[1]).await;
    assert_eq!(status, StatusCode::OK);

    let contents = |history: Vec<Value>| -> Vec<String> {
        history
            .iter()
            .filter_map(|m| m["content"].as_str().map(str::to_owned))
            .collect()
    };
    let mut stored_a = contents(server.history(&partner, a).await);
    stored_a.sort();
    let mut expected_a: Vec<String> = refused
        .iter()
        .filter_map(|m| m["content"].as_str().map(str::to_owned))
        .collect();
    expected_a.sort();
    assert_eq!(stored_a, expected_a, "A: each message exactly once");
    assert_eq!(
        server.history(&partner, b).await.len(),
        7,
        "B: each exactly once"
    );
    assert_eq!(db.count("messages").await, 13);
    server.assert_no_panics();
}

/// `sqlite3` holding the database file's write lock, as another process would.
struct SqliteLocker(Child);

impl SqliteLocker {
    fn lock(db: &TestDb) -> Self {
        let path = db.sqlite_path().unwrap_or_default();
        let mut child = Command::new("sqlite3")
            .arg(&path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("sqlite3 is needed by the tests: {e}"));
        let stdin = child.stdin.as_mut().unwrap_or_else(|| panic!("no stdin"));
        stdin
            .write_all(b"BEGIN IMMEDIATE;\nSELECT 'locked';\n")
            .unwrap_or_else(|e| panic!("sqlite3: {e}"));
        stdin.flush().unwrap_or_else(|e| panic!("sqlite3: {e}"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("sqlite3: {e}"));
        assert_eq!(line.trim(), "locked", "sqlite3 did not take the lock");
        Self(child)
    }

    fn release(mut self) {
        if let Some(stdin) = self.0.stdin.as_mut() {
            let _ = stdin.write_all(b"ROLLBACK;\n.quit\n");
        }
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

/// Another process holds the SQLite file's write lock: writes get 503 `database_busy` with
/// `Retry-After` after the (short, configurable) busy timeout instead of a 500 after 20 s, a
/// whole batch fails at once rather than one append after another, reads still work, and once
/// the lock is gone the same writes succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_busy_is_503_with_retry_after() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start_with(&db, &[("FRONTDESK_SQLITE_BUSY_TIMEOUT_MS", "300")]).await;
    let partner = server.register("Acme").await;
    let conversation = server.conversation(&partner, "ann").await;
    let locker = SqliteLocker::lock(&db);

    let (status, retry_after, body) = post(
        &server,
        &partner.key,
        &message(conversation, "ann", "while locked"),
    )
    .await;
    assert_503(status, &retry_after, &body, "database_busy");
    let (status, body) = server
        .call(
            Method::POST,
            "/api/partner/conversations",
            Some(&partner.key),
            Some(&json!({"customerId": "bob"})),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(error_code(&body), "database_busy");
    // Reads do not need the write lock (WAL).
    assert!(server.history(&partner, conversation).await.is_empty());

    locker.release();
    let (status, _, body) = post(
        &server,
        &partner.key,
        &message(conversation, "ann", "while locked"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(server.history(&partner, conversation).await.len(), 1);
    assert!(
        !server.log().contains("store failure"),
        "busy was logged as a failure:\n{}",
        server.log()
    );
    server.assert_no_panics();
}
