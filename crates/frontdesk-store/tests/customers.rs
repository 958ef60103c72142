//! Customers through the store: an upsert creates or patches (a field left out is kept, a
//! cleared one is cleared), rows are scoped to their partner, and a new Flashback profile (only
//! a new one) is an event for the customer and every agent.

mod common;

use std::time::Duration;

use common::{cid, events_after, latest, partner, payload, Ok};
use frontdesk_domain::{Audience, Cursor, CustomerChanges, Flashback, Patch};
use frontdesk_store::{Entity, StoreError};
use frontdesk_testkit::Backend;
use serde_json::json;
use time::macros::date;

fn set_name_and_email(name: &str, email: &str) -> CustomerChanges {
    CustomerChanges {
        name: Patch::Set(name.to_owned()),
        email: Patch::Set(email.to_owned()),
        ..CustomerChanges::default()
    }
}

async fn upserts_create_then_patch(backend: Backend) {
    let (_db, store) = common::fresh(backend).await;
    let (acme, _) = partner(&store, "Acme").await;
    let (other, _) = partner(&store, "Other").await;
    let ann = cid("ann");
    assert_err!(
        store.customer(acme.id, &ann).await,
        StoreError::NotFound(Entity::Customer)
    );

    let created = store
        .upsert_customer(acme.id, &ann, set_name_and_email("Ann", "ann@example.com"))
        .await
        .ok_or_panic("create");
    assert_eq!(created.id, ann);
    assert_eq!(created.partner_id, acme.id);
    assert_eq!(created.name.as_deref(), Some("Ann"));
    assert_eq!(created.email.as_deref(), Some("ann@example.com"));
    assert_eq!(created.birthdate, None);
    assert_eq!(created.flashback, None);
    assert_eq!(created.created_at, created.updated_at);
    assert_eq!(
        store.customer(acme.id, &ann).await.ok_or_panic("read"),
        created
    );

    // Another partner's customer of the same id is another row, unseen by the first.
    assert_err!(
        store.customer(other.id, &ann).await,
        StoreError::NotFound(Entity::Customer)
    );

    tokio::time::sleep(Duration::from_millis(5)).await;
    let patched = store
        .upsert_customer(
            acme.id,
            &ann,
            CustomerChanges {
                name: Patch::Set("Ann B.".to_owned()),
                email: Patch::Clear,
                ..CustomerChanges::default()
            },
        )
        .await
        .ok_or_panic("patch");
    assert_eq!(patched.name.as_deref(), Some("Ann B."));
    assert_eq!(patched.email, None, "a cleared field is cleared");
    assert_eq!(patched.created_at, created.created_at);
    assert!(patched.updated_at > created.updated_at, "updatedAt moves");

    // An empty patch keeps every field and still moves updatedAt.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let kept = store
        .upsert_customer(acme.id, &ann, CustomerChanges::default())
        .await
        .ok_or_panic("keep");
    assert_eq!(kept.name.as_deref(), Some("Ann B."));
    assert_eq!(kept.email, None);
    assert!(kept.updated_at > patched.updated_at);
    assert_eq!(
        store.customer(acme.id, &ann).await.ok_or_panic("read"),
        kept
    );
    assert_eq!(latest(&store).await, Cursor::START, "no profile, no event");
}

async fn a_new_flashback_profile_is_an_event(backend: Backend) {
    let (_db, store) = common::fresh(backend).await;
    let (acme, _) = partner(&store, "Acme").await;
    let ann = cid("ann");
    let birthdate = date!(1985 - 03 - 10);
    let profile = Flashback::compute(birthdate, date!(2026 - 12 - 01))
        .unwrap_or_else(|| panic!("a profile for an adult"));

    let with_profile = CustomerChanges {
        birthdate: Patch::Set(birthdate),
        flashback: Patch::Set(profile.clone()),
        ..CustomerChanges::default()
    };
    let customer = store
        .upsert_customer(acme.id, &ann, with_profile.clone())
        .await
        .ok_or_panic("set");
    assert_eq!(customer.birthdate, Some(birthdate));
    assert_eq!(customer.flashback.as_ref(), Some(&profile));

    let events = events_after(&store, Cursor::START).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event.kind, "flashback");
    assert_eq!(event.conversation_id, None);
    assert_eq!(event.audience, Audience::customer(acme.id, ann.clone()));
    assert_eq!(
        payload(event),
        json!({"customerId": "ann", "flashBack": serde_json::to_value(&profile).ok()})
    );

    // A PATCH that does not set a new profile is no news.
    let before = latest(&store).await;
    store
        .upsert_customer(acme.id, &ann, set_name_and_email("Ann", "a@example.com"))
        .await
        .ok_or_panic("keep profile");
    assert_eq!(
        store
            .customer(acme.id, &ann)
            .await
            .ok_or_panic("read")
            .flashback
            .as_ref(),
        Some(&profile),
        "kept by a patch without a birthdate"
    );
    let cleared = store
        .upsert_customer(
            acme.id,
            &ann,
            CustomerChanges {
                birthdate: Patch::Clear,
                flashback: Patch::Clear,
                ..CustomerChanges::default()
            },
        )
        .await
        .ok_or_panic("clear");
    assert_eq!((cleared.birthdate, cleared.flashback), (None, None));
    assert_eq!(
        latest(&store).await,
        before,
        "keeping or clearing is no event"
    );

    // Setting it again is news again.
    store
        .upsert_customer(acme.id, &ann, with_profile)
        .await
        .ok_or_panic("set again");
    let again = events_after(&store, before).await;
    assert_eq!(
        again.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["flashback"]
    );
}

frontdesk_testkit::on_both_backends!(
    upserts_create_then_patch,
    a_new_flashback_profile_is_an_event
);
