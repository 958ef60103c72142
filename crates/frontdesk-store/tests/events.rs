//! The event log through the store: `events_for` gives each recipient exactly what it hears
//! (a customer its own, an agent the shared queue and what it holds), after a cursor, in
//! cursor order, at most `limit`; `events_after` is the whole tail; `latest_event_id` the end.

mod common;

use common::{cid, events_after, latest, partner, say, Ok};
use frontdesk_domain::{Cursor, PartnerId, Recipient};
use frontdesk_store::Store;
use frontdesk_testkit::Backend;

async fn heard(store: &Store, recipient: &Recipient, since: Cursor, limit: i64) -> Vec<Cursor> {
    store
        .events_for(recipient, since, limit)
        .await
        .ok_or_panic("events_for")
        .into_iter()
        .map(|e| e.id)
        .collect()
}

async fn each_recipient_hears_its_own_events(backend: Backend) {
    let (_db, store) = common::fresh(backend).await;
    assert_eq!(latest(&store).await, Cursor::START, "an empty log");
    assert_eq!(events_after(&store, Cursor::START).await, []);
    let (acme, _) = partner(&store, "Acme").await;
    let (globex, _) = partner(&store, "Globex").await;
    let holder = common::agent(&store, "holder@example.com", false).await;
    let other = common::agent(&store, "other@example.com", false).await;

    let anns = store
        .create_conversation(acme.id, &cid("ann"))
        .await
        .ok_or_panic("c")
        .id; // e1
    let bobs = store
        .create_conversation(acme.id, &cid("bob"))
        .await
        .ok_or_panic("c")
        .id; // e2
    let globex_ann = store
        .create_conversation(globex.id, &cid("ann"))
        .await
        .ok_or_panic("c")
        .id; // e3
    say(&store, &acme, anns, "ann").await; // e4: waiting, so every agent
    store.assign(holder.id, anns).await.ok_or_panic("assign"); // e5: leaves the queue
    say(&store, &acme, anns, "ann").await; // e6: held: the holder only
    say(&store, &acme, bobs, "bob").await; // e7
    say(&store, &globex, globex_ann, "ann").await; // e8

    let all: Vec<Cursor> = events_after(&store, Cursor::START)
        .await
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(all.len(), 8);
    assert!(all.windows(2).all(|w| w[0] < w[1]), "cursor order: {all:?}");
    assert_eq!(latest(&store).await, all[7]);
    let e = |n: usize| all[n - 1];

    let ann = Recipient::Customer(acme.id, cid("ann"));
    assert_eq!(
        heard(&store, &ann, Cursor::START, 100).await,
        [e(1), e(4), e(5), e(6)]
    );
    assert_eq!(
        heard(
            &store,
            &Recipient::Customer(acme.id, cid("bob")),
            Cursor::START,
            100
        )
        .await,
        [e(2), e(7)]
    );
    assert_eq!(
        heard(
            &store,
            &Recipient::Customer(globex.id, cid("ann")),
            Cursor::START,
            100
        )
        .await,
        [e(3), e(8)]
    );
    assert_eq!(
        heard(
            &store,
            &Recipient::Customer(PartnerId(globex.id.0 + 100), cid("ann")),
            Cursor::START,
            100
        )
        .await,
        Vec::<Cursor>::new()
    );
    assert_eq!(
        heard(&store, &Recipient::Agent(holder.id), Cursor::START, 100).await,
        [e(1), e(2), e(3), e(4), e(5), e(6), e(7), e(8)]
    );
    assert_eq!(
        heard(&store, &Recipient::Agent(other.id), Cursor::START, 100).await,
        [e(1), e(2), e(3), e(4), e(5), e(7), e(8)],
        "another agent hears nothing of a conversation the holder has"
    );

    // After a cursor, at most `limit`.
    assert_eq!(heard(&store, &ann, e(1), 100).await, [e(4), e(5), e(6)]);
    assert_eq!(heard(&store, &ann, e(1), 2).await, [e(4), e(5)]);
    assert_eq!(heard(&store, &ann, e(6), 100).await, Vec::<Cursor>::new());
    assert_eq!(
        store
            .events_after(e(2), 3)
            .await
            .ok_or_panic("tail")
            .iter()
            .map(|e| e.id)
            .collect::<Vec<_>>(),
        [e(3), e(4), e(5)]
    );
    // events_for returns the same rows as the tail, whole.
    let tail = events_after(&store, Cursor::START).await;
    let anns_rows: Vec<_> = tail
        .into_iter()
        .filter(|event| [e(1), e(4), e(5), e(6)].contains(&event.id))
        .collect();
    assert_eq!(
        store
            .events_for(&ann, Cursor::START, 100)
            .await
            .ok_or_panic("ann"),
        anns_rows
    );
}

frontdesk_testkit::on_both_backends!(each_recipient_hears_its_own_events);
