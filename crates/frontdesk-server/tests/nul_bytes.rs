//! Finding 10 of issue 12: a NUL (U+0000) in any text a client sends is refused with 422
//! `invalid_value` naming the field, on both backends, over REST and WebSocket, and never costs
//! the other messages of the same moment anything (PostgreSQL used to fail the whole batch
//! with a 500).

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{error_code, Backend, Server, TestDb, WsClient};

const NUL: &str = "a\u{0}b";

/// Asserts 422 `invalid_value` for `field`.
fn assert_refused(status: StatusCode, body: &Value, field: &str, what: &str) {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {body}");
    assert_eq!(error_code(body), "invalid_value", "{what}: {body}");
    assert_eq!(body["error"]["field"], field, "{what}: {body}");
}

async fn nul_in_every_rest_text_field_is_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start_with(&db, &[("FRONTDESK_ADMIN_TOKEN", "admin-secret")]).await;
    let partner = server.register("Acme").await;
    let conversation = server.conversation(&partner, "ann").await;
    let message = |extra: Value| {
        let mut body = json!({"conversationId": conversation, "senderId": "ann", "content": "hi"});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        body
    };
    let cases: Vec<(&str, &str, Option<&str>, Value, &str)> = vec![
        (
            "POST",
            "/api/partner/messages",
            Some(&partner.key),
            message(json!({"content": NUL})),
            "content",
        ),
        (
            "POST",
            "/api/partner/messages",
            Some(&partner.key),
            message(json!({"metadata": {"k": NUL}})),
            "metadata",
        ),
        (
            "POST",
            "/api/partner/messages",
            Some(&partner.key),
            message(json!({"metadata": {NUL: 1}})),
            "metadata",
        ),
        (
            "POST",
            "/api/partner/messages",
            Some(&partner.key),
            message(json!({"metadata": {"k": [{"deep": NUL}]}})),
            "metadata",
        ),
        (
            "POST",
            "/api/partner/messages",
            Some(&partner.key),
            message(json!({"clientMessageId": NUL})),
            "clientMessageId",
        ),
        (
            "POST",
            "/api/partner/messages",
            Some(&partner.key),
            message(json!({"senderId": NUL})),
            "senderId",
        ),
        (
            "POST",
            "/api/partner/conversations",
            Some(&partner.key),
            json!({"customerId": NUL}),
            "customerId",
        ),
        (
            "POST",
            "/api/partner/sessions",
            Some(&partner.key),
            json!({"customerId": NUL}),
            "customerId",
        ),
        (
            "PATCH",
            "/api/customers/ann",
            Some(&partner.key),
            json!({"name": NUL}),
            "name",
        ),
        (
            "PATCH",
            "/api/customers/ann",
            Some(&partner.key),
            json!({"email": "a\u{0}@example.com"}),
            "email",
        ),
        (
            "POST",
            "/api/partner/register",
            None,
            json!({"name": NUL, "domain": "x.example.com"}),
            "name",
        ),
        (
            "POST",
            "/api/partner/register",
            None,
            json!({"name": "X", "domain": NUL}),
            "domain",
        ),
        (
            "POST",
            "/api/admin/agents",
            Some("admin-secret"),
            json!({"email": "a\u{0}@example.com", "name": "A", "password": "long enough password"}),
            "email",
        ),
        (
            "POST",
            "/api/admin/agents",
            Some("admin-secret"),
            json!({"email": "a@example.com", "name": NUL, "password": "long enough password"}),
            "name",
        ),
    ];
    for (method, path, token, body, field) in cases {
        let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::POST);
        let (status, answer) = server.call(method, path, token, Some(&body)).await;
        assert_refused(status, &answer, field, &format!("{path} {body}"));
    }
    // An agent's reply goes through the same rule.
    let agent = server.agent("agent@example.com", false).await;
    server.assign(&agent, conversation).await;
    let (status, answer) = server
        .call(
            Method::POST,
            &format!("/api/agent/conversations/{conversation}/messages"),
            Some(&agent.token),
            Some(&json!({"content": NUL})),
        )
        .await;
    assert_refused(status, &answer, "content", "agent reply");
    // Signing in with a NUL in the email is simply a wrong sign-in, not a database error.
    let (status, answer) = server
        .call(
            Method::POST,
            "/api/agent/login",
            None,
            Some(&json!({"email": "a\u{0}@example.com", "password": "whatever it is"})),
        )
        .await;
    assert!(
        status == StatusCode::UNAUTHORIZED || status == StatusCode::UNPROCESSABLE_ENTITY,
        "login with NUL: {status} {answer}"
    );
    // Nothing was stored, and the server still works.
    assert_eq!(db.count("messages").await, 0);
    server
        .say(&partner, conversation, "ann", "still fine")
        .await;
    assert!(!server.log().contains("store failure"), "{}", server.log());
    server.assert_no_panics();
}

async fn nul_over_websocket_gets_an_error_frame_and_harms_no_one(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let partner = server.register("Acme").await;
    let conversation = server.conversation(&partner, "ann").await;
    let other = server.conversation(&partner, "bob").await;
    let token = server.session(&partner, "ann").await;
    let mut ann = WsClient::customer(&server, "ann", &token).await;
    let frame = |content: &str, client_id: &str| {
        json!({"type": "message", "payload": {
            "conversationId": conversation, "content": content, "clientMessageId": client_id}})
    };
    // The bad frame and good ones at the same moment: the good ones share its batch (or not),
    // and must be stored either way.
    let rest = {
        let server_base = server.base.clone();
        let key = partner.key.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut statuses = Vec::new();
            for i in 0..5 {
                let response = client
                    .post(format!("{server_base}/api/partner/messages"))
                    .bearer_auth(&key)
                    .json(&json!({"conversationId": other, "senderId": "bob", "content": format!("bob {i}")}))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("send: {e}"));
                statuses.push(response.status());
            }
            statuses
        })
    };
    ann.send(&frame("before", "c-1")).await;
    ann.send(&frame(NUL, "c-2")).await;
    ann.send(&json!({"type": "message", "payload": {
        "conversationId": conversation, "content": "meta", "metadata": {"x": NUL}, "clientMessageId": "c-3"}}))
        .await;
    ann.send(&frame("after", "c-4")).await;
    let mut errors = Vec::new();
    let mut stored = Vec::new();
    while errors.len() < 2 || stored.len() < 2 {
        let frame = ann.next().await;
        match frame["type"].as_str() {
            Some("error") => errors.push(frame),
            Some("message") => stored.push(frame["payload"]["content"].clone()),
            _ => {}
        }
    }
    for error in &errors {
        assert_eq!(error["payload"]["code"], "invalid_value", "{error}");
    }
    let refused: Vec<&Value> = errors
        .iter()
        .map(|e| &e["payload"]["clientMessageId"])
        .collect();
    assert_eq!(refused, [&json!("c-2"), &json!("c-3")]);
    assert_eq!(stored, [json!("before"), json!("after")]);
    let statuses = rest.await.unwrap_or_else(|e| panic!("join: {e}"));
    assert!(
        statuses.iter().all(|s| *s == StatusCode::CREATED),
        "{statuses:?}"
    );
    let history: Vec<Value> = server
        .history(&partner, conversation)
        .await
        .into_iter()
        .map(|m| m["content"].clone())
        .collect();
    assert_eq!(history, [json!("before"), json!("after")]);
    assert_eq!(server.history(&partner, other).await.len(), 5);
    server.assert_no_panics();
}

on_both_backends!(
    nul_in_every_rest_text_field_is_refused,
    nul_over_websocket_gets_an_error_frame_and_harms_no_one,
);
