//! Partner B never reads or writes partner A's customers, conversations or messages.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
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
    // B's list for the same customer id is B's own customer's: none of A's conversations.
    let (status, body) = server
        .call(
            Method::GET,
            "/api/partner/conversations/customer-1",
            Some(&b.key),
            None,
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!([])));

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

on_both_backends!(
    another_partners_session_for_the_same_customer_id_reaches_nothing,
    an_expired_customer_session_is_refused
);

/// Everything partner A's side shows for its conversation: what A's server reads, what an agent
/// reads, and the stored rows behind them (messages with their read state, the conversation,
/// every event of partner A). A request by partner B must leave all of it as it was.
async fn partner_a_side(
    db: &TestDb,
    server: &Server,
    a: &support::Partner,
    agent: &support::Agent,
    conversation: i64,
) -> Vec<String> {
    let a_partner_id: i64 =
        a.id.trim_start_matches("partner-")
            .parse()
            .unwrap_or_else(|e| panic!("partner id {}: {e}", a.id));
    let (_, a_list) = server
        .call(
            Method::GET,
            "/api/partner/conversations/customer-1",
            Some(&a.key),
            None,
        )
        .await;
    let (_, detail) = server
        .call(
            Method::GET,
            &format!("/api/agent/conversations/{conversation}"),
            Some(&agent.token),
            None,
        )
        .await;
    let mut side = vec![
        serde_json::to_string(&server.history(a, conversation).await).unwrap_or_default(),
        a_list.to_string(),
        detail.to_string(),
    ];
    for sql in [
        format!("SELECT * FROM messages WHERE conversation_id = {conversation} ORDER BY id"),
        format!("SELECT * FROM conversations WHERE partner_id = {a_partner_id} ORDER BY id"),
        format!("SELECT * FROM customers WHERE partner_id = {a_partner_id} ORDER BY id"),
        format!("SELECT * FROM events WHERE partner_id = {a_partner_id} ORDER BY id"),
    ] {
        side.push(format!("{sql}: {:?}", db.query_text(&sql).await));
    }
    side
}

