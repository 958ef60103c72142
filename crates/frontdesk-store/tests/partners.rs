//! Partners through the store: created with a key digest, found by id and by key, and a key
//! rotation that makes the old key stop matching at once. None of it is an event.

mod common;

use common::{latest, partner, Ok};
use frontdesk_domain::{Cursor, PartnerId, Secret};
use frontdesk_store::{Entity, StoreError};
use frontdesk_testkit::Backend;

async fn partners_are_created_and_found(backend: Backend) {
    let (_db, store) = common::fresh(backend).await;
    let (acme, acme_key) = partner(&store, "Acme").await;
    let (globex, globex_key) = partner(&store, "Globex").await;
    assert_eq!(acme.name, "Acme");
    assert_eq!(acme.domain, "acme.example.com");
    assert_ne!(acme.id, globex.id);

    assert_eq!(store.partner(acme.id).await.ok_or_panic("partner"), acme);
    assert_eq!(
        store.partner(globex.id).await.ok_or_panic("partner"),
        globex
    );
    assert_err!(
        store.partner(PartnerId(globex.id.0 + 100)).await,
        StoreError::NotFound(Entity::Partner)
    );

    let by_key = |key: Secret| {
        let store = store.clone();
        async move {
            store
                .partner_by_key(&key.hash())
                .await
                .ok_or_panic("by key")
        }
    };
    assert_eq!(by_key(acme_key.clone()).await, Some(acme.clone()));
    let globex_id = globex.id;
    assert_eq!(by_key(globex_key).await, Some(globex));
    assert_eq!(by_key(Secret::presented("fdk_nobody")).await, None);
    assert_eq!(
        store.partner_domains().await.ok_or_panic("domains"),
        vec![
            (acme.id, "acme.example.com".to_owned()),
            (globex_id, "globex.example.com".to_owned()),
        ],
        "every partner's domain, in id order"
    );
    assert_eq!(
        latest(&store).await,
        Cursor::START,
        "partners are not events"
    );
}

async fn a_rotated_key_stops_matching_at_once(backend: Backend) {
    let (_db, store) = common::fresh(backend).await;
    let (acme, old_key) = partner(&store, "Acme").await;
    let (other, other_key) = partner(&store, "Other").await;
    let new_key = Secret::presented("fdk_the_new_key");

    let returned = store
        .rotate_partner_key(acme.id, &new_key.hash())
        .await
        .ok_or_panic("rotate");
    assert_eq!(returned, old_key.hash(), "the old digest is returned");
    assert_eq!(
        store
            .partner_by_key(&old_key.hash())
            .await
            .ok_or_panic("old"),
        None
    );
    assert_eq!(
        store
            .partner_by_key(&new_key.hash())
            .await
            .ok_or_panic("new"),
        Some(acme.clone())
    );
    // Nobody else's key moved.
    assert_eq!(
        store
            .partner_by_key(&other_key.hash())
            .await
            .ok_or_panic("other"),
        Some(other)
    );
    assert_err!(
        store
            .rotate_partner_key(PartnerId(acme.id.0 + 100), &Secret::presented("x").hash())
            .await,
        StoreError::NotFound(Entity::Partner)
    );
    assert_eq!(
        latest(&store).await,
        Cursor::START,
        "a rotation is not an event"
    );
}

frontdesk_testkit::on_both_backends!(
    partners_are_created_and_found,
    a_rotated_key_stops_matching_at_once
);
