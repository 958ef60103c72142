//! The PostgreSQL event log's ordering rule, which its triggers keep for every writer: an
//! insert waits for the event-log lock held by an uncommitted insert (so ids commit in id order
//! and a tailer reading `id > last` never skips one), and a commit wakes the listeners.

use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use frontdesk_testkit::{Backend, TestDb};
use futures_util::StreamExt;

const INSERT_EVENT: &str = "INSERT INTO events (kind, partner_id, customer_id, all_agents, \
     payload, created_at) VALUES ('message', 1, 'c', FALSE, '{}', now())";

/// A fresh PostgreSQL database with the migrations applied (copied from the kit's template),
/// or `None` when PostgreSQL is not among the backends under test.
async fn fresh_db() -> Option<TestDb> {
    if !Backend::Postgres.enabled() {
        return None;
    }
    Some(TestDb::new(Backend::Postgres).await)
}

async fn connect(url: &str) -> AsyncPgConnection {
    AsyncPgConnection::establish(url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url}: {e}"))
}

/// How many sessions wait for an advisory lock right now.
async fn waiting_for_advisory_lock(conn: &mut AsyncPgConnection) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let count: Count = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query(
            "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
        ),
        conn,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    count.n
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_event_insert_waits_for_the_first_to_commit() {
    let Some(db) = fresh_db().await else {
        return;
    };
    let mut first = connect(&db.url).await;
    let mut observer = connect(&db.url).await;
    first
        .batch_execute(&format!("BEGIN; {INSERT_EVENT};"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let url = db.url.clone();
    let second = tokio::spawn(async move {
        connect(&url)
            .await
            .batch_execute(INSERT_EVENT)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    });
    // The second insert must queue behind the first transaction's lock, not draw its id.
    let mut waited = false;
    for _ in 0..100 {
        if waiting_for_advisory_lock(&mut observer).await == 1 {
            waited = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !second.is_finished(),
        "an event insert committed while another transaction held uncommitted events"
    );
    assert!(
        waited,
        "the second insert never waited for the event-log lock"
    );

    first
        .batch_execute("COMMIT")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .unwrap_or_else(|_| panic!("the second insert still waits after the first committed"))
        .unwrap_or_else(|e| panic!("{e}"));
    db.remove().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_committed_event_wakes_the_listeners_and_a_rolled_back_one_does_not() {
    let Some(db) = fresh_db().await else {
        return;
    };
    let mut listener = connect(&db.url).await;
    listener
        .batch_execute("LISTEN frontdesk_events")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut writer = connect(&db.url).await;
    writer
        .batch_execute(&format!("BEGIN; {INSERT_EVENT}; ROLLBACK;"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    writer
        .batch_execute(&format!("BEGIN; {INSERT_EVENT}; {INSERT_EVENT}; COMMIT;"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // A marker sent after both: whatever arrives before it came from the two transactions.
    writer
        .batch_execute("NOTIFY frontdesk_events, 'marker'")
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let mut payloads = Vec::new();
    let mut stream = std::pin::pin!(listener.notifications_stream());
    while let Ok(Some(notification)) =
        tokio::time::timeout(Duration::from_secs(10), stream.next()).await
    {
        let payload = notification.unwrap_or_else(|e| panic!("{e}")).payload;
        if payload == "marker" {
            break;
        }
        payloads.push(payload);
    }
    // One wake-up for the committed transaction (NOTIFY folds repeats), none for the other.
    assert_eq!(payloads, vec![String::new()]);
    db.remove().await;
}