/// Partner B's customer session token for `customer-1`, an id partner A also uses, is B's
/// customer's alone: on REST and on every frame a customer can send over the WebSocket, A's
/// conversation is "not found", with nothing changed or heard on A's side.
async fn another_partners_session_for_the_same_customer_id_reaches_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let a = server.register("A").await;
    let b = server.register("B").await;
    let ann = server.agent("ann@example.com", false).await;
    let conversation = server.conversation(&a, "customer-1").await;
    server
        .patch_customer(&a, "customer-1", &json!({"name": "Alice"}))
        .await;
    server
        .say(&a, conversation, "customer-1", "private to A")
        .await;
    server.assign(&ann, conversation).await;
    // Unread by the customer: a leaked read receipt would mark it.
    let reply = server
        .agent_reply(&ann, conversation, "for A's customer")
        .await;
    let b_conversation = server.conversation(&b, "customer-1").await;
    let b_token = server.session(&b, "customer-1").await;
    let a_token = server.session(&a, "customer-1").await;
    let mut a_customer = support::WsClient::customer(&server, "customer-1", &a_token).await;
    let mut a_agent = support::WsClient::agent(&server, &ann).await;
    let before = partner_a_side(&db, &server, &a, &ann, conversation).await;

    // REST: A's conversation does not exist for B's token.
    let (status, body) = server
        .call(
            Method::GET,
            &format!("/api/partner/messages/{conversation}"),
            Some(&b_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(error_code(&body), "conversation_not_found");
    let (status, body) = server
        .send_message(
            &b_token,
            &json!({"conversationId": conversation, "senderId": "customer-1", "content": "from B"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(error_code(&body), "conversation_not_found");
    // The same customer id names B's own customer: its list is B's conversation only.
    let (status, b_list) = server
        .call(
            Method::GET,
            "/api/partner/conversations/customer-1",
            Some(&b_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{b_list}");
    let b_ids: Vec<Value> = b_list
        .as_array()
        .map(|list| list.iter().map(|c| c["id"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(b_ids, [json!(b_conversation)], "{b_list}");
    // Session tokens may not PATCH customers, A's or B's.
    let (status, body) = server
        .call(
            Method::PATCH,
            "/api/customers/customer-1",
            Some(&b_token),
            Some(&json!({"name": "Mallory"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(error_code(&body), "forbidden");

    // WebSocket: every frame a customer can send, aimed at A's conversation, is refused as not
    // found, and the socket stays open: from B's customer token, and from B's own server
    // speaking for its customer-1 with its API key.
    let mut b_socket = support::WsClient::customer(&server, "customer-1", &b_token).await;
    let mut b_server_socket =
        support::WsClient::ready(&server, "clientId=customer-1", Some(&b.key)).await;
    let frames = [
        json!({"type": "message", "payload": {"conversationId": conversation, "content": "from B",
            "senderId": "customer-1", "isFromAgent": false, "clientMessageId": "b-1"}}),
        json!({"type": "typing", "payload": {"conversationId": conversation, "isTyping": true}}),
        json!({"type": "read", "payload": {"conversationId": conversation, "messageId": reply["id"]}}),
    ];
    for (who, socket) in [
        ("B's API key", &mut b_server_socket),
        ("B's customer token", &mut b_socket),
    ] {
        for frame in &frames {
            socket.send(frame).await;
            // A bounded wait of its own: an accepted frame gets no answer at all.
            let error = socket
                .next_within(std::time::Duration::from_secs(10))
                .await
                .unwrap_or_else(|| {
                    panic!("{who}, {frame}: no error frame, the frame was accepted")
                });
            assert_eq!(error["type"], "error", "{who}, {frame}: {error}");
            assert_eq!(
                error["payload"]["code"], "conversation_not_found",
                "{who}, {frame}: {error}"
            );
            assert!(error["payload"]["message"].is_string(), "{error}");
            let echoed = &frame["payload"]["clientMessageId"];
            assert_eq!(
                error["payload"]
                    .get("clientMessageId")
                    .unwrap_or(&Value::Null),
                echoed,
                "{who}: {error}"
            );
        }
        socket.expect_quiet().await;
    }

    assert_eq!(
        partner_a_side(&db, &server, &a, &ann, conversation).await,
        before,
        "partner B's customer changed partner A's side"
    );
    // Nobody on A's side heard anything (typing is never stored: only the sockets can tell).
    a_customer.expect_quiet().await;
    a_agent.expect_quiet().await;

    // Live events of A's conversation do not reach B's customer either.
    server
        .say(&a, conversation, "customer-1", "still A's")
        .await;
    assert_eq!(
        a_customer.until("message").await["payload"]["content"],
        "still A's"
    );
    b_socket.expect_quiet().await;
    b_server_socket.expect_quiet().await;
    server.assert_no_panics();
}

/// The upgrade request a browser sends, without a WebSocket client library: a refused
/// handshake's status and JSON body.
async fn handshake(server: &Server, query: &str) -> (StatusCode, Value) {
    let response = server
        .client
        .get(server.url(&format!("/ws?{query}")))
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-version", "13")
        .send()
        .await
        .unwrap_or_else(|e| panic!("handshake: {e}"));
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("handshake answered {status} with non-JSON {text:?}: {e}"));
    (status, body)
}

/// A customer session ends at `expiresAt` (FRONTDESK_CUSTOMER_SESSION_SECS): the token is then
/// `401 invalid_credentials` on every route it worked on, and on the WebSocket handshake.
async fn an_expired_customer_session_is_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    // Long enough that the proof it works while it lasts fits on a loaded machine.
    let lifetime = std::time::Duration::from_secs(4);
    let server = Server::start_with(&db, &[("FRONTDESK_CUSTOMER_SESSION_SECS", "4")]).await;
    let a = server.register("A").await;
    let conversation = server.conversation(&a, "customer-1").await;
    let issued = tokio::time::Instant::now();
    let token = server.session(&a, "customer-1").await;
    let message =
        json!({"conversationId": conversation, "senderId": "customer-1", "content": "in time"});
    // It works while it lasts (the handshake is proven by a real client).
    server.post_message(&token, &message).await;
    support::WsClient::customer(&server, "customer-1", &token)
        .await
        .close()
        .await;
    tokio::time::sleep_until(issued + lifetime + std::time::Duration::from_millis(500)).await;

    let late = json!({"conversationId": conversation, "senderId": "customer-1", "content": "late"});
    for (method, path, body) in [
        (
            Method::POST,
            "/api/partner/messages".to_owned(),
            Some(&late),
        ),
        (
            Method::GET,
            format!("/api/partner/messages/{conversation}"),
            None,
        ),
        (
            Method::GET,
            "/api/partner/conversations/customer-1".to_owned(),
            None,
        ),
        (
            Method::POST,
            "/api/partner/conversations".to_owned(),
            Some(&json!({"customerId": "customer-1"})),
        ),
    ] {
        let (status, error) = server.call(method.clone(), &path, Some(&token), body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {error}");
        assert_eq!(error_code(&error), "invalid_credentials", "{method} {path}");
    }
    let (status, error) = handshake(&server, &format!("clientId=customer-1&token={token}")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{error}");
    assert_eq!(error_code(&error), "invalid_credentials");
    // Nothing was stored by the late requests.
    let history = server.history(&a, conversation).await;
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0]["content"], "in time");
    assert_eq!(db.count("conversations").await, 1);
    server.assert_no_panics();
}
