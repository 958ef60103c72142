//! The event feed through the store: a feed starts at the log's end, yields each committed
//! event once in cursor order (from this handle, and from another handle on the same database,
//! as another instance would be), and relays typing and revocation signals, which are never
//! stored.

mod common;

use std::time::Duration;

use common::{cid, latest, partner, say, Ok};
use frontdesk_domain::{Audience, ConversationId, Cursor, Secret, Typing};
use frontdesk_store::{EventFeed, FeedItem, Origin, Store, TypingSignal};
use frontdesk_testkit::Backend;

/// The next feed item, which must come within 10 s.
async fn next(feed: &mut EventFeed) -> FeedItem {
    tokio::time::timeout(Duration::from_secs(10), feed.next())
        .await
        .unwrap_or_else(|_| panic!("the feed yielded nothing within 10 s"))
}

/// Event ids from the feed until `count` have come.
async fn event_ids(feed: &mut EventFeed, count: usize) -> Vec<Cursor> {
    let mut ids = Vec::new();
    while ids.len() < count {
        match next(feed).await {
            FeedItem::Events(batch) => ids.extend(batch.iter().map(|e| e.id)),
            other => panic!("expected events, got {other:?}"),
        }
    }
    ids
}

const PROBE: &str = "probe";

/// On PostgreSQL signals travel by NOTIFY, and the feed's LISTEN connection starts in the
/// background: a signal sent before it listens is lost (as typing may be). Probes until one is
/// heard, so the signals under test are sent to a feed that listens.
async fn wait_until_listening(store: &Store, feed: &mut EventFeed, audience: &Audience) {
    let probe = TypingSignal::new(
        Origin::new(PROBE),
        audience,
        Typing {
            conversation_id: ConversationId(0),
            is_typing: false,
            is_agent: false,
        },
    );
    for _ in 0..100 {
        store
            .publish_typing(probe.clone())
            .await
            .ok_or_panic("probe");
        match tokio::time::timeout(Duration::from_millis(100), feed.next()).await {
            Ok(FeedItem::Typing(heard)) if heard.origin.as_str() == PROBE => return,
            Ok(other) => panic!("expected the probe, got {other:?}"),
            Err(_) => continue,
        }
    }
    panic!("the feed never heard a probe");
}

/// The next item that is not a late probe.
async fn next_signal(feed: &mut EventFeed) -> FeedItem {
    loop {
        match next(feed).await {
            FeedItem::Typing(heard) if heard.origin.as_str() == PROBE => continue,
            other => return other,
        }
    }
}

async fn a_feed_yields_each_new_event_once(backend: Backend) {
    let (db, store) = common::fresh(backend).await;
    let (acme, _) = partner(&store, "Acme").await;
    let id = store
        .create_conversation(acme.id, &cid("ann"))
        .await
        .ok_or_panic("before")
        .id;
    let mut feed = store.feed().await.ok_or_panic("feed");
    let start = latest(&store).await;

    // From this handle.
    say(&store, &acme, id, "ann").await;
    say(&store, &acme, id, "ann").await;
    let expected: Vec<Cursor> = common::events_after(&store, start)
        .await
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(expected.len(), 2);
    assert_eq!(
        event_ids(&mut feed, 2).await,
        expected,
        "the past is not replayed"
    );

    // From another handle on the same database (another instance).
    let other = db.store().await;
    let since = latest(&store).await;
    other
        .create_conversation(acme.id, &cid("bob"))
        .await
        .ok_or_panic("other instance");
    let expected: Vec<Cursor> = common::events_after(&store, since)
        .await
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(expected.len(), 1);
    assert_eq!(event_ids(&mut feed, 1).await, expected);
}

async fn typing_and_revocations_are_relayed_not_stored(backend: Backend) {
    let (_db, store) = common::fresh(backend).await;
    let (acme, _) = partner(&store, "Acme").await;
    let conversation = store
        .create_conversation(acme.id, &cid("ann"))
        .await
        .ok_or_panic("create");
    let mut feed = store.feed().await.ok_or_panic("feed");
    let before = latest(&store).await;

    let audience = Audience::conversation(&conversation);
    let typing = Typing {
        conversation_id: conversation.id,
        is_typing: true,
        is_agent: false,
    };
    wait_until_listening(&store, &mut feed, &audience).await;
    let signal = TypingSignal::new(Origin::new("instance-1/7"), &audience, typing.clone());
    store
        .publish_typing(signal.clone())
        .await
        .ok_or_panic("typing");
    match next_signal(&mut feed).await {
        FeedItem::Typing(heard) => {
            assert_eq!(heard, signal);
            assert_eq!(heard.origin.as_str(), "instance-1/7");
            assert_eq!(heard.typing, typing);
            assert_eq!(heard.audience(), audience);
        }
        other => panic!("expected typing, got {other:?}"),
    }

    let revoked = Secret::presented("fda_gone").hash();
    store
        .publish_revocation(&revoked)
        .await
        .ok_or_panic("revoke");
    match next_signal(&mut feed).await {
        FeedItem::Revoked(hash) => assert_eq!(hash, revoked),
        other => panic!("expected a revocation, got {other:?}"),
    }
    assert_eq!(latest(&store).await, before, "signals are not stored");
}

frontdesk_testkit::on_both_backends!(
    a_feed_yields_each_new_event_once,
    typing_and_revocations_are_relayed_not_stored
);
