//! 50 concurrent senders into one conversation: no errors, nothing lost, ids in order.

mod support;

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::json;
use support::Backend;

on_both_backends!(fifty_concurrent_senders);

const SENDERS: usize = 50;
const EACH: usize = 10;

async fn fifty_concurrent_senders(backend: Backend) {
    let (_db, server, partner, conversation) =
        support::start_with_conversation(backend, "customer-1").await;

    let senders = (0..SENDERS).map(|sender| {
        let server = &server;
        let key = partner.key.clone();
        async move {
            let mut ids = Vec::new();
            for n in 0..EACH {
                let (status, body) = server
                    .call(
                        Method::POST,
                        "/api/partner/messages",
                        Some(&key),
                        Some(&json!({
                            "conversationId": conversation,
                            "senderId": "customer-1",
                            "content": format!("sender {sender} message {n}")
                        })),
                    )
                    .await;
                assert_eq!(status, StatusCode::CREATED, "sender {sender}: {body}");
                ids.push(body["id"].as_i64().unwrap_or_default());
            }
            ids
        }
    });
    let per_sender = futures_util::future::join_all(senders).await;

    // Each sender's messages got increasing ids, in the order it sent them.
    for ids in &per_sender {
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    }
    let acknowledged: HashSet<i64> = per_sender.iter().flatten().copied().collect();
    assert_eq!(acknowledged.len(), SENDERS * EACH);

    let history = server.history(&partner, conversation).await;
    let stored: Vec<i64> = history.iter().filter_map(|m| m["id"].as_i64()).collect();
    assert_eq!(stored.len(), SENDERS * EACH, "messages lost or duplicated");
    assert!(
        stored.windows(2).all(|w| w[0] < w[1]),
        "history not in id order"
    );
    assert_eq!(stored.iter().copied().collect::<HashSet<_>>(), acknowledged);
    assert!(
        !server.log().contains("database is locked"),
        "{}",
        server.log()
    );
}
