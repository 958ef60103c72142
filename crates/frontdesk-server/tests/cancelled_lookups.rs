//! A request whose body is refused while its credential is still being looked up: actix drops
//! the credential check mid-way. On SQLite the dropped call went on in the background holding
//! its connection, and the pool handed that connection out again, which panicked the worker
//! ("Cannot access shared transaction state"): the requests after it got a closed connection.

mod support;

use futures_util::future::join_all;
use reqwest::StatusCode;
use support::{Server, TestDb};

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
