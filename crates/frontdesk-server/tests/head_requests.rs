//! `HEAD` answers on every `GET` route (issue 17): the same status and headers as the `GET`,
//! `content-length` included, and no body; and it changes nothing.

mod support;

use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG};
use reqwest::{Method, StatusCode};
use support::{Backend, Server, TestDb};

on_both_backends!(head_answers_every_get_route_like_the_get_without_a_body);

async fn head_answers_every_get_route_like_the_get_without_a_body(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let partner = server.register("Acme").await;
    let conversation = server.conversation(&partner, "ann").await;
    server.say(&partner, conversation, "ann", "Hello").await;
    let agent = server.agent("agent@example.com", false).await;
    let key = partner.key.as_str();
    let token = agent.token.as_str();
    let routes: Vec<(String, Option<&str>, StatusCode)> = vec![
        ("/healthz".into(), None, StatusCode::OK),
        (
            "/api/partner/conversations/ann".into(),
            Some(key),
            StatusCode::OK,
        ),
        (
            format!("/api/partner/messages/{conversation}"),
            Some(key),
            StatusCode::OK,
        ),
        ("/api/agent/me".into(), Some(token), StatusCode::OK),
        (
            "/api/agent/conversations".into(),
            Some(token),
            StatusCode::OK,
        ),
        (
            format!("/api/agent/conversations/{conversation}"),
            Some(token),
            StatusCode::OK,
        ),
        (
            format!("/api/agent/conversations/{conversation}/messages"),
            Some(token),
            StatusCode::OK,
        ),
        ("/widget/chat-widget.js".into(), None, StatusCode::OK),
        ("/demo/".into(), None, StatusCode::OK),
        ("/demo/demo.js".into(), None, StatusCode::OK),
        ("/console/".into(), None, StatusCode::OK),
        ("/console/console.js".into(), None, StatusCode::OK),
        ("/console/console.css".into(), None, StatusCode::OK),
        // Errors too: the same status, the same JSON error's length.
        ("/api/agent/me".into(), None, StatusCode::UNAUTHORIZED),
        (
            "/api/partner/messages/999".into(),
            Some(key),
            StatusCode::NOT_FOUND,
        ),
        ("/ws?clientId=ann".into(), None, StatusCode::UNAUTHORIZED),
    ];
    for (path, bearer, expected) in &routes {
        let send = |method: Method| {
            let mut request = server.client.request(method, server.url(path));
            if let Some(bearer) = bearer {
                request = request.bearer_auth(bearer);
            }
            request.send()
        };
        let get = send(Method::GET)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let head = send(Method::HEAD)
            .await
            .unwrap_or_else(|e| panic!("HEAD {path}: {e}"));
        assert_eq!(get.status(), *expected, "GET {path}");
        assert_eq!(head.status(), *expected, "HEAD {path}");
        for header in [CONTENT_TYPE, CONTENT_LENGTH, ETAG] {
            assert_eq!(
                head.headers().get(&header),
                get.headers().get(&header),
                "{header} of HEAD {path}"
            );
        }
        let get_length = get.bytes().await.map(|b| b.len()).unwrap_or_default();
        assert!(get_length > 0, "GET {path} has a body");
        let head_body = head
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("HEAD {path} body: {e}"));
        assert!(head_body.is_empty(), "HEAD {path} sent a body");
    }
    // A HEAD on a route that only takes POST is what a GET there is.
    let (status, _) = server
        .call(Method::HEAD, "/api/partner/register", None, None)
        .await;
    let (get_status, _) = server
        .call(Method::GET, "/api/partner/register", None, None)
        .await;
    assert_eq!(status, get_status);
    // Reading changed nothing.
    assert_eq!(server.history(&partner, conversation).await.len(), 1);
    server.assert_no_panics();
}
