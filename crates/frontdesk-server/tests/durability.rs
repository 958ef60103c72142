//! A message acknowledged with 2xx survives the server being killed.

mod support;

use support::{Backend, Server};

on_both_backends!(acknowledged_messages_survive_kill_9);

async fn acknowledged_messages_survive_kill_9(backend: Backend) {
    let (db, server, partner, conversation) =
        support::start_with_conversation(backend, "customer-1").await;
    let mut acknowledged = Vec::new();
    for n in 0..20 {
        acknowledged.push(
            server
                .say(&partner, conversation, "customer-1", &format!("m{n}"))
                .await,
        );
    }
    // SIGKILL right after the last acknowledgement: nothing gets to flush on the way out.
    server.kill();

    let server = Server::start(&db).await;
    assert_eq!(server.history(&partner, conversation).await, acknowledged);
    // And the restarted server keeps working with the same key and ids.
    let next = server
        .say(&partner, conversation, "customer-1", "after restart")
        .await;
    assert!(next["id"].as_i64() > acknowledged[19]["id"].as_i64());
}
