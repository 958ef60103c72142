//! Browsers as clients: CORS on the partner and customer API for the partner's registered
//! domain, the per-request check of which partner a page may act for, the same rule at the
//! WebSocket handshake, and the session token carried as a WebSocket subprotocol so that it
//! stays out of the URL.

mod support;

use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{Backend, Server, TestDb};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Error as WsError;

const ACME_PAGE: &str = "https://shop.acme.test";
const GLOBEX_PAGE: &str = "https://globex.test";
const STRANGER_PAGE: &str = "https://evil.test";

/// A partner with its own domain (the kit's `register` gives every partner the same one).
struct Site {
    key: String,
}

async fn register(server: &Server, name: &str, domain: &str) -> Site {
    let (status, body) = server
        .call(
            Method::POST,
            "/api/partner/register",
            None,
            Some(&json!({"name": name, "domain": domain})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    Site {
        key: body["apiKey"].as_str().unwrap_or_default().to_owned(),
    }
}

async fn session(server: &Server, site: &Site, customer: &str) -> String {
    let (status, body) = server
        .call(
            Method::POST,
            "/api/partner/sessions",
            Some(&site.key),
            Some(&json!({"customerId": customer})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["token"].as_str().unwrap_or_default().to_owned()
}

/// A request as a page on `origin` sends it (`None`: no Origin, as a server sends it).
async fn from_page(
    server: &Server,
    origin: Option<&str>,
    method: Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> (StatusCode, Option<String>, Value) {
    let mut request = server
        .client
        .request(method, server.url(path))
        .bearer_auth(token);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = response.status();
    let allowed = response
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let body = response.json().await.unwrap_or(Value::Null);
    (status, allowed, body)
}

/// A preflight; returns its status and the `Access-Control-Allow-Origin` it grants.
async fn preflight(
    server: &Server,
    origin: &str,
    path: &str,
    method: &str,
) -> (StatusCode, Option<String>) {
    let response = server
        .client
        .request(Method::OPTIONS, server.url(path))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("preflight: {e}"));
    let allowed = response
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    (response.status(), allowed)
}

async fn message_count(db: &TestDb) -> i64 {
    db.count("messages").await
}

async fn preflights_are_answered_for_partner_domains_only(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    register(&server, "Acme", "acme.test").await;

    for origin in [ACME_PAGE, "http://acme.test:8080", "https://a.b.acme.test"] {
        let (status, allowed) = preflight(&server, origin, "/api/partner/messages", "POST").await;
        assert_eq!(status, StatusCode::OK, "{origin}");
        assert_eq!(allowed.as_deref(), Some(origin), "{origin}");
    }
    let (_, allowed) = preflight(&server, ACME_PAGE, "/api/customers/ann", "PATCH").await;
    assert_eq!(allowed.as_deref(), Some(ACME_PAGE), "the customer API too");

    // Not a partner's page, or not the partner API: no grant.
    for (origin, path) in [
        (STRANGER_PAGE, "/api/partner/messages"),
        ("https://notacme.test", "/api/partner/messages"),
        ("http://localhost:5173", "/api/partner/messages"),
        (ACME_PAGE, "/api/agent/login"),
        (ACME_PAGE, "/api/admin/agents"),
    ] {
        let (status, allowed) = preflight(&server, origin, path, "POST").await;
        assert_eq!(allowed, None, "{origin} {path}");
        assert!(status.is_client_error(), "{origin} {path}: {status}");
    }
}

async fn a_page_acts_only_for_its_own_partner(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let acme = register(&server, "Acme", "acme.test").await;
    register(&server, "Globex", "globex.test").await;
    let token = session(&server, &acme, "ann").await;

    // From Acme's own page, with Acme's customer session: answered, with the CORS grant.
    let (status, allowed, conversation) = from_page(
        &server,
        Some(ACME_PAGE),
        Method::POST,
        "/api/partner/conversations",
        &token,
        Some(&json!({"customerId": "ann"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{conversation}");
    assert_eq!(allowed.as_deref(), Some(ACME_PAGE));
    let message = json!({
        "conversationId": conversation["id"], "senderId": "ann", "content": "Hello"
    });
    let (status, _, _) = from_page(
        &server,
        Some(ACME_PAGE),
        Method::POST,
        "/api/partner/messages",
        &token,
        Some(&message),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(message_count(&db).await, 1);

    // Acme's token on Globex's page (a registered partner, so CORS alone would let it read
    // the answer) and on a stranger's: refused, nothing stored.
    for origin in [GLOBEX_PAGE, STRANGER_PAGE, "null"] {
        let (status, _, body) = from_page(
            &server,
            Some(origin),
            Method::POST,
            "/api/partner/messages",
            &token,
            Some(&message),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{origin}: {body}");
        assert_eq!(body["error"]["code"], "origin_not_allowed", "{origin}");
    }
    let (status, _, body) = from_page(
        &server,
        Some(GLOBEX_PAGE),
        Method::POST,
        "/api/partner/messages",
        &acme.key,
        Some(&message),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an API key too: {body}");
    assert_eq!(
        message_count(&db).await,
        1,
        "refused requests store nothing"
    );

    // No Origin (a partner's server, an app): no rule, as before.
    let (status, allowed, _) = from_page(
        &server,
        None,
        Method::POST,
        "/api/partner/messages",
        &token,
        Some(&message),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(allowed, None);
    assert_eq!(message_count(&db).await, 2);
}

async fn agents_work_from_this_servers_own_pages_only(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let acme = register(&server, "Acme", "acme.test").await;
    let agent = server.agent("agent@example.com", false).await;
    let own = format!("http://{}", server.addr());

    let (status, _, body) = from_page(
        &server,
        Some(ACME_PAGE),
        Method::GET,
        "/api/agent/me",
        &agent.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "origin_not_allowed");

    // The console: the server's own origin.
    let (status, allowed, body) = from_page(
        &server,
        Some(&own),
        Method::GET,
        "/api/agent/me",
        &agent.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(allowed, None, "same-origin needs no CORS grant");

    // A partner's own server may use its key with no Origin, and the server's own pages
    // (the demo) may use a customer token.
    let token = session(&server, &acme, "ann").await;
    let (status, _, body) = from_page(
        &server,
        Some(&own),
        Method::POST,
        "/api/partner/conversations",
        &token,
        Some(&json!({"customerId": "ann"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn localhost_pages_need_the_development_flag(backend: Backend) {
    let db = TestDb::new(backend).await;
    const DEV_PAGE: &str = "http://localhost:5173";
    for (flag, expected) in [
        (None, StatusCode::FORBIDDEN),
        (Some("true"), StatusCode::OK),
    ] {
        let env: Vec<(&str, &str)> = flag
            .map(|v| ("FRONTDESK_ALLOW_LOCALHOST_ORIGINS", v))
            .into_iter()
            .collect();
        let server = Server::start_with(&db, &env).await;
        let acme = register(&server, &format!("Acme {flag:?}"), "acme.test").await;
        let token = session(&server, &acme, "ann").await;
        let (status, _, body) = from_page(
            &server,
            Some(DEV_PAGE),
            Method::GET,
            "/api/partner/conversations/ann",
            &token,
            None,
        )
        .await;
        // Let through, the page sees the customer's (empty) list.
        assert_eq!(status, expected, "flag {flag:?}: {body}");
        let (_, allowed) = preflight(&server, DEV_PAGE, "/api/partner/messages", "POST").await;
        assert_eq!(
            allowed.is_some(),
            flag.is_some(),
            "preflight, flag {flag:?}"
        );
        server.terminate();
    }
}

/// Opens `/ws?{query}` as a page on `origin` would, offering `protocols`; the upgrade's
/// status, the subprotocol the server chose, and the first frame.
async fn open_socket(
    server: &Server,
    query: &str,
    origin: Option<&str>,
    protocols: Option<&str>,
) -> Result<(Option<String>, Value), (u16, Value)> {
    let url = format!("ws://{}/ws?{query}", server.addr());
    let mut request = url.into_client_request().unwrap_or_else(|e| panic!("{e}"));
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap_or_else(|e| panic!("{e}")));
    }
    if let Some(protocols) = protocols {
        request.headers_mut().insert(
            "sec-websocket-protocol",
            protocols.parse().unwrap_or_else(|e| panic!("{e}")),
        );
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((mut stream, response)) => {
            let chosen = response
                .headers()
                .get("sec-websocket-protocol")
                .map(|v| v.to_str().unwrap_or_default().to_owned());
            let frame = match stream.next().await {
                Some(Ok(message)) => {
                    serde_json::from_str(message.to_text().unwrap_or_default()).unwrap_or_default()
                }
                other => panic!("no first frame: {other:?}"),
            };
            Ok((chosen, frame))
        }
        Err(WsError::Http(response)) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_deref()
                .and_then(|bytes| serde_json::from_slice(bytes).ok())
                .unwrap_or_default();
            Err((status, body))
        }
        Err(other) => panic!("websocket: {other}"),
    }
}

async fn a_socket_takes_its_token_as_a_subprotocol_and_checks_the_page(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let acme = register(&server, "Acme", "acme.test").await;
    register(&server, "Globex", "globex.test").await;
    let token = session(&server, &acme, "ann").await;
    let offered = format!("frontdesk.v1, bearer.{token}");

    // The token travels in Sec-WebSocket-Protocol; the server answers frontdesk.v1 only.
    let (chosen, ready) = open_socket(&server, "clientId=ann", Some(ACME_PAGE), Some(&offered))
        .await
        .unwrap_or_else(|(status, body)| panic!("refused with {status}: {body}"));
    assert_eq!(chosen.as_deref(), Some("frontdesk.v1"));
    assert_eq!(ready["type"], "ready");

    // Another partner's page, a stranger's: refused before the upgrade.
    for origin in [GLOBEX_PAGE, STRANGER_PAGE] {
        match open_socket(&server, "clientId=ann", Some(origin), Some(&offered)).await {
            Err((status, body)) => {
                assert_eq!(status, 403, "{origin}");
                assert_eq!(body["error"]["code"], "origin_not_allowed", "{origin}");
            }
            Ok(_) => panic!("{origin} was let in"),
        }
    }
    // No Origin (an app) with the same token: allowed; a wrong token in the subprotocol: 401.
    assert!(open_socket(&server, "clientId=ann", None, Some(&offered))
        .await
        .is_ok());
    match open_socket(
        &server,
        "clientId=ann",
        Some(ACME_PAGE),
        Some("frontdesk.v1, bearer.fdc_not_a_session"),
    )
    .await
    {
        Err((status, body)) => {
            assert_eq!(status, 401);
            assert_eq!(body["error"]["code"], "invalid_credentials");
        }
        Ok(_) => panic!("an unknown token was let in"),
    }
    // The guide's own snippet, `?token=`, still works.
    let (chosen, ready) = open_socket(
        &server,
        &format!("clientId=ann&token={token}"),
        Some(ACME_PAGE),
        None,
    )
    .await
    .unwrap_or_else(|(status, body)| panic!("refused with {status}: {body}"));
    assert_eq!((chosen, ready["type"].as_str()), (None, Some("ready")));

    // An agent's socket from a partner's page: refused; from the console's origin: allowed.
    let agent = server.agent("agent@example.com", false).await;
    let own = format!("http://{}", server.addr());
    let agent_protocols = format!("frontdesk.v1, bearer.{}", agent.token);
    let query = format!("clientId={}", agent.client_id());
    match open_socket(&server, &query, Some(ACME_PAGE), Some(&agent_protocols)).await {
        Err((status, _)) => assert_eq!(status, 403),
        Ok(_) => panic!("an agent socket from a partner's page was let in"),
    }
    assert!(
        open_socket(&server, &query, Some(&own), Some(&agent_protocols))
            .await
            .is_ok()
    );
}

on_both_backends!(
    preflights_are_answered_for_partner_domains_only,
    a_page_acts_only_for_its_own_partner,
    agents_work_from_this_servers_own_pages_only,
    localhost_pages_need_the_development_flag,
    a_socket_takes_its_token_as_a_subprotocol_and_checks_the_page,
);
