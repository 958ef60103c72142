//! The lifecycle through the store: assign, close and read receipts, each with its event and
//! its audience; refusals (closed, held by another agent, not found) change nothing and
//! announce nothing; taking what you hold is a no-op.

mod common;

use common::{agent_draft, cid, events_after, latest, partner, payload, say, Ok};
use frontdesk_domain::{
    AgentId, Audience, ConversationId, ConversationStatus, DomainError, MessageId, Viewer,
};
use frontdesk_store::{Entity, StoreError};
use frontdesk_testkit::Backend;
use serde_json::json;

async fn assign_takes_a_waiting_conversation_once(backend: Backend) {
    let (_db, store) = common::fresh(backend).await;
    let (acme, _) = partner(&store, "Acme").await;
    let holder = common::agent(&store, "holder@example.com", false).await;
    let rival = common::agent(&store, "rival@example.com", false).await;
    let created = store
        .create_conversation(acme.id, &cid("ann"))
        .await
        .ok_or_panic("create");
    let since = latest(&store).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;

    let taken = store
        .assign(holder.id, created.id)
        .await
        .ok_or_panic("assign");
    assert_eq!(taken.status, ConversationStatus::Active);
    assert_eq!(taken.agent_id, Some(holder.id));
    assert!(
        taken.updated_at > created.updated_at,
        "a take moves updatedAt"
    );
    let events = events_after(&store, since).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].kind, "status");
    assert_eq!(events[0].conversation_id, Some(created.id));
    assert_eq!(
        payload(&events[0]),
        json!({"conversationId": created.id, "status": "active", "agentId": holder.id})
    );
    // It leaves the shared queue: every agent hears that, and the holder.
    assert_eq!(
        events[0].audience,
        Audience {
            partner: acme.id,
            customer: cid("ann"),
            agent: Some(holder.id),
            all_agents: true,
        }
    );
    let after_take = latest(&store).await;

    // Taking it again changes nothing and announces nothing.
    let again = store
        .assign(holder.id, created.id)
        .await
        .ok_or_panic("again");
    assert_eq!(again, taken);
    assert_err!(
        store.assign(rival.id, created.id).await,
        StoreError::Rule(DomainError::AssignedElsewhere)
    );
    assert_err!(
        store
            .assign(rival.id, ConversationId(created.id.0 + 100))
            .await,
        StoreError::NotFound(Entity::Conversation)
    );
    assert_eq!(latest(&store).await, after_take);
    assert_eq!(
        store
            .conversation(&Viewer::Agent(rival.id), created.id)
            .await
            .ok_or_panic("read"),
        taken
    );

    store
        .close(holder.id, false, created.id)
        .await
        .ok_or_panic("close");
    assert_err!(
        store.assign(holder.id, created.id).await,
        StoreError::Rule(DomainError::ConversationClosed)
    );
}

async fn ten_agents_race_one_wins(backend: Backend) {
    let (_db, store) = common::fresh(backend).await;
    let (acme, _) = partner(&store, "Acme").await;
    let mut agents = Vec::new();
    for n in 0..10 {
        agents.push(common::agent(&store, &format!("a{n}@example.com"), false).await);
    }
    let id = store
        .create_conversation(acme.id, &cid("ann"))
        .await
        .ok_or_panic("create")
        .id;
    let since = latest(&store).await;
    let outcomes =
        futures_util::future::join_all(agents.iter().map(|agent| store.assign(agent.id, id))).await;
    let winners: Vec<AgentId> = outcomes
        .iter()
        .filter_map(|outcome| outcome.as_ref().ok().and_then(|c| c.agent_id))
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    for outcome in &outcomes {
        if outcome.is_err() {
            assert_err!(outcome, StoreError::Rule(DomainError::AssignedElsewhere));
        }
    }
    assert_eq!(
        events_after(&store, since).await.len(),
        1,
        "one take, one event"
    );
}

async fn close_by_holder_admin_or_anyone_while_waiting(backend: Backend) {
    let (_db, store) = common::fresh(backend).await;
    let (acme, _) = partner(&store, "Acme").await;
    let holder = common::agent(&store, "holder@example.com", false).await;
    let other = common::agent(&store, "other@example.com", false).await;
    let admin = common::agent(&store, "admin@example.com", true).await;
    let conversation = |customer: &'static str| {
        let store = store.clone();
        async move {
            store
                .create_conversation(acme.id, &cid(customer))
                .await
                .ok_or_panic("create")
                .id
        }
    };

    // The holder closes; agentId stays; the event goes to the customer and the holder.
    let held = conversation("ann").await;
    store.assign(holder.id, held).await.ok_or_panic("assign");
    let since = latest(&store).await;
    assert_err!(
        store.close(other.id, false, held).await,
        StoreError::Rule(DomainError::AssignedElsewhere)
    );
    assert_eq!(latest(&store).await, since, "a refused close is no event");
    let closed = store
        .close(holder.id, false, held)
        .await
        .ok_or_panic("close");
    assert_eq!(closed.status, ConversationStatus::Closed);
    assert_eq!(closed.agent_id, Some(holder.id), "closing keeps agentId");
    let events = events_after(&store, since).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        payload(&events[0]),
        json!({"conversationId": held, "status": "closed", "agentId": holder.id})
    );
    assert_eq!(
        events[0].audience,
        Audience {
            partner: acme.id,
            customer: cid("ann"),
            agent: Some(holder.id),
            all_agents: false,
        }
    );
    let after_close = latest(&store).await;
    assert_err!(
        store.close(holder.id, false, held).await,
        StoreError::Rule(DomainError::ConversationClosed)
    );
    assert_err!(
        store.close(admin.id, true, held).await,
        StoreError::Rule(DomainError::ConversationClosed)
    );
    assert_eq!(latest(&store).await, after_close);

    // An admin closes one held by someone else.
    let other_held = conversation("bob").await;
    store
        .assign(holder.id, other_held)
        .await
        .ok_or_panic("assign");
    let by_admin = store
        .close(admin.id, true, other_held)
        .await
        .ok_or_panic("admin");
    assert_eq!(
        (by_admin.status, by_admin.agent_id),
        (ConversationStatus::Closed, Some(holder.id))
    );

    // Any agent closes a waiting one (spam); it was in the queue, so every agent hears it.
    let waiting = conversation("carol").await;
    let since = latest(&store).await;
    let spam = store
        .close(other.id, false, waiting)
        .await
        .ok_or_panic("spam");
    assert_eq!(
        (spam.status, spam.agent_id),
        (ConversationStatus::Closed, None)
    );
    let events = events_after(&store, since).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].audience,
        Audience {
            partner: acme.id,
            customer: cid("carol"),
            agent: None,
            all_agents: true,
        }
    );
    assert_err!(
        store
            .close(admin.id, true, ConversationId(waiting.0 + 100))
            .await,
        StoreError::NotFound(Entity::Conversation)
    );
}

