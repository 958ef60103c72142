//! Bad input gets the right status and the JSON error shape, and changes nothing.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{error_code, Backend, TestDb};

on_both_backends!(
    bad_messages_change_nothing,
    bad_requests_elsewhere,
    bad_credentials
);

/// What the database holds, row by row and every column, so a rejected request can be shown
/// to have changed nothing: not a count that a changed or swapped row would keep.
async fn snapshot(db: &TestDb) -> Vec<(&'static str, Vec<Vec<Option<String>>>)> {
    let mut tables = Vec::new();
    for table in [
        "partners",
        "customers",
        "conversations",
        "messages",
        "customer_sessions",
        "events",
        "agents",
        "agent_sessions",
    ] {
        let rows = db
            .query_text(&format!("SELECT * FROM {table} ORDER BY 1, 2"))
            .await;
        tables.push((table, rows));
    }
    tables
}

async fn bad_messages_change_nothing(backend: Backend) {
    let (db, server, partner, conversation) =
        support::start_with_conversation(backend, "customer-1").await;
    server
        .say(&partner, conversation, "customer-1", "first")
        .await;
    let before = snapshot(&db).await;
    let history_before = server.history(&partner, conversation).await;

    let valid = json!({
        "conversationId": conversation,
        "senderId": "customer-1",
        "content": "hello",
        "isFromAgent": false
    });
    let with = |field: &str, value: Value| {
        let mut body = valid.clone();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = valid.clone();
        body.as_object_mut().map(|o| o.remove(field));
        body
    };
    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        (
            "missing conversationId",
            without("conversationId"),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            "missing content",
            without("content"),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            "missing senderId",
            without("senderId"),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            "conversationId as string",
            with("conversationId", json!("1")),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            "content as number",
            with("content", json!(5)),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            "isFromAgent as string",
            with("isFromAgent", json!("no")),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            "metadata as array",
            with("metadata", json!(["order"])),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            "metadata as string",
            with("metadata", json!("order")),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            "unknown field",
            with("contnet", json!("typo")),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            "empty content",
            with("content", json!("")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
        (
            "blank content",
            with("content", json!("   ")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
        (
            "10,001 characters",
            with("content", json!("x".repeat(10_001))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
        (
            "metadata over 16 KiB",
            with("metadata", json!({"value": "x".repeat(17 * 1024)})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
        (
            "someone else's senderId",
            with("senderId", json!("customer-2")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
        (
            "unknown conversation",
            with("conversationId", json!(conversation + 1000)),
            StatusCode::NOT_FOUND,
            "conversation_not_found",
        ),
        (
            "a partner posing as an agent",
            with("isFromAgent", json!(true)),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
    ];
    for (what, body, expected, code) in cases {
        let (status, error) = server.send_message(&partner.key, &body).await;
        assert_eq!(status, expected, "{what}: {error}");
        assert_eq!(error_code(&error), code, "{what}");
    }

    // Exactly 10,000 characters is fine (checked after, so the snapshot stays valid above).
    let (status, error) = server
        .call_raw(
            Method::POST,
            "/api/partner/messages",
            Some(&partner.key),
            b"{\"conversationId\": 1,".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&error), "malformed_json");
    let (status, error) = server
        .call_raw(
            Method::POST,
            "/api/partner/messages",
            Some(&partner.key),
            b"not json".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&error), "malformed_json");
    let oversize =
        serde_json::to_vec(&with("content", json!("x".repeat(70 * 1024)))).unwrap_or_default();
    let (status, error) = server
        .call_raw(
            Method::POST,
            "/api/partner/messages",
            Some(&partner.key),
            oversize,
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&error), "payload_too_large");

    assert_eq!(
        snapshot(&db).await,
        before,
        "a rejected request changed the database"
    );
    assert_eq!(server.history(&partner, conversation).await, history_before);

    let (status, message) = server
        .call(
            Method::POST,
            "/api/partner/messages",
            Some(&partner.key),
            Some(&with("content", json!("é".repeat(10_000)))),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    server.assert_no_panics();
}

/// Method, path, bearer token, body, expected status, expected error code.
type Case<'a> = (
    Method,
    String,
    Option<&'a str>,
    Option<Value>,
    StatusCode,
    &'a str,
);

async fn bad_requests_elsewhere(backend: Backend) {
    let (db, server, partner, conversation) =
        support::start_with_conversation(backend, "customer-1").await;
    let key = Some(partner.key.as_str());
    // Every field set, so a rejected PATCH that touched any of them would show.
    let customer = server
        .patch_customer(
            &partner,
            "customer-1",
            &json!({"email": "carla@example.com", "name": "Carla", "birthdate": "1990-01-15"}),
        )
        .await;
    // Timestamps carry milliseconds: let a wrongly applied PATCH move updatedAt visibly.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let before = snapshot(&db).await;
    let patch = |body: Value| {
        (
            Method::PATCH,
            "/api/customers/customer-1".to_owned(),
            key,
            Some(body),
        )
    };

    let cases: Vec<Case> = vec![
        (
            Method::POST,
            "/api/partner/register".into(),
            None,
            Some(json!({"name": "Acme"})),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            Method::POST,
            "/api/partner/register".into(),
            None,
            Some(json!({"name": "", "domain": "a.com"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
        (
            Method::POST,
            "/api/partner/register".into(),
            None,
            Some(json!({"name": "A", "domain": "not a domain"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
        (
            Method::POST,
            "/api/partner/conversations".into(),
            key,
            Some(json!({})),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            Method::POST,
            "/api/partner/conversations".into(),
            key,
            Some(json!({"customerId": 12345})),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            Method::POST,
            "/api/partner/conversations".into(),
            key,
            Some(json!({"customerId": "has spaces"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
        (
            Method::POST,
            "/api/partner/conversations".into(),
            key,
            Some(json!({"customerId": ""})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
        (
            Method::POST,
            "/api/partner/conversations".into(),
            key,
            Some(json!({"customerId": "agent-2"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
        (
            Method::PATCH,
            "/api/customers/customer-1".into(),
            key,
            Some(json!({"birthdate": "1990-02-30"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
        (
            Method::PATCH,
            "/api/customers/customer-1".into(),
            key,
            Some(json!({"birthdate": "15/01/1990"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
        (
            Method::PATCH,
            "/api/customers/customer-1".into(),
            key,
            Some(json!({"birthdate": "1899-12-31"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
        (
            Method::PATCH,
            "/api/customers/customer-1".into(),
            key,
            Some(json!({"birthdate": "2999-01-01"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
        (
            Method::PATCH,
            "/api/customers/customer-1".into(),
            key,
            Some(json!({"birthdate": 19900115})),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            Method::PATCH,
            "/api/customers/customer-1".into(),
            key,
            Some(json!({"email": "not-an-email"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
        (
            Method::PATCH,
            "/api/customers/customer-1".into(),
            key,
            Some(json!({"birthDate": "1990-01-15"})),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        // One bad field refuses the whole PATCH: the good ones beside it are not applied.
        {
            let (m, p, t, b) = patch(json!({"name": "New Name", "birthdate": "1990-02-30"}));
            (
                m,
                p,
                t,
                b,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_value",
            )
        },
        {
            let (m, p, t, b) = patch(json!({"email": "new@example.com", "name": "  "}));
            (
                m,
                p,
                t,
                b,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_value",
            )
        },
        {
            let (m, p, t, b) = patch(json!({"birthdate": "2000-03-01", "email": "not-an-email"}));
            (
                m,
                p,
                t,
                b,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_value",
            )
        },
        {
            let (m, p, t, b) = patch(json!({"email": null, "name": "x".repeat(201)}));
            (
                m,
                p,
                t,
                b,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_value",
            )
        },
        {
            let (m, p, t, b) = patch(json!({"name": null, "birthdate": 19900115}));
            (m, p, t, b, StatusCode::BAD_REQUEST, "invalid_field")
        },
        {
            let (m, p, t, b) = patch(json!({"name": "New Name", "nickname": "N"}));
            (m, p, t, b, StatusCode::BAD_REQUEST, "invalid_field")
        },
        // A refused PATCH of a new customer id does not create it.
        (
            Method::PATCH,
            "/api/customers/customer-new".into(),
            key,
            Some(json!({"name": "New", "email": "not-an-email"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
        (
            Method::GET,
            "/api/partner/messages/abc".into(),
            key,
            None,
            StatusCode::BAD_REQUEST,
            "invalid_path",
        ),
        (
            Method::GET,
            format!("/api/partner/messages/{conversation}?after=x"),
            key,
            None,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            Method::GET,
            format!("/api/partner/messages/{conversation}?limit=0"),
            key,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
        (
            Method::GET,
            format!("/api/partner/messages/{conversation}?after=-1"),
            key,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
        (
            Method::GET,
            "/api/partner/messages/999999".into(),
            key,
            None,
            StatusCode::NOT_FOUND,
            "conversation_not_found",
        ),
        (
            Method::POST,
            "/api/partner/sessions".into(),
            key,
            Some(json!({"customerId": "a b"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
    ];
    for (method, path, token, body, expected, code) in cases {
        let (status, error) = server
            .call(method.clone(), &path, token, body.as_ref())
            .await;
        assert_eq!(status, expected, "{method} {path} {body:?}: {error}");
        assert_eq!(error_code(&error), code, "{method} {path} {body:?}");
    }
    assert_eq!(
        snapshot(&db).await,
        before,
        "a rejected request changed the database"
    );
    // What the partner sees next: the customer exactly as it was (an empty PATCH moves only
    // updatedAt).
    let now = server
        .patch_customer(&partner, "customer-1", &json!({}))
        .await;
    for field in ["id", "email", "name", "birthdate", "createdAt"] {
        assert_eq!(now[field], customer[field], "{field}: {now}");
    }
    server.assert_no_panics();
}

async fn bad_credentials(backend: Backend) {
    let (db, server, partner, conversation) =
        support::start_with_conversation(backend, "customer-1").await;
    let before = snapshot(&db).await;
    let body = json!({"conversationId": conversation, "senderId": "customer-1", "content": "hi"});

    for (token, code) in [
        (None, "missing_credentials"),
        (
            Some("fdk_0000000000000000000000000000000000000000000000000000000000000000"),
            "invalid_credentials",
        ),
        (
            Some("fdc_0000000000000000000000000000000000000000000000000000000000000000"),
            "invalid_credentials",
        ),
        (
            Some(&partner.key[..partner.key.len() - 1]),
            "invalid_credentials",
        ),
    ] {
        for (method, path, body) in [
            (
                Method::POST,
                "/api/partner/messages".to_owned(),
                Some(&body),
            ),
            (
                Method::GET,
                format!("/api/partner/messages/{conversation}"),
                None,
            ),
            (
                Method::POST,
                "/api/partner/conversations".to_owned(),
                Some(&json!({"customerId": "x"})),
            ),
            (
                Method::GET,
                "/api/partner/conversations/customer-1".to_owned(),
                None,
            ),
            (
                Method::PATCH,
                "/api/customers/customer-1".to_owned(),
                Some(&json!({"name": "X"})),
            ),
            (
                Method::POST,
                "/api/partner/sessions".to_owned(),
                Some(&json!({"customerId": "customer-1"})),
            ),
        ] {
            let (status, error) = server.call(method.clone(), &path, token, body).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {token:?}"
            );
            assert_eq!(error_code(&error), code, "{method} {path}");
        }
    }
    // A malformed header is refused the same way.
    let response = server
        .client
        .get(server.url(&format!("/api/partner/messages/{conversation}")))
        .header("authorization", format!("Basic {}", partner.key))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
    assert_eq!(snapshot(&db).await, before);
    server.assert_no_panics();
}
