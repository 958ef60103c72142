//! Sockets that never read (issue 12, finding 4): every write has a deadline, so a peer that
//! cannot take a frame is disconnected and its TCP socket really released (the server's file
//! descriptors come back), a reading client on the same server gets everything, and SIGTERM
//! ends the server promptly even while such peers are stuck.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{Backend, Ended, Partner, Server, TestDb, WsClient};

on_both_backends!(
    stuck_readers_are_released_and_a_reader_gets_everything,
    sigterm_ends_the_server_while_readers_are_stuck,
);

const CUSTOMERS: usize = 10;
/// Sockets per customer that never read, each with a tiny receive buffer.
const STUCK_EACH: usize = 10;
/// Rounds of one 40 KB message per customer at most: 8 MB per stuck socket, about twice
/// what the kernel buffers of one hold.
const MAX_ROUNDS: usize = 200;
/// "It happened at all": descriptors of released sockets come back within this.
const GUARD: Duration = Duration::from_secs(60);

/// The server's open file descriptors.
fn open_fds(server: &Server) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
        .unwrap_or_else(|e| panic!("reading the server's fds: {e}"))
        .count()
}

/// 40,000 bytes of content (10,000 four-byte characters, the most a message may have).
fn big_content(tag: &str) -> String {
    format!("{tag} {}", "😀".repeat(9_990))
}

/// Customers customer-0.. with one conversation each.
async fn conversations(server: &Server, partner: &Partner) -> Vec<i64> {
    let mut ids = Vec::new();
    for c in 0..CUSTOMERS {
        ids.push(server.conversation(partner, &format!("customer-{c}")).await);
    }
    ids
}

/// `STUCK_EACH` non-reading sockets per customer.
async fn stuck_sockets(server: &Server, partner: &Partner) -> Vec<WsClient> {
    let mut stuck = Vec::new();
    for c in 0..CUSTOMERS {
        for _ in 0..STUCK_EACH {
            let query = format!("clientId=customer-{c}");
            stuck.push(WsClient::connect_small_buffer(server, &query, Some(&partner.key)).await);
        }
    }
    stuck
}

/// One 40 KB message into every conversation.
async fn push_round(server: &Server, partner: &Partner, conversations: &[i64], round: usize) {
    let posts = conversations.iter().enumerate().map(|(c, conversation)| {
        let body = json!({
            "conversationId": conversation,
            "senderId": format!("customer-{c}"),
            "content": big_content(&format!("{round:04}")),
        });
        async move { server.post_message(&partner.key, &body).await }
    });
    futures_util::future::join_all(posts).await;
}

async fn stuck_readers_are_released_and_a_reader_gets_everything(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start_with(&db, &[("FRONTDESK_WS_WRITE_TIMEOUT_SECS", "2")]).await;
    let partner = server.register("Acme").await;
    let conversations = conversations(&server, &partner).await;
    let mut reader = WsClient::ready(&server, "clientId=customer-0", Some(&partner.key)).await;
    let reading = tokio::spawn(async move {
        let mut contents = Vec::new();
        loop {
            let frame = reader.expect("message").await;
            let content = frame["payload"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if content == "last" {
                return contents;
            }
            contents.push(content);
        }
    });
    let baseline = open_fds(&server);
    let stuck = stuck_sockets(&server, &partner).await;
    let connected = open_fds(&server);
    assert!(
        connected >= baseline + CUSTOMERS * STUCK_EACH,
        "{connected} fds after connecting, {baseline} before"
    );

    // Push until the stuck sockets are gone (each is dropped once a write to it waited 2 s).
    // Allowed above the baseline: the partner's pooled HTTP connections (up to one per
    // conversation, two descriptors each) and a few files; the stuck sockets held 200 more.
    let released = |server: &Server| open_fds(server) <= baseline + 2 * CUSTOMERS + 20;
    let mut rounds = 0;
    while rounds < MAX_ROUNDS && !released(&server) {
        push_round(&server, &partner, &conversations, rounds).await;
        rounds += 1;
    }
    let started = Instant::now();
    while !released(&server) {
        assert!(
            started.elapsed() < GUARD,
            "after {rounds} rounds the server still holds {} fds ({baseline} before the stuck sockets, {connected} with them)",
            open_fds(&server)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "released after {rounds} rounds; fds {baseline} -> {connected} -> {}",
        open_fds(&server)
    );

    // The reading client on the same server got every message of its conversation, in order.
    let last =
        json!({"conversationId": conversations[0], "senderId": "customer-0", "content": "last"});
    server.post_message(&partner.key, &last).await;
    let contents = tokio::time::timeout(GUARD, reading)
        .await
        .unwrap_or_else(|_| panic!("the reader did not get everything"))
        .unwrap_or_else(|e| panic!("reader: {e}"));
    let history = server.history(&partner, conversations[0]).await;
    let stored: Vec<&str> = history
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default())
        .filter(|content| *content != "last")
        .collect();
    assert_eq!(contents, stored);
    drop(stuck);
    server.assert_no_panics();
}

async fn sigterm_ends_the_server_while_readers_are_stuck(backend: Backend) {
    let db = TestDb::new(backend).await;
    // A deadline far beyond the test: the stuck sockets are still stuck when SIGTERM comes.
    let server = Server::start_with(&db, &[("FRONTDESK_WS_WRITE_TIMEOUT_SECS", "600")]).await;
    let partner = server.register("Acme").await;
    let conversations = conversations(&server, &partner).await;
    let mut reader = WsClient::ready(&server, "clientId=customer-0", Some(&partner.key)).await;
    let stuck = stuck_sockets(&server, &partner).await;
    let mut received = 0;
    for round in 0..100 {
        push_round(&server, &partner, &conversations, round).await;
        while reader.next_within(Duration::from_millis(1)).await.is_some() {
            received += 1;
        }
    }
    let waiter = tokio::spawn(async move { reader.ended().await });
    // Before the fix a blocked send starved the shutdown: SIGTERM took 31 s.
    let terminated = tokio::task::spawn_blocking(move || server.terminate());
    let status = tokio::time::timeout(Duration::from_secs(20), terminated)
        .await
        .unwrap_or_else(|_| panic!("SIGTERM did not end the server within 20 s"))
        .unwrap_or_else(|e| panic!("terminate: {e}"));
    assert!(status.success(), "{status}");
    let ended = waiter.await.unwrap_or(Ended::Dropped);
    assert_eq!(ended, Ended::Closed(Some(1001)), "after {received} frames");
    drop(stuck);
}
