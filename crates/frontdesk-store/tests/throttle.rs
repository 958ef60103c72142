//! Throttle counters on both backends: concurrent hits get distinct counts (one atomic upsert
//! each), a window that has ended starts afresh, refunds and clears work, and pruning deletes
//! exactly the expired rows.

use std::time::Duration;

use frontdesk_store::Store;
use frontdesk_testkit::{Backend, TestDb};

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

async fn counters(backend: Backend) {
    let db = TestDb::new(backend).await;
    check(&db.store().await).await;
}

frontdesk_testkit::on_both_backends!(counters);
