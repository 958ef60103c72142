//! A WebSocket lives no longer than the credential it opened with: logout, a customer
//! session's expiry and a partner key's rotation close it (1008), on every instance, and a
//! revocation whose signal was lost is still caught by the periodic re-check.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{error_code, Agent, Backend, Server, TestDb, WsClient};

const REVOKED: &str = "credentials revoked";
const EXPIRED: &str = "session expired";

/// A second session for an agent that already signed in once (the password of `Server::agent`).
async fn sign_in_again(server: &Server, email: &str, id: i64) -> Agent {
    let (status, session) = server
        .call(
            Method::POST,
            "/api/agent/login",
            None,
            Some(&json!({"email": email, "password": "a long enough password"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{session}");
    Agent {
        id,
        token: session["token"].as_str().unwrap_or_default().to_owned(),
    }
}

fn message(conversation: i64, content: &str) -> Value {
    json!({"type": "message", "payload": {"conversationId": conversation, "content": content}})
}

async fn contents(server: &Server, partner: &support::Partner, conversation: i64) -> Vec<String> {
    server
        .history(partner, conversation)
        .await
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn logout_closes_the_agents_sockets(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let acme = server.register("Acme").await;
    let conversation = server.conversation(&acme, "ann").await;
    let agent = server.agent("agent@example.com", false).await;
    // The same agent on another device: a session of its own, which logout must not end.
    let other_device = sign_in_again(&server, "agent@example.com", agent.id).await;
    server.assign(&agent, conversation).await;
    let mut staff = WsClient::agent(&server, &agent).await;
    let mut staff_elsewhere = WsClient::agent(&server, &other_device).await;
    let mut ann = WsClient::ready(&server, "clientId=ann", Some(&acme.key)).await;

    // Before logout the socket speaks for the agent.
    staff.send(&message(conversation, "before logout")).await;
    assert_eq!(
        staff.until("ack").await["payload"]["message"]["content"],
        "before logout"
    );

    let (status, _) = server
        .call(Method::POST, "/api/agent/logout", Some(&agent.token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // A frame sent right after the logout answered is never handled.
    staff.try_send(&message(conversation, "after logout")).await;
    assert_eq!(staff.close_reason().await, Some((1008, REVOKED.to_owned())));
    assert_eq!(
        contents(&server, &acme, conversation).await,
        ["before logout"]
    );
    // The token is refused for a new socket too.
    assert_eq!(
        WsClient::connect(&server, &agent.ws_query(), None)
            .await
            .err(),
        Some(401)
    );

    // The agent's other session and the customer are untouched.
    staff_elsewhere
        .send(&message(conversation, "still here"))
        .await;
    assert_eq!(
        staff_elsewhere.until("ack").await["payload"]["message"]["content"],
        "still here"
    );
    assert_eq!(
        ann.until("message").await["payload"]["content"],
        "before logout"
    );
    assert_eq!(
        ann.until("message").await["payload"]["content"],
        "still here"
    );
    server.assert_no_panics();
}

async fn a_customer_session_closes_at_its_expiry(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start_with(&db, &[("FRONTDESK_CUSTOMER_SESSION_SECS", "2")]).await;
    let acme = server.register("Acme").await;
    let conversation = server.conversation(&acme, "ann").await;
    let token = server.session(&acme, "ann").await;
    let mut browser = WsClient::customer(&server, "ann", &token).await;
    // The partner's own socket for ann has no expiry.
    let mut proxied = WsClient::ready(&server, "clientId=ann", Some(&acme.key)).await;

    assert_eq!(
        browser.close_reason().await,
        Some((1008, EXPIRED.to_owned()))
    );
    let (status, body) = server
        .call(
            Method::POST,
            "/api/partner/messages",
            Some(&token),
            Some(&json!({"conversationId": conversation, "senderId": "ann", "content": "late"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(
        WsClient::connect(&server, &format!("clientId=ann&token={token}"), None)
            .await
            .err(),
        Some(401)
    );
    proxied.expect_quiet().await;
    server.assert_no_panics();
}

async fn rotating_a_partner_key_closes_its_sockets(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start_with(&db, &[("FRONTDESK_ADMIN_TOKEN", "the-admin-token")]).await;
    let acme = server.register("Acme").await;
    let beta = server.register("Beta").await;
    let conversation = server.conversation(&acme, "ann").await;
    let mut old_key_socket = WsClient::ready(&server, "clientId=ann", Some(&acme.key)).await;
    let mut beta_socket = WsClient::ready(&server, "clientId=bea", Some(&beta.key)).await;
    let path = format!("/api/admin/partners/{}/rotate-key", acme.id);

    // Only administrators rotate keys, and only existing partners'.
    let agent = server.agent("agent@example.com", false).await;
    for token in [None, Some(acme.key.as_str()), Some(agent.token.as_str())] {
        let (status, body) = server.call(Method::POST, &path, token, None).await;
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN,
            "{token:?}: {status} {body}"
        );
    }
    let (status, body) = server
        .call(
            Method::POST,
            "/api/admin/partners/partner-99999999/rotate-key",
            Some("the-admin-token"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(error_code(&body), "partner_not_found");
    // The refusals changed nothing: the key still works (and is now in the key cache).
    server.history(&acme, conversation).await;

    let (status, rotated) = server
        .call(Method::POST, &path, Some("the-admin-token"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(rotated["partnerId"], acme.id.as_str());
    let new_key = rotated["apiKey"].as_str().unwrap_or_default().to_owned();
    assert!(
        new_key.starts_with("fdk_") && new_key != acme.key,
        "{rotated}"
    );

    assert_eq!(
        old_key_socket.close_reason().await,
        Some((1008, REVOKED.to_owned()))
    );
    let history = format!("/api/partner/messages/{conversation}?after=0");
    let (status, body) = server
        .call(Method::GET, &history, Some(&acme.key), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(
        WsClient::connect(&server, "clientId=ann", Some(&acme.key))
            .await
            .err(),
        Some(401)
    );
    let (status, body) = server
        .call(Method::GET, &history, Some(&new_key), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut new_key_socket = WsClient::ready(&server, "clientId=ann", Some(&new_key)).await;
    new_key_socket.expect_quiet().await;
    // Another partner is untouched.
    beta_socket.expect_quiet().await;

    // An admin agent may rotate too.
    let admin = server.agent("admin@example.com", true).await;
    let (status, body) = server
        .call(Method::POST, &path, Some(&admin.token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        new_key_socket.close_reason().await,
        Some((1008, REVOKED.to_owned()))
    );
    server.assert_no_panics();
}

/// A revocation that never reached the socket (here: the session deleted behind the server's
/// back, so no signal at all) is caught by the periodic re-check.
async fn the_periodic_recheck_catches_a_lost_revocation(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start_with(&db, &[("FRONTDESK_WS_RECHECK_SECS", "1")]).await;
    let acme = server.register("Acme").await;
    let agent = server.agent("agent@example.com", false).await;
    let mut staff = WsClient::agent(&server, &agent).await;
    let mut proxied = WsClient::ready(&server, "clientId=ann", Some(&acme.key)).await;
    db.execute("DELETE FROM agent_sessions").await;
    assert_eq!(staff.close_reason().await, Some((1008, REVOKED.to_owned())));
    // Valid credentials survive their re-checks.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    proxied.expect_quiet().await;
    server.assert_no_panics();
}

on_both_backends!(
    logout_closes_the_agents_sockets,
    a_customer_session_closes_at_its_expiry,
    rotating_a_partner_key_closes_its_sockets,
    the_periodic_recheck_catches_a_lost_revocation,
);

/// Logout through instance A closes the agent's socket on instance B at once, and a key
/// rotated through A stops working on B (the signal crosses instances through PostgreSQL; the
/// re-check is set far beyond the test's patience).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_reach_every_instance() {
    if !Backend::Postgres.enabled() {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let slow_recheck = [
        ("FRONTDESK_WS_RECHECK_SECS", "3600"),
        ("FRONTDESK_ADMIN_TOKEN", "the-admin-token"),
    ];
    let a = Server::start_with(&db, &slow_recheck).await;
    let b = Server::start_with(&db, &slow_recheck).await;
    let acme = a.register("Acme").await;
    let conversation = a.conversation(&acme, "ann").await;
    let agent = a.agent("agent@example.com", false).await;
    a.assign(&agent, conversation).await;
    let mut on_b = WsClient::agent(&b, &agent).await;
    on_b.send(&message(conversation, "from B")).await;
    on_b.until("ack").await;

    let (status, _) = a
        .call(Method::POST, "/api/agent/logout", Some(&agent.token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(on_b.close_reason().await, Some((1008, REVOKED.to_owned())));
    assert_eq!(contents(&a, &acme, conversation).await, ["from B"]);

    // A partner key rotated through A: B forgets it from its key cache (where the request
    // below puts it) and closes the sockets opened with it, long before the cache's TTL.
    let mut key_on_b = WsClient::ready(&b, "clientId=ann", Some(&acme.key)).await;
    let history = format!("/api/partner/messages/{conversation}?after=0");
    let (status, _) = b.call(Method::GET, &history, Some(&acme.key), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = a
        .call(
            Method::POST,
            &format!("/api/admin/partners/{}/rotate-key", acme.id),
            Some("the-admin-token"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        key_on_b.close_reason().await,
        Some((1008, REVOKED.to_owned()))
    );
    let started = std::time::Instant::now();
    loop {
        let (status, _) = b.call(Method::GET, &history, Some(&acme.key), None).await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "instance B still accepts the rotated key"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for server in [&a, &b] {
        server.assert_no_panics();
    }
}
