//! Slow and silent clients are dropped without slowing anyone else.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{Backend, Ended, Server, TestDb, WsClient};

on_both_backends!(
    a_client_that_stops_reading_is_disconnected,
    silent_clients_are_dropped
);

const FLOOD: usize = 2_000;

async fn a_client_that_stops_reading_is_disconnected(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start_with(&db, &[("FRONTDESK_WS_QUEUE", "128")]).await;
    let partner = server.register("Acme").await;
    let conversation = server.conversation(&partner, "ann").await;
    let query = "clientId=ann";
    // Two tabs of one customer: one stops reading, the other keeps up.
    let mut stuck = WsClient::connect_small_buffer(&server, query, Some(&partner.key)).await;
    let mut reader = WsClient::ready(&server, query, Some(&partner.key)).await;
    let reading = tokio::spawn(async move {
        let mut contents = Vec::new();
        while contents.len() < FLOOD {
            let frame = reader.expect("message").await;
            contents.push(
                frame["payload"]["content"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
        reader.expect_quiet().await;
        contents
    });

    // About 18 MB of messages: far more than the stuck client's queue and socket buffers hold.
    let padding = "x".repeat(9_000);
    let mut sent = Vec::new();
    for batch in 0..FLOOD / 25 {
        let posts = (0..25).map(|n| {
            let content = format!("{:04} {padding}", batch * 25 + n);
            let server = &server;
            let key = partner.key.clone();
            async move {
                let body =
                    json!({"conversationId": conversation, "senderId": "ann", "content": content});
                let message = server.post_message(&key, &body).await;
                message["id"].as_i64().unwrap_or_default()
            }
        });
        sent.extend(futures_util::future::join_all(posts).await);
    }

    // The reader got everything, in id order.
    let contents = reading.await.unwrap_or_else(|e| panic!("reader: {e}"));
    let history = server.history(&partner, conversation).await;
    let stored: Vec<String> = history
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(contents, stored);

    // The stuck one was cut off part way: it holds less than everything, then the end.
    let mut received = 0;
    loop {
        match stuck.next_within(Duration::from_secs(5)).await {
            Some(frame) if frame["type"] == "message" => received += 1,
            Some(_) => {}
            None => break,
        }
    }
    assert!(
        received < FLOOD,
        "the stuck client received all {received} frames"
    );
    assert!(
        server.log().contains("disconnecting slow client"),
        "{}",
        server.log()
    );
    server.assert_no_panics();
}

async fn silent_clients_are_dropped(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start_with(
        &db,
        &[
            ("FRONTDESK_WS_PING_SECS", "0.2"),
            ("FRONTDESK_WS_TIMEOUT_SECS", "1"),
        ],
    )
    .await;
    let partner = server.register("Acme").await;
    let mut silent = WsClient::ready(&server, "clientId=ann", Some(&partner.key)).await;
    let mut alive = WsClient::ready(&server, "clientId=bob", Some(&partner.key)).await;

    // `alive` keeps reading, so its client answers the server's pings; `silent` does not.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(2500);
    while tokio::time::Instant::now() < deadline {
        let _ = alive.next_within(Duration::from_millis(100)).await;
    }
    alive.expect_quiet().await;
    // Its pending pong replies may hit the closed socket before the close frame is read.
    let ended = silent.ended().await;
    assert!(
        matches!(ended, Ended::Closed(Some(1001)) | Ended::Dropped),
        "{ended:?}"
    );
    assert!(
        server.log().contains("dropping connection client=ann"),
        "{}",
        server.log()
    );
    assert!(!server.log().contains("dropping connection client=bob"));
}
