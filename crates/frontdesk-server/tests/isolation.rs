//! Partner B never reads or writes partner A's customers, conversations or messages.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::json;
use support::{error_code, Backend, Server, TestDb};

on_both_backends!(partners_are_isolated);

async fn partners_are_isolated(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let a = server.register("A").await;
    let b = server.register("B").await;
    let conversation = server.conversation(&a, "customer-1").await;
    server
        .say(&a, conversation, "customer-1", "private to A")
        .await;
    server
        .patch_customer(
            &a,
            "customer-1",
            &json!({"name": "Alice", "email": "alice@a.com"}),
        )
        .await;

    // B cannot read A's messages or A's customer's conversations.
    let (status, body) = server
        .call(
            Method::GET,
            &format!("/api/partner/messages/{conversation}"),
            Some(&b.key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(error_code(&body), "conversation_not_found");
    let (status, _) = server
        .call(
            Method::GET,
            "/api/partner/conversations/customer-1",
            Some(&b.key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // B cannot write into A's conversation, even with A's customer's id.
    let (status, _) = server
        .call(
            Method::POST,
            "/api/partner/messages",
            Some(&b.key),
            Some(&json!({"conversationId": conversation, "senderId": "customer-1", "content": "from B"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The same customer id at B is B's own, separate customer.
    let (status, patched) = server
        .call(
            Method::PATCH,
            "/api/customers/customer-1",
            Some(&b.key),
            Some(&json!({"name": "Bob"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched["name"], "Bob");
    assert_eq!(
        patched["email"],
        serde_json::Value::Null,
        "A's data leaked to B"
    );
    let b_conversation = server.conversation(&b, "customer-1").await;
    let (_, b_list) = server
        .call(
            Method::GET,
            "/api/partner/conversations/customer-1",
            Some(&b.key),
            None,
        )
        .await;
    assert_eq!(b_list.as_array().map(Vec::len), Some(1));
    assert_eq!(b_list[0]["id"], b_conversation);

    // A still sees exactly its own.
    let history = server.history(&a, conversation).await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["content"], "private to A");
    let (_, a_list) = server
        .call(
            Method::GET,
            "/api/partner/conversations/customer-1",
            Some(&a.key),
            None,
        )
        .await;
    assert_eq!(a_list.as_array().map(Vec::len), Some(1));
    assert_eq!(a_list[0]["id"], conversation);
    let (_, a_customer) = server
        .call(
            Method::PATCH,
            "/api/customers/customer-1",
            Some(&a.key),
            Some(&json!({})),
        )
        .await;
    assert_eq!(a_customer["name"], "Alice");
}
