//! Conversations through the store: created waiting (with their customer) and announced to
//! the customer and every agent; read back only by who may see them; listed per customer
//! oldest first, and for agents newest activity first with their filters and limit.

mod common;

use std::time::Duration;

use common::{cid, events_after, partner, payload, say, Ok};
use frontdesk_domain::{AgentId, Audience, ConversationId, ConversationStatus, Cursor, Viewer};
use frontdesk_store::{Entity, StoreError};
use frontdesk_testkit::Backend;
use serde_json::json;

async fn a_new_conversation_waits_and_is_announced(backend: Backend) {
    let (_db, store) = common::fresh(backend).await;
    let (acme, _) = partner(&store, "Acme").await;
    let ann = cid("ann");
    let created = store
        .create_conversation(acme.id, &ann)
        .await
        .ok_or_panic("create");
    assert_eq!(created.partner_id, acme.id);
    assert_eq!(created.customer_id, ann);
    assert_eq!(created.status, ConversationStatus::Waiting);
    assert_eq!(created.agent_id, None);
    assert_eq!(created.created_at, created.updated_at);
    // Its customer now exists.
    let customer = store.customer(acme.id, &ann).await.ok_or_panic("customer");
    assert_eq!((customer.name, customer.email), (None, None));

    let events = events_after(&store, Cursor::START).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].kind, "status");
    assert_eq!(events[0].conversation_id, Some(created.id));
    assert_eq!(
        events[0].audience,
        Audience {
            partner: acme.id,
            customer: ann,
            agent: None,
            all_agents: true,
        }
    );
    assert_eq!(
        payload(&events[0]),
        json!({"conversationId": created.id, "status": "waiting", "agentId": null})
    );
}

async fn a_conversation_is_seen_only_by_who_may_see_it(backend: Backend) {
    let (_db, store) = common::fresh(backend).await;
    let (acme, _) = partner(&store, "Acme").await;
    let (other, _) = partner(&store, "Other").await;
    let created = store
        .create_conversation(acme.id, &cid("ann"))
        .await
        .ok_or_panic("create");
    let allowed = [
        Viewer::Partner(acme.id),
        Viewer::Customer(acme.id, cid("ann")),
        Viewer::Agent(AgentId(7)),
    ];
    for viewer in allowed {
        assert_eq!(
            store
                .conversation(&viewer, created.id)
                .await
                .ok_or_panic("see"),
            created,
            "{viewer:?}"
        );
    }
    let refused = [
        Viewer::Partner(other.id),
        Viewer::Customer(acme.id, cid("bob")),
        // The same customer id under another partner is another customer.
        Viewer::Customer(other.id, cid("ann")),
    ];
    for viewer in refused {
        assert_err!(
            store.conversation(&viewer, created.id).await,
            StoreError::NotFound(Entity::Conversation)
        );
    }
    assert_err!(
        store
            .conversation(
                &Viewer::Agent(AgentId(7)),
                ConversationId(created.id.0 + 100)
            )
            .await,
        StoreError::NotFound(Entity::Conversation)
    );
}

async fn a_customers_conversations_oldest_first(backend: Backend) {
    let (_db, store) = common::fresh(backend).await;
    let (acme, _) = partner(&store, "Acme").await;
    let (other, _) = partner(&store, "Other").await;
    let ann = cid("ann");
    let first = store
        .create_conversation(acme.id, &ann)
        .await
        .ok_or_panic("1");
    let bobs = store
        .create_conversation(acme.id, &cid("bob"))
        .await
        .ok_or_panic("bob");
    let second = store
        .create_conversation(acme.id, &ann)
        .await
        .ok_or_panic("2");
    // Activity in the first does not reorder them: oldest first.
    say(&store, &acme, first.id, "ann").await;

    let listed = store
        .customer_conversations(acme.id, &ann)
        .await
        .ok_or_panic("list");
    assert_eq!(
        listed.iter().map(|c| c.id).collect::<Vec<_>>(),
        [first.id, second.id]
    );
    assert!(listed.iter().all(|c| c.customer_id == ann));
    assert_eq!(
        store
            .customer_conversations(acme.id, &cid("bob"))
            .await
            .ok_or_panic("bob")
            .iter()
            .map(|c| c.id)
            .collect::<Vec<_>>(),
        [bobs.id]
    );
    // A filter, not a look-up: an unknown customer, or another partner's, has none.
    assert_eq!(
        store
            .customer_conversations(acme.id, &cid("nobody"))
            .await
            .ok_or_panic("nobody"),
        []
    );
    assert_eq!(
        store
            .customer_conversations(other.id, &ann)
            .await
            .ok_or_panic("other partner"),
        []
    );
    // Nor does a known customer without conversations.
    store
        .create_customer_session(
            acme.id,
            &cid("carol"),
            &frontdesk_domain::Secret::presented("t").hash(),
            time::Duration::HOUR,
        )
        .await
        .ok_or_panic("session");
    assert_eq!(
        store
            .customer_conversations(acme.id, &cid("carol"))
            .await
            .ok_or_panic("carol"),
        []
    );
}

async fn agent_lists_newest_activity_first(backend: Backend) {
    let (db, store) = common::fresh(backend).await;
    let (acme, _) = partner(&store, "Acme").await;
    let agent = common::agent(&store, "a@example.com", false).await;
    let mut ids = Vec::new();
    for customer in ["c1", "c2", "c3", "c4"] {
        let created = store
            .create_conversation(acme.id, &cid(customer))
            .await
            .ok_or_panic("create");
        ids.push(created.id);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let [c1, c2, c3, c4] = ids[..] else {
        panic!("four conversations")
    };
    // c1 gets a message (newest activity), c2 is taken by the agent, c4 closed.
    say(&store, &acme, c1, "c1").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    store.assign(agent.id, c2).await.ok_or_panic("assign");
    tokio::time::sleep(Duration::from_millis(5)).await;
    store.close(agent.id, false, c4).await.ok_or_panic("close");

    let list = |status, holder, limit| {
        let store = store.clone();
        async move {
            store
                .list_conversations(status, holder, limit)
                .await
                .ok_or_panic("list")
                .into_iter()
                .map(|c| c.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list(None, None, 100).await, [c4, c2, c1, c3]);
    assert_eq!(list(None, None, 2).await, [c4, c2]);
    assert_eq!(
        list(Some(ConversationStatus::Waiting), None, 100).await,
        [c1, c3]
    );
    assert_eq!(
        list(Some(ConversationStatus::Active), None, 100).await,
        [c2]
    );
    assert_eq!(
        list(Some(ConversationStatus::Closed), None, 100).await,
        [c4]
    );
    // c4 was waiting when the agent closed it: closing does not make it theirs.
    assert_eq!(list(None, Some(agent.id), 100).await, [c2]);
    assert_eq!(
        list(None, Some(AgentId(agent.id.0 + 1)), 100).await,
        Vec::<ConversationId>::new()
    );

    // Equal activity: the highest id first.
    db.execute(&format!(
        "UPDATE conversations SET updated_at = (SELECT updated_at FROM conversations WHERE id = {c1}) \
         WHERE id IN ({c1}, {c3})"
    ))
    .await;
    assert_eq!(
        list(Some(ConversationStatus::Waiting), None, 100).await,
        [c3, c1]
    );
}

frontdesk_testkit::on_both_backends!(
    a_new_conversation_waits_and_is_announced,
    a_conversation_is_seen_only_by_who_may_see_it,
    a_customers_conversations_oldest_first,
    agent_lists_newest_activity_first
);
