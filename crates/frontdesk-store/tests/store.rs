//! The store handle itself: it opens on either backend (running the migrations, also on a
//! database that already has them), says which backend it is, answers a ping, reports no full
//! disk on a fresh database, and a handle with its own pool sees the same data.

mod common;

use common::{cid, partner, Ok};
use frontdesk_store::{Backend as StoreBackend, Store, StoreConfig};
use frontdesk_testkit::{Backend, TestDb};

async fn a_store_opens_pings_and_shares_its_data(backend: Backend) {
    // Empty: this store runs the migrations; the second open finds them done.
    let db = TestDb::empty(backend).await;
    let store = db.store().await;
    let expected = match backend {
        Backend::Sqlite => StoreBackend::Sqlite,
        Backend::Postgres => StoreBackend::Postgres,
    };
    assert_eq!(store.backend(), expected);
    store.ping().await.ok_or_panic("ping");
    assert!(
        !store.storage_full(),
        "a fresh store has had no full-disk failure"
    );

    let (acme, _) = partner(&store, "Acme").await;
    let own = store.with_own_pool(2).ok_or_panic("own pool");
    assert_eq!(own.backend(), expected);
    own.ping().await.ok_or_panic("own ping");
    assert_eq!(own.partner(acme.id).await.ok_or_panic("own read"), acme);
    // Writes through either handle are seen by the other.
    let conversation = own
        .create_conversation(acme.id, &cid("ann"))
        .await
        .ok_or_panic("own write");
    assert_eq!(
        store
            .customer_conversations(acme.id, &cid("ann"))
            .await
            .ok_or_panic("read back"),
        [conversation]
    );

    let reopened = Store::open(&StoreConfig::new(&db.url))
        .await
        .ok_or_panic("reopen");
    assert_eq!(
        reopened.partner(acme.id).await.ok_or_panic("reopened"),
        acme
    );
}

frontdesk_testkit::on_both_backends!(a_store_opens_pings_and_shares_its_data);

/// A URL of neither backend is a configuration error, not a panic or a connection attempt.
#[tokio::test]
async fn bad_urls_are_refused() {
    for url in ["mysql://localhost/x", ""] {
        match Store::open(&StoreConfig::new(url)).await {
            Err(frontdesk_store::StoreError::Config(_)) => {}
            Err(other) => panic!("{url:?}: expected Config, got {other}"),
            Ok(_) => panic!("{url:?} opened"),
        }
    }
}
