//! Automated replies are made exactly once: by one of several instances on one PostgreSQL,
//! and across an instance killed in the middle of a reply (taken over by another instance, or
//! by the same database's next server on SQLite).

mod support;

use std::time::Duration;

use frontdesk_testkit::fake_model::{delta, last_user_text, FakeModel, Step};
use serde_json::Value;
use support::{Backend, Partner, Server, TestDb, WsClient};

on_both_backends!(a_reply_interrupted_by_a_killed_instance_is_made_once_by_the_next);

const PATIENCE: Duration = Duration::from_secs(15);

/// Automated replies by `model`, with a lease of `lease_secs`.
async fn start(db: &TestDb, model: &FakeModel, lease_secs: &str) -> Server {
    let mut env = model.server_env();
    env.push(("FRONTDESK_REPLY_LEASE_SECS", lease_secs));
    Server::start_with(db, &env).await
}

/// Waits until every conversation has at least one automated message; returns the counts.
async fn await_replies(server: &Server, partner: &Partner, conversations: &[i64]) -> Vec<usize> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let mut counts = Vec::new();
        for conversation in conversations {
            counts.push(server.bot_messages(partner, *conversation).await.len());
        }
        if counts.iter().all(|n| *n >= 1) {
            return counts;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "replies missing: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_make_each_reply_once() {
    if !Backend::Postgres.enabled() {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let model = FakeModel::answering(|request: &Value| {
        let text = format!("About: {}", last_user_text(request));
        Step::reply(
            request,
            &text,
            Duration::from_millis(200),
            3,
            Duration::from_millis(20),
        )
    })
    .await;
    // A short lease, so both instances' sweeps keep looking for jobs to take.
    let a = start(&db, &model, "1").await;
    let b = start(&db, &model, "1").await;
    let partner = a.register("Acme").await;
    let mut conversations = Vec::new();
    for i in 0..20 {
        let customer = format!("c{i}");
        let conversation = a.conversation(&partner, &customer).await;
        // Alternate instances, so each takes triggers and each sweeps the other's.
        let on = if i % 2 == 0 { &a } else { &b };
        on.say(&partner, conversation, &customer, &format!("question {i}"))
            .await;
        conversations.push(conversation);
    }
    await_replies(&a, &partner, &conversations).await;
    // Long enough for any second reply to land.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut counts = Vec::new();
    for conversation in &conversations {
        counts.push(a.bot_messages(&partner, *conversation).await.len());
    }
    assert_eq!(counts, vec![1; 20], "each trigger got exactly one reply");
    assert_eq!(model.bodies().len(), 20, "and one model call each");
    a.assert_no_panics();
    b.assert_no_panics();
}

async fn a_reply_interrupted_by_a_killed_instance_is_made_once_by_the_next(backend: Backend) {
    let db = TestDb::new(backend).await;
    // The first call streams a piece and then hangs; every later one answers at once.
    let model = FakeModel::start(vec![Step::Stream(vec![
        (Duration::ZERO, delta("Let me ")),
        (Duration::from_secs(60), delta("never sent")),
    ])])
    .await;
    model.set_fallback(|request: &Value| {
        Step::reply(
            request,
            "Here is your answer.",
            Duration::ZERO,
            2,
            Duration::ZERO,
        )
    });
    let first = start(&db, &model, "1.5").await;
    let partner = first.register("Acme").await;
    let conversation = first.conversation(&partner, "ann").await;
    let token = first.session(&partner, "ann").await;
    let mut socket = WsClient::customer(&first, "ann", &token).await;
    first.say(&partner, conversation, "ann", "Hello?").await;
    assert_eq!(
        socket.until("messageDelta").await["payload"]["text"],
        "Let me "
    );

    // Killed mid-reply: nothing was stored.
    first.kill();
    let next = start(&db, &model, "1.5").await;
    assert!(next.bot_messages(&partner, conversation).await.is_empty());

    // The next server takes the job over once its lease has run out, and makes it once.
    let counts = await_replies(&next, &partner, &[conversation]).await;
    assert_eq!(counts, [1]);
    let reply = next.bot_messages(&partner, conversation).await;
    assert_eq!(reply[0]["content"], "Here is your answer.");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(next.bot_messages(&partner, conversation).await.len(), 1);
    assert_eq!(
        model.bodies().len(),
        2,
        "the killed call, then the one that answered"
    );
    next.assert_no_panics();
}
