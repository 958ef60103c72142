//! The same clientMessageId twice stores one message and returns it both times.

mod support;

use reqwest::StatusCode;
use serde_json::json;
use support::{error_code, Backend};

on_both_backends!(
    retries_store_one_message,
    concurrent_retries_store_one_message,
    a_retry_after_the_conversation_closed_gets_the_stored_message,
    another_sender_reusing_the_id_is_a_conflict,
    invalid_client_message_ids_are_refused
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

    // Reusing it for a different message is a conflict, not a silent overwrite nor a replay:
    // other content, other metadata (changed, added to, dropped), in either field order.
    let mut conflicts = Vec::new();
    let mut changed = body.clone();
    changed["content"] = json!("something else");
    conflicts.push(("other content", changed));
    let mut changed = body.clone();
    changed["metadata"]["value"] = json!("ORD-2");
    conflicts.push(("other metadata value", changed));
    let mut changed = body.clone();
    changed["metadata"]["extra"] = json!(true);
    conflicts.push(("an extra metadata key", changed));
    let mut changed = body.clone();
    changed["metadata"] = json!({"commandType": "order_lookup"});
    conflicts.push(("a metadata key dropped", changed));
    let mut changed = body.clone();
    changed.as_object_mut().map(|o| o.remove("metadata"));
    conflicts.push(("no metadata", changed));
    for (what, changed) in &conflicts {
        let (status, error) = server.send_message(&partner.key, changed).await;
        assert_eq!(status, StatusCode::CONFLICT, "{what}: {error}");
        assert_eq!(error_code(&error), "idempotency_conflict", "{what}");
    }
    // The same metadata with its keys in another order is the same message.
    let reordered = json!({
        "clientMessageId": "offline-queue-1",
        "metadata": {"value": "ORD-1", "commandType": "order_lookup"},
        "content": "Where is my order?",
        "senderId": "customer-1",
        "conversationId": conversation
    });
    let (status, again) = server.send_message(&partner.key, &reordered).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, first);
    assert_eq!(
        server.history(&partner, conversation).await,
        vec![first.clone()],
        "a conflict stored or changed something"
    );
    assert_eq!(db.count("messages").await, 2);
}

/// The same clientMessageId from another sender in the same conversation (the agent reusing
/// the customer's id, with the same content and metadata) is a conflict, both ways.
async fn another_sender_reusing_the_id_is_a_conflict(backend: Backend) {
    let (_db, server, partner, conversation) =
        support::start_with_conversation(backend, "customer-1").await;
    let metadata = json!({"commandType": "order_lookup", "value": "ORD-1"});
    let first = server
        .post_message(
            &partner.key,
            &json!({"conversationId": conversation, "senderId": "customer-1",
                "content": "same words", "metadata": metadata, "clientMessageId": "shared-1"}),
        )
        .await;
    let agent = server.agent("agent@example.com", false).await;
    server.assign(&agent, conversation).await;
    let path = format!("/api/agent/conversations/{conversation}/messages");
    let (status, error) = server
        .call(
            reqwest::Method::POST,
            &path,
            Some(&agent.token),
            Some(&json!({"content": "same words", "metadata": metadata, "clientMessageId": "shared-1"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error_code(&error), "idempotency_conflict");

    // The agent's own id, then the customer reusing it.
    let (status, reply) = server
        .call(
            reqwest::Method::POST,
            &path,
            Some(&agent.token),
            Some(&json!({"content": "agent words", "clientMessageId": "agent-1"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let (status, again) = server
        .call(
            reqwest::Method::POST,
            &path,
            Some(&agent.token),
            Some(&json!({"content": "agent words", "clientMessageId": "agent-1"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the agent's retry is a replay: {again}"
    );
    assert_eq!(again, reply);
    let (status, error) = server
        .send_message(
            &partner.key,
            &json!({"conversationId": conversation, "senderId": "customer-1",
                "content": "agent words", "clientMessageId": "agent-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error_code(&error), "idempotency_conflict");
    assert_eq!(
        server.history(&partner, conversation).await,
        vec![first, reply]
    );
}

/// A clientMessageId is 1 to 128 characters without control characters (422 `invalid_value`,
/// `field: "clientMessageId"`), and a string (400 `invalid_field` otherwise). Refused, nothing
/// is stored; the longest allowed one works and replays.
async fn invalid_client_message_ids_are_refused(backend: Backend) {
    let (db, server, partner, conversation) =
        support::start_with_conversation(backend, "customer-1").await;
    let agent = server.agent("agent@example.com", false).await;
    let held = server.conversation(&partner, "customer-2").await;
    server.assign(&agent, held).await;
    let agent_path = format!("/api/agent/conversations/{held}/messages");
    let cases = [
        (
            "empty",
            json!(""),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
        (
            "129 characters",
            json!("x".repeat(129)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
        (
            "129 characters, multibyte",
            json!("é".repeat(129)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
        (
            "a control character",
            json!("queue\u{7}1"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
        (
            "a newline",
            json!("queue\n1"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
        (
            "a number",
            json!(17),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            "an object",
            json!({"id": "x"}),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            "a boolean",
            json!(true),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
    ];
    for (what, id, expected, code) in &cases {
        let body = json!({"conversationId": conversation, "senderId": "customer-1",
            "content": "hello", "clientMessageId": id});
        let (status, error) = server.send_message(&partner.key, &body).await;
        assert_eq!(status, *expected, "partner, {what}: {error}");
        assert_eq!(error_code(&error), *code, "partner, {what}");
        let (status, error) = server
            .call(
                reqwest::Method::POST,
                &agent_path,
                Some(&agent.token),
                Some(&json!({"content": "hello", "clientMessageId": id})),
            )
            .await;
        assert_eq!(status, *expected, "agent, {what}: {error}");
        assert_eq!(error_code(&error), *code, "agent, {what}");
        if *expected == StatusCode::UNPROCESSABLE_ENTITY {
            assert_eq!(
                error["error"]["field"], "clientMessageId",
                "{what}: {error}"
            );
        }
    }
    assert_eq!(
        db.count("messages").await,
        0,
        "a refused message was stored"
    );

    // 128 characters, even of several bytes each, is fine, and replays.
    let longest = "é".repeat(128);
    let body = json!({"conversationId": conversation, "senderId": "customer-1",
        "content": "hello", "clientMessageId": longest});
    let (status, first) = server.send_message(&partner.key, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["clientMessageId"], json!(longest));
    let (status, again) = server.send_message(&partner.key, &body).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, first);
    assert_eq!(db.count("messages").await, 1);
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
    // Every retry gets the very message that was stored: same id, timestamp, every field.
    let stored = server.history(&partner, conversation).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["content"], "sent from a flaky network");
    for (status, message) in &results {
        assert_eq!(message, &stored[0], "{status}");
    }
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
