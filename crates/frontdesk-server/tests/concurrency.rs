//! 50 concurrent senders into one conversation: no errors, nothing lost, ids in order.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{Backend, Server, TestDb};

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

on_both_backends!(a_pager_keeps_up_with_fifty_senders);

/// Page size of the concurrent pager: small, so it pages many times while the senders write.
const PAGE: usize = 7;
/// Posts per sender in the paging test: more than in the one above, as every batch is one more
/// chance for a late commit (when ids are not kept in order) to land behind the pager.
const PAGER_EACH: usize = 20;

/// A client paging with `after=` while 50 senders write (docs/api.md: page with `after` set to
/// the last id received until fewer than `limit` come back) ends, once it catches up after the
/// writers are done, with exactly the acknowledged messages, each once, in increasing id order:
/// ids commit in id order, so no message commits behind the pager's cursor. Some posts go to
/// a closed conversation: each is refused with `409 conversation_closed` and never appears. On
/// PostgreSQL the senders are split between two instances, whose writers race for ids (one
/// instance has one writer, which commits its batches one after the other anyway).
async fn a_pager_keeps_up_with_fifty_senders(backend: Backend) {
    let db = TestDb::new(backend).await;
    let first = Server::start(&db).await;
    let second = match backend {
        Backend::Postgres => Some(Server::start(&db).await),
        Backend::Sqlite => None,
    };
    let instances: Vec<&Server> = std::iter::once(&first).chain(second.as_ref()).collect();
    let partner = first.register("Acme").await;
    let open = first.conversation(&partner, "customer-1").await;
    let closed = first.conversation(&partner, "customer-2").await;
    let agent = first.agent("agent@example.com", false).await;
    first.close(&agent, closed).await;

    let done = AtomicBool::new(false);
    let senders = (0..SENDERS).map(|sender| {
        let server = instances[sender % instances.len()];
        let key = partner.key.clone();
        async move {
            let mut acknowledged = Vec::new();
            let mut refused = 0;
            for n in 0..PAGER_EACH {
                // One post in five is to the closed conversation.
                let (conversation, customer) = if (sender + n) % 5 == 0 {
                    (closed, "customer-2")
                } else {
                    (open, "customer-1")
                };
                let (status, body) = server
                    .call(
                        Method::POST,
                        "/api/partner/messages",
                        Some(&key),
                        Some(&json!({
                            "conversationId": conversation,
                            "senderId": customer,
                            "content": format!("sender {sender} message {n}")
                        })),
                    )
                    .await;
                if conversation == closed {
                    assert_eq!(status, StatusCode::CONFLICT, "sender {sender}: {body}");
                    assert_eq!(support::error_code(&body), "conversation_closed");
                    refused += 1;
                } else {
                    assert_eq!(status, StatusCode::CREATED, "sender {sender}: {body}");
                    acknowledged.push(body);
                }
            }
            (acknowledged, refused)
        }
    });
    let writers = async {
        let results = futures_util::future::join_all(senders).await;
        done.store(true, Ordering::SeqCst);
        results
    };
    let pager = async {
        let mut seen: Vec<Value> = Vec::new();
        // Non-empty pages read while the senders were still writing.
        let mut pages_amid_writes = 0;
        loop {
            // Read before the page: if the writers were done by then, this page sees all.
            let writers_done = done.load(Ordering::SeqCst);
            let after = seen.last().map_or(0, |m| m["id"].as_i64().expect("id"));
            let path = format!("/api/partner/messages/{open}?after={after}&limit={PAGE}");
            let (status, body) = first
                .call(Method::GET, &path, Some(&partner.key), None)
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let page = body.as_array().cloned().expect("an array");
            assert!(
                page.len() <= PAGE,
                "{} messages in a page of {PAGE}",
                page.len()
            );
            let mut last = after;
            for message in &page {
                let id = message["id"].as_i64().expect("id");
                assert!(id > last, "id {id} after {last} (after={after})");
                last = id;
            }
            seen.extend(page.iter().cloned());
            if !writers_done && !page.is_empty() {
                pages_amid_writes += 1;
            }
            if writers_done && page.len() < PAGE {
                return (seen, pages_amid_writes);
            }
            if page.is_empty() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    };
    let (results, (seen, pages_amid_writes)) = tokio::join!(writers, pager);

    let mut acknowledged: Vec<Value> = results.iter().flat_map(|(a, _)| a.clone()).collect();
    let refused: usize = results.iter().map(|(_, r)| r).sum();
    assert_eq!(refused, SENDERS * PAGER_EACH / 5);
    assert_eq!(acknowledged.len(), SENDERS * PAGER_EACH - refused);
    acknowledged.sort_by_key(|m| m["id"].as_i64());
    let seen_ids: Vec<i64> = seen.iter().filter_map(|m| m["id"].as_i64()).collect();
    let acknowledged_ids: Vec<i64> = acknowledged
        .iter()
        .filter_map(|m| m["id"].as_i64())
        .collect();
    let missed: Vec<i64> = acknowledged_ids
        .iter()
        .filter(|id| !seen_ids.contains(id))
        .copied()
        .collect();
    assert_eq!(missed, Vec::<i64>::new(), "acknowledged, never paged");
    // Each once, in id order, and exactly as acknowledged.
    assert_eq!(seen, acknowledged);
    // Otherwise this would only be a read after the writes.
    assert!(
        pages_amid_writes > 0,
        "no page read while the senders wrote"
    );
    // What was refused is nowhere.
    assert_eq!(first.history(&partner, closed).await, Vec::<Value>::new());
    assert_eq!(first.history(&partner, open).await, acknowledged);
    for server in instances {
        server.assert_no_panics();
    }
}
