//! Requests dropped while a database call runs: a body refused while the credential is still
//! being looked up (actix drops the sibling extractor), and a client that resets its connection
//! mid-request. On SQLite the dropped call goes on in the background holding its connection;
//! the pool used to hand that connection out again, which panicked the worker ("Cannot access
//! shared transaction state") so that the requests behind it got a closed connection: a client
//! could take workers down at will by disconnecting.

mod support;

use futures_util::future::join_all;
use reqwest::StatusCode;
use support::{Server, TestDb};
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_bodies_never_break_the_credential_checks_of_later_requests() {
    let db = TestDb::new(support::Backend::Sqlite).await;
    // One worker with one connection, so a connection left busy is the next one handed out.
    let server = Server::start_with(
        &db,
        &[("FRONTDESK_WORKERS", "1"), ("FRONTDESK_DB_POOL_SIZE", "1")],
    )
    .await;
    let agent = server.agent("agent@example.com", false).await;
    let url = server.url("/api/agent/conversations/1/messages");
    for _ in 0..20 {
        let requests = (0..50).map(|i| {
            let request = server
                .client
                .post(&url)
                .bearer_auth(&agent.token)
                .header("content-type", "application/json");
            // Half with a body the JSON extractor refuses at once, half that reach the handler.
            let body = if i % 2 == 0 {
                "{".to_owned()
            } else {
                r#"{"content":"x"}"#.to_owned()
            };
            async move { request.body(body).send().await.map(|r| r.status()) }
        });
        for outcome in join_all(requests).await {
            let status = outcome
                .unwrap_or_else(|e| panic!("a request got no answer: {e}\n{}", server.log()));
            assert!(
                status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND,
                "{status}"
            );
        }
    }
    server.assert_no_panics();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_that_reset_mid_request_cost_the_next_requests_nothing() {
    let db = TestDb::new(support::Backend::Sqlite).await;
    let server = Server::start_with(
        &db,
        &[("FRONTDESK_WORKERS", "1"), ("FRONTDESK_DB_POOL_SIZE", "1")],
    )
    .await;
    let partner = server.register("Acme").await;
    let body = r#"{"customerId":"ann"}"#;
    let request = format!(
        "POST /api/partner/conversations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        partner.key,
        body.len()
    );
    for _ in 0..30 {
        let resets = (0..20u64).map(|i| {
            let request = request.clone();
            let addr = server.addr();
            async move {
                let Ok(mut socket) = tokio::net::TcpStream::connect(addr).await else {
                    return;
                };
                let _ = socket.write_all(request.as_bytes()).await;
                // Gone with a reset while the server is busy with the request: a spread of
                // moments, so that some land in the middle of its database call.
                tokio::time::sleep(std::time::Duration::from_micros(i * 150)).await;
                let _ = socket.set_zero_linger();
            }
        });
        let open = serde_json::json!({"customerId": "ann"});
        let served = (0..20).map(|_| {
            server.call(
                reqwest::Method::POST,
                "/api/partner/conversations",
                Some(&partner.key),
                Some(&open),
            )
        });
        let (_, answers) = tokio::join!(join_all(resets), join_all(served));
        for (status, body) in answers {
            assert_eq!(status, StatusCode::CREATED, "{body}\n{}", server.log());
        }
    }
    server.assert_no_panics();
}
