//! The integration guide's partner flow, route by route, against the real server on both
//! backends: status codes, every field name and type, timestamps, ordering.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{assert_timestamp, error_code, keys, Backend, Server, TestDb};

on_both_backends!(
    register_returns_the_guides_fields,
    conversations_are_created_and_listed,
    messages_are_stored_and_paged,
    customers_are_patched,
    customer_sessions_speak_for_one_customer,
    health_and_unknown_routes,
    admin_only_registration,
    sigterm_stops_cleanly,
);

async fn register_returns_the_guides_fields(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let (status, body) = server
        .call(
            Method::POST,
            "/api/partner/register",
            None,
            Some(&json!({"name": "Your Company Name", "domain": "yourdomain.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        keys(&body),
        ["apiKey", "domain", "message", "name", "partnerId"]
    );
    assert_eq!(body["message"], "Partner successfully registered");
    assert_eq!(body["name"], "Your Company Name");
    assert_eq!(body["domain"], "yourdomain.com");
    let partner_id = body["partnerId"].as_str().unwrap_or_default();
    assert!(partner_id.starts_with("partner-"), "{partner_id}");
    let key = body["apiKey"].as_str().unwrap_or_default();
    assert!(
        key.len() >= 64,
        "API key too short to hold 32 random bytes: {key}"
    );

    // The key works, and a second partner gets a different one.
    let (status, _) = server
        .call(
            Method::POST,
            "/api/partner/conversations",
            Some(key),
            Some(&json!({"customerId": "c1"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let other = server.register("Other").await;
    assert_ne!(other.key, key);
    assert_ne!(other.id, partner_id);
}

async fn conversations_are_created_and_listed(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let partner = server.register("Acme").await;

    let (status, first) = server
        .call(
            Method::POST,
            "/api/partner/conversations",
            Some(&partner.key),
            Some(&json!({"customerId": "customer-12345"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        keys(&first),
        [
            "agentId",
            "createdAt",
            "customerId",
            "id",
            "status",
            "updatedAt"
        ]
    );
    assert!(first["id"].is_i64());
    assert_eq!(first["customerId"], "customer-12345");
    assert_eq!(first["status"], "waiting");
    assert_eq!(first["agentId"], Value::Null);
    assert_timestamp(&first["createdAt"]);
    assert_timestamp(&first["updatedAt"]);

    let second = server.conversation(&partner, "customer-12345").await;
    server.conversation(&partner, "someone-else").await;
    assert!(second > first["id"].as_i64().unwrap_or(i64::MAX));

    let (status, list) = server
        .call(
            Method::GET,
            "/api/partner/conversations/customer-12345",
            Some(&partner.key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<i64> = list
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["id"].as_i64()).collect())
        .unwrap_or_default();
    assert_eq!(ids, [first["id"].as_i64().unwrap_or_default(), second]);
    assert!(list.as_array().is_some_and(|a| a
        .iter()
        .all(|c| c["customerId"] == "customer-12345" && c["status"] == "waiting")));

    // A filter, not a look-up: a customer never mentioned has no conversations (`200 []`).
    let (status, body) = server
        .call(
            Method::GET,
            "/api/partner/conversations/nobody",
            Some(&partner.key),
            None,
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!([])));
}

async fn messages_are_stored_and_paged(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let partner = server.register("Acme").await;
    let conversation = server.conversation(&partner, "customer-12345").await;
    let (_, opened) = server
        .call(
            Method::GET,
            "/api/partner/conversations/customer-12345",
            Some(&partner.key),
            None,
        )
        .await;
    let opened_at = opened[0]["updatedAt"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_timestamp(&opened[0]["updatedAt"]);
    // Timestamps carry milliseconds: a pause lets a change move them visibly.
    tick().await;

    let (status, message) = server
        .call(
            Method::POST,
            "/api/partner/messages",
            Some(&partner.key),
            Some(&json!({
                "conversationId": conversation,
                "senderId": "customer-12345",
                "content": "Hello, I need help with my order",
                "isFromAgent": false,
                "metadata": {"commandType": "order_lookup", "value": "ORD-12345"}
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        keys(&message),
        [
            "content",
            "conversationId",
            "id",
            "isFromAgent",
            "metadata",
            "readStatus",
            "senderId",
            "timestamp"
        ]
    );
    assert!(message["id"].is_i64());
    assert_eq!(message["conversationId"], conversation);
    assert_eq!(message["senderId"], "customer-12345");
    assert_eq!(message["content"], "Hello, I need help with my order");
    assert_eq!(message["isFromAgent"], false);
    assert_eq!(message["readStatus"], false);
    assert_eq!(
        message["metadata"],
        json!({"commandType": "order_lookup", "value": "ORD-12345"})
    );
    assert_timestamp(&message["timestamp"]);

    for n in 2..=5 {
        server
            .say(
                &partner,
                conversation,
                "customer-12345",
                &format!("message {n}"),
            )
            .await;
    }
    let all = server.history(&partner, conversation).await;
    assert_eq!(all.len(), 5);
    assert_eq!(
        all[0], message,
        "history returns exactly what was acknowledged"
    );
    assert!(all
        .windows(2)
        .all(|w| w[0]["id"].as_i64() < w[1]["id"].as_i64()));
    assert!(all
        .windows(2)
        .all(|w| w[0]["timestamp"].as_str() <= w[1]["timestamp"].as_str()));
    assert!(all[1].get("metadata").is_none(), "no metadata, no field");

    // after= is exclusive; limit= caps the page.
    let after = all[1]["id"].as_i64().unwrap_or_default();
    let (status, page) = server
        .call(
            Method::GET,
            &format!("/api/partner/messages/{conversation}?after={after}&limit=2"),
            Some(&partner.key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page, json!([all[2], all[3]]));
    let last = all[4]["id"].as_i64().unwrap_or_default();
    let (_, empty) = server
        .call(
            Method::GET,
            &format!("/api/partner/messages/{conversation}?after={last}"),
            Some(&partner.key),
            None,
        )
        .await;
    assert_eq!(empty, json!([]));

    // A new message moves the conversation's updatedAt, to no earlier than the message.
    let (_, list) = server
        .call(
            Method::GET,
            "/api/partner/conversations/customer-12345",
            Some(&partner.key),
            None,
        )
        .await;
    assert_timestamp(&list[0]["updatedAt"]);
    assert_timestamp(&all[4]["timestamp"]);
    let moved = list[0]["updatedAt"].as_str().unwrap_or_default();
    assert!(moved > opened_at.as_str(), "{moved} not after {opened_at}");
    assert!(
        moved >= all[4]["timestamp"].as_str().unwrap_or_default(),
        "{moved} before the last message {}",
        all[4]["timestamp"]
    );
    assert_eq!(list[0]["createdAt"], opened[0]["createdAt"]);
}

/// Timestamps carry milliseconds: a pause between two changes gives each its own.
async fn tick() {
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
}

async fn customers_are_patched(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let partner = server.register("Acme").await;
    let path = "/api/customers/customer-12345";

    let (status, created) = server
        .call(
            Method::PATCH,
            path,
            Some(&partner.key),
            Some(&json!({"email": "customer@example.com", "name": "John Doe", "birthdate": "1990-01-15"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        keys(&created),
        ["birthdate", "createdAt", "email", "id", "name", "updatedAt"]
    );
    assert_eq!(created["id"], "customer-12345");
    assert_eq!(created["email"], "customer@example.com");
    assert_eq!(created["name"], "John Doe");
    assert_eq!(created["birthdate"], "1990-01-15");
    assert_timestamp(&created["createdAt"]);
    assert_timestamp(&created["updatedAt"]);

    // The Flashback profile is stored with the birthdate (the docs' worked example).
    let stored = db
        .query_text("SELECT flashback FROM customers WHERE id = 'customer-12345'")
        .await;
    let flashback: Value = serde_json::from_str(
        stored[0][0]
            .as_deref()
            .unwrap_or_else(|| panic!("no flashback stored")),
    )
    .unwrap_or_default();
    assert_eq!(
        flashback["firstEventDate"],
        json!({"month": "April", "year": 1999})
    );
    assert_eq!(flashback["secondEventTrait"], "Principled");

    // Left-out fields stay; null clears.
    tick().await;
    let (status, patched) = server
        .call(
            Method::PATCH,
            path,
            Some(&partner.key),
            Some(&json!({"name": "Jane Doe", "email": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched["name"], "Jane Doe");
    assert_eq!(patched["email"], Value::Null);
    assert_eq!(patched["birthdate"], "1990-01-15");
    assert_eq!(patched["createdAt"], created["createdAt"]);
    assert!(
        patched["updatedAt"].as_str() > created["updatedAt"].as_str(),
        "{} not after {}",
        patched["updatedAt"],
        created["updatedAt"]
    );

    // `{}` changes nothing but updatedAt.
    tick().await;
    let (status, touched) = server
        .call(Method::PATCH, path, Some(&partner.key), Some(&json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{touched}");
    for field in ["id", "email", "name", "birthdate", "createdAt"] {
        assert_eq!(touched[field], patched[field], "{field}");
    }
    assert!(
        touched["updatedAt"].as_str() > patched["updatedAt"].as_str(),
        "{} not after {}",
        touched["updatedAt"],
        patched["updatedAt"]
    );

    // Clearing the birthdate clears the profile.
    let (status, cleared) = server
        .call(
            Method::PATCH,
            path,
            Some(&partner.key),
            Some(&json!({"birthdate": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cleared}");
    assert_eq!(cleared["birthdate"], Value::Null);
    assert_eq!(cleared["name"], "Jane Doe", "a left-out field stays");
    let stored = db
        .query_text("SELECT flashback FROM customers WHERE id = 'customer-12345'")
        .await;
    assert_eq!(stored, vec![vec![None]]);

    // A customer created by a conversation can be patched too, and then lists it.
    server.conversation(&partner, "new-customer").await;
    let (status, body) = server
        .call(
            Method::PATCH,
            "/api/customers/new-customer",
            Some(&partner.key),
            Some(&json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["email"], Value::Null);
    assert_eq!(body["birthdate"], Value::Null);
}

async fn customer_sessions_speak_for_one_customer(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let partner = server.register("Acme").await;
    let mine = server.conversation(&partner, "ann").await;
    let theirs = server.conversation(&partner, "bob").await;

    let (status, session) = server
        .call(
            Method::POST,
            "/api/partner/sessions",
            Some(&partner.key),
            Some(&json!({"customerId": "ann"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(keys(&session), ["customerId", "expiresAt", "token"]);
    assert_eq!(session["customerId"], "ann");
    assert_timestamp(&session["expiresAt"]);
    let token = session["token"].as_str().unwrap_or_default();
    assert_ne!(token, partner.key);

    // The browser token works for its own customer ...
    let (status, _) = server
        .call(
            Method::POST,
            "/api/partner/messages",
            Some(token),
            Some(&json!({"conversationId": mine, "senderId": "ann", "content": "hi"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, list) = server
        .call(
            Method::GET,
            "/api/partner/conversations/ann",
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list[0]["id"], mine);

    // ... and for nobody else's.
    let (status, _) = server
        .call(
            Method::GET,
            &format!("/api/partner/messages/{theirs}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .call(
            Method::POST,
            "/api/partner/messages",
            Some(token),
            Some(&json!({"conversationId": theirs, "senderId": "bob", "content": "spoof"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .call(
            Method::GET,
            "/api/partner/conversations/bob",
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server
        .call(
            Method::PATCH,
            "/api/customers/ann",
            Some(token),
            Some(&json!({"name": "Ann"})),
        )
        .await;
    // Issue 12: a valid customer token is recognised and refused (403), not "unknown" (401).
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "PATCH needs the partner's key"
    );
    assert_eq!(server.history(&partner, theirs).await.len(), 0);
}

async fn health_and_unknown_routes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let (status, body) = server.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ok"}));
    let (status, body) = server.call(Method::GET, "/api/nothing", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "route_not_found");
}

async fn admin_only_registration(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start_with(
        &db,
        &[
            ("FRONTDESK_REGISTRATION", "admin"),
            ("FRONTDESK_ADMIN_TOKEN", "s3cret-admin-token"),
        ],
    )
    .await;
    let body = json!({"name": "Acme", "domain": "acme.com"});
    let (status, error) = server
        .call(Method::POST, "/api/partner/register", None, Some(&body))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&error), "admin_token_required");
    let (status, _) = server
        .call(
            Method::POST,
            "/api/partner/register",
            Some("wrong"),
            Some(&body),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(db.count("partners").await, 0);
    let (status, _) = server
        .call(
            Method::POST,
            "/api/partner/register",
            Some("s3cret-admin-token"),
            Some(&body),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(db.count("partners").await, 1);
}

/// SIGTERM while messages are being posted: every request is answered in full (201 with the
/// stored message) or refused before it is read (no answer at all, nothing stored); never a
/// 5xx, a cut-off body or a message stored without an answer. The server says it stopped and
/// exits 0; restarted, it holds exactly the acknowledged messages and keeps working.
async fn sigterm_stops_cleanly(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let partner = server.register("Acme").await;
    let conversation = server.conversation(&partner, "customer-1").await;
    // Eight senders post one message after another, each on a new connection, until the
    // server stops taking them: whenever the signal lands, requests are in flight.
    let senders = 8;
    let answered = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..senders)
        .map(|sender| {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap_or_else(|e| panic!("{e}"));
            let url = server.url("/api/partner/messages");
            let key = partner.key.clone();
            let answered = Arc::clone(&answered);
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for n in 0.. {
                    let content = format!("sender {sender} message {n}");
                    let body = json!({"conversationId": conversation, "senderId": "customer-1",
                        "content": content});
                    let response =
                        match client.post(&url).bearer_auth(&key).json(&body).send().await {
                            Ok(response) => response,
                            // Refused or closed unanswered: the server was no longer taking it.
                            Err(_) => break,
                        };
                    let status = response.status();
                    let text = response
                        .text()
                        .await
                        .unwrap_or_else(|e| panic!("{content}: answer cut off: {e}"));
                    answered.fetch_add(1, Ordering::Relaxed);
                    answers.push((content, status, text));
                }
                answers
            })
        })
        .collect();
    while answered.load(Ordering::Relaxed) < 40 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.send_sigterm();
    let mut acknowledged = Vec::new();
    for task in tasks {
        for (content, status, text) in task.await.unwrap_or_else(|e| panic!("{e}")) {
            let body: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{content}: {status} with non-JSON {text:?}: {e}"));
            assert_eq!(status, StatusCode::CREATED, "{content}: {body}");
            assert_eq!(body["content"], content);
            acknowledged.push(body);
        }
    }
    assert!(acknowledged.len() >= 40, "{} answered", acknowledged.len());
    let (status, log) = tokio::task::spawn_blocking(move || server.wait_for_exit())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        status.success(),
        "frontdesk exited with {status} on SIGTERM:\n{log}"
    );
    support::assert_stopped_in_order(&log);
    assert!(!log.contains("panicked"), "{log}");

    // Restarted on the same database: the same key, exactly the acknowledged messages.
    let server = Server::start(&db).await;
    acknowledged.sort_by_key(|m| m["id"].as_i64());
    assert_eq!(
        server.history(&partner, conversation).await,
        acknowledged,
        "stored messages are exactly the answered ones ({} answered)",
        acknowledged.len()
    );
    let next = server
        .say(&partner, conversation, "customer-1", "after restart")
        .await;
    let last = acknowledged.last().and_then(|m| m["id"].as_i64());
    assert!(last.is_some() && next["id"].as_i64() > last);
}
