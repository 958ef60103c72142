//! Who may open a WebSocket, and how many: the caps per customer, agent, partner and instance
//! (429 before any upgrade, for the offender alone), and a `since` the log has not reached.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{error_code, Backend, Server, TestDb, WsClient};

/// A handshake as a browser sends it, read as plain HTTP: what a refused client sees.
async fn handshake(
    server: &Server,
    query: &str,
    bearer: Option<&str>,
) -> (u16, Option<u64>, Value) {
    let mut request = server
        .client
        .get(server.url(&format!("/ws?{query}")))
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("handshake {query}: {e}"));
    let status = response.status().as_u16();
    assert_ne!(status, 101, "{query} was upgraded");
    let retry_after = support::retry_after(&response);
    let text = tokio::time::timeout(Duration::from_secs(10), response.text())
        .await
        .unwrap_or_else(|_| panic!("no body for {query}"))
        .unwrap_or_default();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{query} answered {status} with non-JSON {text:?}: {e}"));
    (status, retry_after, body)
}

/// Asserts the handshake is refused with 429 `too_many_connections`, Retry-After, and a
/// message naming `cap`; and that a real WebSocket client sees the 429 without an upgrade.
async fn assert_refused(server: &Server, query: &str, bearer: Option<&str>, cap: &str) {
    let (status, retry_after, body) = handshake(server, query, bearer).await;
    assert_eq!(status, 429, "{query}: {body}");
    assert_eq!(error_code(&body), "too_many_connections", "{body}");
    assert!(
        retry_after.is_some_and(|s| s >= 1),
        "no Retry-After for {query}"
    );
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(cap),
        "{query}: expected the {cap} cap in {message:?}"
    );
    assert_eq!(
        WsClient::connect(server, query, bearer).await.err(),
        Some(429),
        "{query}"
    );
}

/// A place freed by a closed socket comes back once the server has seen the close.
async fn ready_once_freed(server: &Server, query: &str, bearer: Option<&str>) -> WsClient {
    let started = Instant::now();
    loop {
        match WsClient::connect(server, query, bearer).await {
            Ok(mut client) => {
                client.expect("ready").await;
                return client;
            }
            Err(429) if started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("{query}: {status} after a place was freed"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caps_per_customer_agent_partner_and_instance() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start_with(
        &db,
        &[
            ("FRONTDESK_WS_MAX_PER_CUSTOMER", "3"),
            ("FRONTDESK_WS_MAX_PER_AGENT", "2"),
            ("FRONTDESK_WS_MAX_PER_PARTNER", "5"),
            ("FRONTDESK_WS_MAX_CONNECTIONS", "9"),
        ],
    )
    .await;
    let acme = server.register("Acme").await;
    let beta = server.register("Beta").await;
    let agent = server.agent("agent@example.com", false).await;
    let ann = server.session(&acme, "ann").await;
    let ann_query = format!("clientId=ann&token={ann}");
    let by_key = |customer: &str| format!("clientId={customer}");

    // One customer up to its cap (by session token and by the partner's key: both count).
    let mut anns = Vec::new();
    for _ in 0..2 {
        anns.push(WsClient::ready(&server, &ann_query, None).await);
    }
    anns.push(WsClient::ready(&server, &by_key("ann"), Some(&acme.key)).await);
    assert_refused(&server, &ann_query, None, "customer").await;
    assert_refused(&server, &by_key("ann"), Some(&acme.key), "customer").await;
    // Another customer of the same partner still connects.
    let bob = WsClient::ready(&server, &by_key("bob"), Some(&acme.key)).await;
    // Closing one of ann's frees a place for her.
    anns.remove(0).close().await;
    anns.push(ready_once_freed(&server, &ann_query, None).await);

    // The partner's cap: ann 3 + bob 1 + carl 1 = 5; a fourth customer is refused, while a
    // customer of another partner connects.
    let mut carl = WsClient::ready(&server, &by_key("carl"), Some(&acme.key)).await;
    assert_refused(&server, &by_key("dave"), Some(&acme.key), "partner").await;
    let eve = WsClient::ready(&server, &by_key("eve"), Some(&beta.key)).await;
    bob.close().await;
    let mut dave = ready_once_freed(&server, &by_key("dave"), Some(&acme.key)).await;

    // An agent's own cap (7 sockets so far, 9 allowed).
    let mut staff = [
        WsClient::agent(&server, &agent).await,
        WsClient::agent(&server, &agent).await,
    ];
    assert_refused(&server, &agent.ws_query(), None, "agent").await;

    // The instance's cap: the 9th socket fits, the 10th does not, whoever asks.
    let mut frank = WsClient::ready(&server, &by_key("frank"), Some(&beta.key)).await;
    assert_refused(&server, &by_key("gina"), Some(&beta.key), "server").await;
    eve.close().await;
    let mut gina = ready_once_freed(&server, &by_key("gina"), Some(&beta.key)).await;

    // Everyone admitted is served as usual.
    for client in anns.iter_mut().chain(staff.iter_mut()) {
        client.expect_quiet().await;
    }
    for client in [&mut carl, &mut dave, &mut frank, &mut gina] {
        client.expect_quiet().await;
    }
    server.assert_no_panics();
}

/// Admission is checked and recorded under one lock: a burst of handshakes for one customer
/// gets exactly the cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_handshakes_cannot_overshoot_the_cap() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start_with(&db, &[("FRONTDESK_WS_MAX_PER_CUSTOMER", "3")]).await;
    let acme = server.register("Acme").await;
    let attempts = (0..40).map(|_| WsClient::connect(&server, "clientId=ann", Some(&acme.key)));
    let results = futures_util::future::join_all(attempts).await;
    let admitted = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| r.as_ref().err() == Some(&429))
        .count();
    assert_eq!((admitted, refused), (3, 37));
    server.assert_no_panics();
}

/// A `since` the log has not reached would skip every live event up to it: refused with 400
/// before the upgrade. The newest cursor itself is fine.
async fn since_beyond_the_newest_cursor_is_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let acme = server.register("Acme").await;
    let conversation = server.conversation(&acme, "ann").await;
    let mut first = WsClient::ready(&server, "clientId=ann", Some(&acme.key)).await;
    let newest = first.cursor;
    assert!(newest > 0, "the conversation's event has a cursor");

    let ahead = format!("clientId=ann&since={}", newest + 1_000);
    let (status, _, body) = handshake(&server, &ahead, Some(&acme.key)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_code(&body), "invalid_query");
    assert_eq!(
        WsClient::connect(&server, &ahead, Some(&acme.key))
            .await
            .err(),
        Some(400)
    );

    // At the newest cursor the client catches up and then hears live events.
    let mut resumed = WsClient::ready(
        &server,
        &format!("clientId=ann&since={newest}"),
        Some(&acme.key),
    )
    .await;
    server.say(&acme, conversation, "ann", "live").await;
    assert_eq!(
        resumed.expect("message").await["payload"]["content"],
        "live"
    );
    assert_eq!(first.expect("message").await["payload"]["content"], "live");
    server.assert_no_panics();
}

on_both_backends!(since_beyond_the_newest_cursor_is_refused);
