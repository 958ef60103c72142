//! An agent may not type or mark read in a conversation another agent holds: refused with 409
//! `assigned_elsewhere`, like sending, over the WebSocket and over REST, and nothing changes.

mod support;

use std::future::Future;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{error_code, Backend, Server, TestDb, WsClient};

/// A frame that must come soon. `WsClient::expect`'s patience restarts with every server ping
/// it skips; this bound does not.
async fn soon(frame: impl Future<Output = Value>) -> Value {
    tokio::time::timeout(support::ws::PATIENCE, frame)
        .await
        .unwrap_or_else(|_| panic!("the frame did not come"))
}

async fn another_agents_conversation_is_off_limits(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let acme = server.register("Acme").await;
    let conversation = server.conversation(&acme, "ann").await;
    let holder = server.agent("holder@example.com", false).await;
    let intruder = server.agent("intruder@example.com", false).await;
    let hello = server.say(&acme, conversation, "ann", "hello").await;
    server.assign(&holder, conversation).await;
    let mut ann = WsClient::ready(&server, "clientId=ann", Some(&acme.key)).await;
    let mut intruding = WsClient::agent(&server, &intruder).await;
    let mut holding = WsClient::agent(&server, &holder).await;

    // Typing and read over the WebSocket: `error` frames, and the customer hears nothing.
    intruding
        .send(&json!({"type": "typing", "payload": {"conversationId": conversation, "isTyping": true}}))
        .await;
    let refused = soon(intruding.expect("error")).await;
    assert_eq!(
        refused["payload"]["code"], "assigned_elsewhere",
        "{refused}"
    );
    intruding
        .send(&json!({"type": "read", "payload": {"conversationId": conversation, "messageId": hello["id"]}}))
        .await;
    let refused = soon(intruding.expect("error")).await;
    assert_eq!(
        refused["payload"]["code"], "assigned_elsewhere",
        "{refused}"
    );
    ann.expect_quiet().await;

    // Read over REST: 409, and the message stays unread.
    let (status, body) = server
        .call(
            Method::POST,
            &format!("/api/agent/conversations/{conversation}/read"),
            Some(&intruder.token),
            Some(&json!({"messageId": hello["id"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), "assigned_elsewhere");
    let history = server.history(&acme, conversation).await;
    assert_eq!(history[0]["readStatus"], false, "{history:?}");
    intruding.expect_quiet().await;

    // The holder still types and reads, and the customer hears both.
    holding
        .send(&json!({"type": "typing", "payload": {"conversationId": conversation, "isTyping": true}}))
        .await;
    assert_eq!(ann.expect("typing").await["payload"]["isAgent"], true);
    server.mark_read(&holder, conversation, &hello["id"]).await;
    assert_eq!(
        ann.expect("read").await["payload"]["messageId"],
        hello["id"]
    );
    // The holder hears its own receipt too (its other tabs need it), and nothing else.
    assert_eq!(
        holding.expect("read").await["payload"]["messageId"],
        hello["id"]
    );
    holding.expect_quiet().await;
    server.assert_no_panics();
}

/// While a conversation waits, any agent may still look at it and mark it read.
async fn a_waiting_conversation_is_open_to_every_agent(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let acme = server.register("Acme").await;
    let conversation = server.conversation(&acme, "ann").await;
    let agent = server.agent("agent@example.com", false).await;
    let hello = server.say(&acme, conversation, "ann", "hello").await;
    let marked = server.mark_read(&agent, conversation, &hello["id"]).await;
    assert_eq!(marked["lastMarked"], hello["id"]);
    server.assert_no_panics();
}

on_both_backends!(
    another_agents_conversation_is_off_limits,
    a_waiting_conversation_is_open_to_every_agent,
);
