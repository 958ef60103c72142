//! Two server processes on one PostgreSQL database deliver each other's events, and keep
//! doing so after the database drops every connection (as a restart does).

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{Backend, Partner, Server, TestDb, WsClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_database() {
    if !Backend::Postgres.enabled() {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let a = Server::start(&db).await;
    let b = Server::start(&db).await;
    let partner = a.register("Acme").await;
    let agent = b.agent("agent@example.com", false).await;
    let mut staff = WsClient::agent(&b, &agent).await;

    // A conversation opened on A reaches the queue on B.
    let conversation = a.conversation(&partner, "ann").await;
    assert_eq!(
        staff.expect("status").await["payload"]["conversationId"],
        conversation
    );
    let token = a.session(&partner, "ann").await;
    let mut ann = WsClient::customer(&a, "ann", &token).await;

    // Customer on A -> agent on B.
    ann.send(&json!({"type": "message", "payload": {"conversationId": conversation, "content": "from A", "clientMessageId": "a1"}}))
        .await;
    assert_eq!(
        staff.expect("message").await["payload"]["content"],
        "from A"
    );

    // Agent on B takes it and answers -> customer on A.
    b.assign(&agent, conversation).await;
    assert_eq!(ann.until("status").await["payload"]["status"], "active");
    staff.expect("status").await;
    staff
        .send(&json!({"type": "message", "payload": {"conversationId": conversation, "content": "from B"}}))
        .await;
    assert_eq!(ann.expect("message").await["payload"]["content"], "from B");

    // Typing crosses instances too, both ways.
    ann.send(
        &json!({"type": "typing", "payload": {"conversationId": conversation, "isTyping": true}}),
    )
    .await;
    assert_eq!(staff.until("typing").await["payload"]["isAgent"], false);
    staff
        .send(&json!({"type": "typing", "payload": {"conversationId": conversation, "isTyping": true}}))
        .await;
    assert_eq!(ann.until("typing").await["payload"]["isAgent"], true);

    // The database drops every connection, listeners included.
    db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .await;
    // Messages sent on A right away still reach B's agent, in order, each once.
    let mut sent = Vec::new();
    for n in 0..5 {
        sent.push(post_with_retry(&a, &partner, conversation, &format!("after restart {n}")).await);
    }
    let mut received = Vec::new();
    while received.len() < sent.len() {
        let frame = staff.until("message").await;
        received.push(frame["payload"].clone());
    }
    assert_eq!(received, sent);
    staff.expect_quiet().await;
    for server in [&a, &b] {
        assert!(
            server.log().contains("event listener disconnected"),
            "{}",
            server.log()
        );
        server.assert_no_panics();
    }
}

/// The first request after the drop may meet a connection the pool has not yet noticed is
/// dead (503/500); a client retries it with the same clientMessageId, so it is stored once.
async fn post_with_retry(
    server: &Server,
    partner: &Partner,
    conversation: i64,
    text: &str,
) -> Value {
    let body = json!({"conversationId": conversation, "senderId": "ann", "content": text, "clientMessageId": text});
    for _ in 0..50 {
        let (status, message) = server.send_message(&partner.key, &body).await;
        if status.is_success() {
            return message;
        }
        assert!(status.is_server_error(), "{status}: {message}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{text} was never accepted")
}

/// An instance holds no more PostgreSQL connections than docs/configuration.md says: the pool
/// size shared out between the workers, plus the LISTEN, writer and feed connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_stays_within_its_connection_budget() {
    if !Backend::Postgres.enabled() {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    // 3 over 2 workers: 2 and 1, so 3 + 3 in all.
    let budget = 6;
    let server = Server::start_with(
        &db,
        &[("FRONTDESK_DB_POOL_SIZE", "3"), ("FRONTDESK_WORKERS", "2")],
    )
    .await;
    let partner = server.register("Acme").await;
    let conversation = server.conversation(&partner, "ann").await;
    // A message, so the writer's connection is open too.
    server
        .post_message(
            &partner.key,
            &json!({"conversationId": conversation, "senderId": "ann", "content": "hello"}),
        )
        .await;
    let path = format!("/api/partner/messages/{conversation}?after=0");

    // Many reads at once, each on a new connection so they reach both workers, while the
    // database's sessions are sampled.
    let fresh_connections = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut load = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (client, url, key) = (
            fresh_connections.clone(),
            server.url(&path),
            partner.key.clone(),
        );
        load.spawn(async move {
            for _ in 0..20 {
                let response = client
                    .get(&url)
                    .bearer_auth(&key)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(response.status(), reqwest::StatusCode::OK);
            }
        });
    }
    let sessions = "SELECT count(*) FROM pg_stat_activity \
                    WHERE datname = current_database() AND pid <> pg_backend_pid()";
    // One sampling session for the whole test: a new one per sample would see its predecessor's
    // backend still exiting on a busy machine, and count it as the server's.
    let sampler = db.postgres_client().await;
    let mut peak = 0;
    while !load.is_empty() {
        let row = sampler
            .query_one(sessions, &[])
            .await
            .unwrap_or_else(|e| panic!("{sessions}: {e}"));
        let now: i64 = row.get(0);
        peak = peak.max(now);
        while let Some(done) = load.try_join_next() {
            done.unwrap_or_else(|e| panic!("{e}"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        peak <= budget,
        "{peak} sessions of one instance at once; the configuration guide promises {budget}"
    );
    assert!(peak >= 4, "the load was seen: {peak} sessions at most");
}