async fn read_receipts_mark_the_other_side_up_to_an_id(backend: Backend) {
    let (_db, store) = common::fresh(backend).await;
    let (acme, _) = partner(&store, "Acme").await;
    let (other_partner, _) = partner(&store, "Other").await;
    let holder = common::agent(&store, "holder@example.com", false).await;
    let rival = common::agent(&store, "rival@example.com", false).await;
    let id = store
        .create_conversation(acme.id, &cid("ann"))
        .await
        .ok_or_panic("create")
        .id;
    let m1 = say(&store, &acme, id, "ann").await;
    let m2 = say(&store, &acme, id, "ann").await;
    let m3 = say(&store, &acme, id, "ann").await;
    store.assign(holder.id, id).await.ok_or_panic("assign");
    let agent_view = Viewer::Agent(holder.id);
    let reply = store
        .append_message(&agent_view, &agent_draft(id, holder.id, "hi"))
        .await
        .ok_or_panic("reply")
        .message
        .id;
    let read_flags = || {
        let store = store.clone();
        async move {
            store
                .messages(&Viewer::Agent(holder.id), id, MessageId(0), 100)
                .await
                .ok_or_panic("messages")
                .into_iter()
                .map(|m| (m.id, m.read_status))
                .collect::<Vec<_>>()
        }
    };

    // Someone else's view, or another agent's while it is held: refused, nothing marked.
    let since = latest(&store).await;
    assert_err!(
        store
            .mark_read(&Viewer::Partner(other_partner.id), id, m3)
            .await,
        StoreError::NotFound(Entity::Conversation)
    );
    assert_err!(
        store
            .mark_read(&Viewer::Customer(acme.id, cid("bob")), id, m3)
            .await,
        StoreError::NotFound(Entity::Conversation)
    );
    assert_err!(
        store.mark_read(&Viewer::Agent(rival.id), id, m3).await,
        StoreError::Rule(DomainError::AssignedElsewhere)
    );
    assert_err!(
        store
            .mark_read(&agent_view, ConversationId(id.0 + 100), m3)
            .await,
        StoreError::NotFound(Entity::Conversation)
    );
    assert_eq!(latest(&store).await, since);
    assert_eq!(
        read_flags().await,
        [(m1, false), (m2, false), (m3, false), (reply, false)]
    );

    // The agent reads the customer's messages up to m2 only.
    assert_eq!(
        store
            .mark_read(&agent_view, id, m2)
            .await
            .ok_or_panic("read"),
        Some(m2)
    );
    assert_eq!(
        read_flags().await,
        [(m1, true), (m2, true), (m3, false), (reply, false)]
    );
    let events = events_after(&store, since).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].kind, "read");
    assert_eq!(
        payload(&events[0]),
        json!({"conversationId": id, "messageId": m2, "isAgent": true})
    );
    assert_eq!(
        events[0].audience,
        Audience {
            partner: acme.id,
            customer: cid("ann"),
            agent: Some(holder.id),
            all_agents: false,
        }
    );

    // Nothing left to read up to m2: None, no event.
    let after_read = latest(&store).await;
    assert_eq!(
        store
            .mark_read(&agent_view, id, m2)
            .await
            .ok_or_panic("again"),
        None
    );
    assert_eq!(latest(&store).await, after_read);

    // The customer reads the agent's reply (and never its own messages).
    let customer = Viewer::Customer(acme.id, cid("ann"));
    assert_eq!(
        store
            .mark_read(&customer, id, reply)
            .await
            .ok_or_panic("customer"),
        Some(reply)
    );
    assert_eq!(
        read_flags().await,
        [(m1, true), (m2, true), (m3, false), (reply, true)]
    );
    let events = events_after(&store, after_read).await;
    assert_eq!(
        events.iter().map(payload).collect::<Vec<_>>(),
        [json!({"conversationId": id, "messageId": reply, "isAgent": false})]
    );
}

frontdesk_testkit::on_both_backends!(
    assign_takes_a_waiting_conversation_once,
    ten_agents_race_one_wins,
    close_by_holder_admin_or_anyone_while_waiting,
    read_receipts_mark_the_other_side_up_to_an_id
);
