//! Throttle counters on both backends: concurrent hits get distinct counts (one atomic upsert
//! each), a window that has ended starts afresh, refunds and clears work, and pruning deletes
//! exactly the expired rows.

use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use frontdesk_store::{Store, StoreConfig};
use rand::Rng;

const MINUTE: time::Duration = time::Duration::MINUTE;

async fn check(store: &Store) {
    // 50 hits at once on one key: each sees a different count, 1 to 50.
    let hits = futures_util::future::join_all((0..50).map(|_| store.throttle_hit("k", MINUTE)))
        .await
        .into_iter()
        .map(|hit| hit.unwrap_or_else(|e| panic!("hit: {e}")).hits)
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(hits, (1..=50).collect(), "no two hits may share a count");

    store
        .throttle_refund("k")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let after = store
        .throttle_hit("k", MINUTE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(after.hits, 50, "the refund took one back");
    assert!(
        after.remaining() > Duration::from_secs(50) && after.remaining() <= Duration::from_secs(60)
    );

    // A window that has ended starts again at 1, with a new end.
    let short = time::Duration::milliseconds(20);
    store
        .throttle_hit("short", short)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .throttle_hit("short", short)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let fresh = store
        .throttle_hit("short", MINUTE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fresh.hits, 1);
    assert!(fresh.remaining() > Duration::from_secs(50));

    // Pruning deletes the expired row only.
    store
        .throttle_hit("gone", short)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let pruned = store
        .throttle_prune()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pruned, 1);
    let kept = store
        .throttle_hit("k", MINUTE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(kept.hits, 51, "an unexpired counter survives pruning");

    store
        .throttle_clear("k")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let cleared = store
        .throttle_hit("k", MINUTE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cleared.hits, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_counters() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = Store::open(&StoreConfig::new(&url))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    check(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_counters() {
    if std::env::var("FRONTDESK_TEST_BACKENDS").is_ok_and(|b| !b.contains("postgres")) {
        return;
    }
    let admin = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let name = format!("frontdesk_throttle_{:016x}", rand::rng().random::<u64>());
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(base, _)| base);
    let url = format!("{base}/{name}");
    let mut conn = AsyncPgConnection::establish(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin}: {e}"));
    conn.batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    {
        let store = Store::open(&StoreConfig::new(&url))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        check(&store).await;
    }
    conn.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}
