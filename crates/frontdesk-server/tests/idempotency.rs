//! The same clientMessageId twice stores one message and returns it both times.

mod support;

use reqwest::StatusCode;
use serde_json::json;
use support::{error_code, Backend};

on_both_backends!(
    retries_store_one_message,
    concurrent_retries_store_one_message,
    a_retry_after_the_conversation_closed_gets_the_stored_message
);

async fn retries_store_one_message(backend: Backend) {
    let (db, server, partner, conversation) =
        support::start_with_conversation(backend, "customer-1").await;
    let body = json!({
        "conversationId": conversation,
        "senderId": "customer-1",
        "content": "Where is my order?",
        "metadata": {"commandType": "order_lookup", "value": "ORD-1"},
        "clientMessageId": "offline-queue-1"
    });
    let (status, first) = server.send_message(&partner.key, &body).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(first["clientMessageId"], "offline-queue-1");
    let (status, again) = server.send_message(&partner.key, &body).await;
    assert_eq!(status, StatusCode::OK, "a replay is not a new message");
    assert_eq!(again, first);
    assert_eq!(
        server.history(&partner, conversation).await,
        vec![first.clone()]
    );

    // The id is per conversation: another conversation may use it.
    let other = server.conversation(&partner, "customer-1").await;
    let mut elsewhere = body.clone();
    elsewhere["conversationId"] = json!(other);
    let (status, third) = server.send_message(&partner.key, &elsewhere).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(third["id"], first["id"]);

    // Reusing it for different content is a conflict, not a silent overwrite.
    let mut changed = body.clone();
    changed["content"] = json!("something else");
    let (status, error) = server.send_message(&partner.key, &changed).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&error), "idempotency_conflict");
    assert_eq!(db.count("messages").await, 2);
}

async fn concurrent_retries_store_one_message(backend: Backend) {
    let (_db, server, partner, conversation) =
        support::start_with_conversation(backend, "customer-1").await;
    let body = json!({
        "conversationId": conversation,
        "senderId": "customer-1",
        "content": "sent from a flaky network",
        "clientMessageId": "retry-storm"
    });
    let sends = (0..10).map(|_| server.send_message(&partner.key, &body));
    let results = futures_util::future::join_all(sends).await;
    let created = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert!(
        results
            .iter()
            .all(|(s, _)| *s == StatusCode::CREATED || *s == StatusCode::OK),
        "{results:?}"
    );
    assert_eq!(created, 1, "exactly one retry creates the message");
    let ids: Vec<_> = results.iter().map(|(_, m)| m["id"].clone()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "every retry returns the same message"
    );
    assert_eq!(server.history(&partner, conversation).await.len(), 1);
}

/// An offline queue may resend after the agent closed the conversation: the message it sent
/// before is still the answer, while a new one is refused.
async fn a_retry_after_the_conversation_closed_gets_the_stored_message(backend: Backend) {
    let (db, server, partner, conversation) =
        support::start_with_conversation(backend, "customer-1").await;
    let body = json!({
        "conversationId": conversation,
        "senderId": "customer-1",
        "content": "Did my refund go through?",
        "clientMessageId": "queued-7"
    });
    let first = server.post_message(&partner.key, &body).await;
    let agent = server.agent("agent@example.com", false).await;
    server.assign(&agent, conversation).await;
    server.close(&agent, conversation).await;

    let mut new_one = body.clone();
    new_one["clientMessageId"] = json!("queued-8");
    let (status, error) = server.send_message(&partner.key, &new_one).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error_code(&error), "conversation_closed");

    let (status, again) = server.send_message(&partner.key, &body).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, first);
    assert_eq!(db.count("messages").await, 1);
}
