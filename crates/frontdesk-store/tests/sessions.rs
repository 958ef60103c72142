//! Session tokens through the store, stored by digest: a customer session (which creates its
//! customer) and an agent session each speak until they expire; an agent's ends at sign-out;
//! unknown and expired tokens speak for nobody.

mod common;

use common::{cid, latest, partner, Ok};
use frontdesk_domain::{Cursor, Secret, Timestamp};
use frontdesk_store::{CustomerSession, Entity, StoreError};
use frontdesk_testkit::Backend;
use time::{Duration, OffsetDateTime};

/// `expires` is `lifetime` from about now (a second either way).
fn assert_expires_in(expires: Timestamp, lifetime: Duration) {
    let expected = OffsetDateTime::now_utc() + lifetime;
    let off = (expires.as_offset() - expected).abs();
    assert!(
        off < Duration::SECOND,
        "expires {expires:?}, expected about {expected}"
    );
}

async fn customer_sessions_speak_until_they_expire(backend: Backend) {
    let (db, store) = common::fresh(backend).await;
    let (acme, _) = partner(&store, "Acme").await;
    let (other, _) = partner(&store, "Other").await;
    let token = Secret::presented("fdc_ann");
    let created = store
        .create_customer_session(acme.id, &cid("ann"), &token.hash(), Duration::HOUR)
        .await
        .ok_or_panic("create");
    assert_eq!(created.partner, acme.id);
    assert_eq!(created.customer, cid("ann"));
    assert_expires_in(created.expires_at, Duration::HOUR);
    // The customer exists now, and only for that partner.
    store
        .customer(acme.id, &cid("ann"))
        .await
        .ok_or_panic("customer");
    assert_err!(
        store.customer(other.id, &cid("ann")).await,
        StoreError::NotFound(Entity::Customer)
    );

    let found = store
        .customer_session(&token.hash())
        .await
        .ok_or_panic("session");
    assert_eq!(found, Some(created.clone()));
    assert_eq!(
        store
            .customer_session(&Secret::presented("fdc_nobody").hash())
            .await
            .ok_or_panic("unknown"),
        None
    );
    // The plain token is not what the store matches on.
    assert_eq!(
        store
            .customer_session(&frontdesk_domain::SecretHash::from_stored("fdc_ann".into()))
            .await
            .ok_or_panic("plain"),
        None
    );

    // An expired session speaks for nobody; a second one for the same customer is its own.
    let expired = Secret::presented("fdc_old");
    store
        .create_customer_session(acme.id, &cid("ann"), &expired.hash(), -Duration::SECOND)
        .await
        .ok_or_panic("expired");
    assert_eq!(
        store
            .customer_session(&expired.hash())
            .await
            .ok_or_panic("expired"),
        None
    );
    let second = Secret::presented("fdc_ann_2");
    let second_session: CustomerSession = store
        .create_customer_session(acme.id, &cid("ann"), &second.hash(), Duration::MINUTE)
        .await
        .ok_or_panic("second");
    assert_expires_in(second_session.expires_at, Duration::MINUTE);
    // Creating a session swept the expired one.
    assert_eq!(db.count("customer_sessions").await, 2);
    assert_eq!(
        store
            .customer_session(&token.hash())
            .await
            .ok_or_panic("first"),
        Some(created)
    );
    assert_eq!(
        store
            .customer_session(&second.hash())
            .await
            .ok_or_panic("second"),
        Some(second_session)
    );
    assert_eq!(
        latest(&store).await,
        Cursor::START,
        "sessions are not events"
    );
}

async fn agent_sessions_speak_until_expiry_or_sign_out(backend: Backend) {
    let (db, store) = common::fresh(backend).await;
    let ada = common::agent(&store, "ada@example.com", false).await;
    let bob = common::agent(&store, "bob@example.com", false).await;
    let token = Secret::presented("fda_ada");
    let expires = store
        .create_agent_session(ada.id, &token.hash(), Duration::HOUR * 12)
        .await
        .ok_or_panic("create");
    assert_expires_in(expires, Duration::HOUR * 12);
    let bobs = Secret::presented("fda_bob");
    store
        .create_agent_session(bob.id, &bobs.hash(), Duration::HOUR)
        .await
        .ok_or_panic("bob");

    assert_eq!(
        store
            .agent_session(&token.hash())
            .await
            .ok_or_panic("session"),
        Some((ada.clone(), expires))
    );
    assert_eq!(agent_of(&store, &token.hash()).await, Some(ada.clone()));
    assert_eq!(agent_of(&store, &bobs.hash()).await, Some(bob.clone()));
    let nobody = Secret::presented("fda_nobody").hash();
    assert_eq!(
        store.agent_session(&nobody).await.ok_or_panic("unknown"),
        None
    );
    assert_eq!(agent_of(&store, &nobody).await, None);

    let expired = Secret::presented("fda_old");
    store
        .create_agent_session(ada.id, &expired.hash(), -Duration::SECOND)
        .await
        .ok_or_panic("expired");
    assert_eq!(
        store.agent_session(&expired.hash()).await.ok_or_panic("x"),
        None
    );
    assert_eq!(agent_of(&store, &expired.hash()).await, None);
    // The next session swept it.
    let later = Secret::presented("fda_ada_2");
    store
        .create_agent_session(ada.id, &later.hash(), Duration::HOUR)
        .await
        .ok_or_panic("later");
    assert_eq!(db.count("agent_sessions").await, 3);

    // Sign-out ends that session only; an unknown token signs out fine.
    store
        .end_agent_session(&token.hash())
        .await
        .ok_or_panic("end");
    assert_eq!(
        store
            .agent_session(&token.hash())
            .await
            .ok_or_panic("ended"),
        None
    );
    assert_eq!(agent_of(&store, &token.hash()).await, None);
    assert_eq!(agent_of(&store, &bobs.hash()).await, Some(bob));
    store
        .end_agent_session(&nobody)
        .await
        .ok_or_panic("unknown end");
    store
        .end_agent_session(&token.hash())
        .await
        .ok_or_panic("twice");
    assert_eq!(
        latest(&store).await,
        Cursor::START,
        "sessions are not events"
    );
}

frontdesk_testkit::on_both_backends!(
    customer_sessions_speak_until_they_expire,
    agent_sessions_speak_until_expiry_or_sign_out
);

/// The agent a live session token belongs to, without its expiry.
async fn agent_of(
    store: &frontdesk_store::Store,
    token: &frontdesk_domain::SecretHash,
) -> Option<frontdesk_domain::Agent> {
    store
        .agent_session(token)
        .await
        .ok_or_panic("agent_session")
        .map(|(agent, _)| agent)
}
