//! Messages through the store: an append returns the stored message and the conversation it
//! moved, and is announced; a `clientMessageId` retry returns the first message, a different
//! message under it is a conflict; who may write where (scope first, then the lifecycle);
//! pages by `after` and `limit`, oldest first.

mod common;

use std::time::Duration;

use common::{
    agent_draft, as_partner, cid, customer_draft, events_after, latest, partner, payload, Ok,
};
use frontdesk_domain::{
    AgentId, Audience, ConversationId, ConversationStatus, DomainError, MessageDraft, MessageId,
    Sender, Viewer,
};
use frontdesk_store::{Entity, StoreError};
use frontdesk_testkit::Backend;
use serde_json::json;

fn with_client_id(content: &str, client_id: &str, conversation: ConversationId) -> MessageDraft {
    let metadata = json!({"page": "/checkout"}).as_object().cloned();
    MessageDraft::new(
        conversation,
        Sender::Customer(cid("ann")),
        content.to_owned(),
        metadata,
        Some(client_id.to_owned()),
    )
    .unwrap_or_else(|e| panic!("draft: {e}"))
}

async fn an_append_is_stored_returned_and_announced(backend: Backend) {
    let (_db, store) = common::fresh(backend).await;
    let (acme, _) = partner(&store, "Acme").await;
    let conversation = store
        .create_conversation(acme.id, &cid("ann"))
        .await
        .ok_or_panic("create");
    let since = latest(&store).await;
    tokio::time::sleep(Duration::from_millis(5)).await;

    let appended = store
        .append_message(
            &as_partner(&acme),
            &customer_draft(conversation.id, "ann", "Where is my order?"),
        )
        .await
        .ok_or_panic("append");
    assert!(appended.created);
    let message = &appended.message;
    assert_eq!(message.conversation_id, conversation.id);
    assert_eq!(message.sender, Sender::Customer(cid("ann")));
    assert_eq!(message.content, "Where is my order?");
    assert!(!message.is_from_agent);
    assert!(!message.read_status);
    assert_eq!(
        (&message.metadata, &message.client_message_id),
        (&None, &None)
    );
    assert_eq!(appended.conversation.id, conversation.id);
    assert_eq!(appended.conversation.status, ConversationStatus::Waiting);
    assert!(
        appended.conversation.updated_at > conversation.updated_at,
        "a message moves the conversation's updatedAt"
    );
    assert_eq!(appended.conversation.updated_at, message.timestamp);
    assert_eq!(
        store
            .conversation(&Viewer::Agent(AgentId(1)), conversation.id)
            .await
            .ok_or_panic("read")
            .updated_at,
        message.timestamp
    );

    let events = events_after(&store, since).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].kind, "message");
    assert_eq!(events[0].conversation_id, Some(conversation.id));
    assert_eq!(events[0].audience, Audience::conversation(&conversation));
    assert_eq!(
        payload(&events[0]),
        json!({
            "id": message.id,
            "conversationId": conversation.id,
            "senderId": "ann",
            "content": "Where is my order?",
            "isFromAgent": false,
            "timestamp": message.timestamp.to_iso(),
            "readStatus": false,
        })
    );
    assert_eq!(
        store
            .messages(&as_partner(&acme), conversation.id, MessageId(0), 100)
            .await
            .ok_or_panic("messages"),
        std::slice::from_ref(message)
    );
}

async fn a_client_message_id_is_one_message(backend: Backend) {
    let (_db, store) = common::fresh(backend).await;
    let (acme, _) = partner(&store, "Acme").await;
    let viewer = as_partner(&acme);
    let conversation = store
        .create_conversation(acme.id, &cid("ann"))
        .await
        .ok_or_panic("create")
        .id;
    let draft = with_client_id("Hi", "c-1", conversation);
    let first = store.append_message(&viewer, &draft).await.ok_or_panic("1");
    assert!(first.created);
    assert_eq!(first.message.client_message_id.as_deref(), Some("c-1"));
    assert_eq!(first.message.metadata, draft.metadata);
    let after_first = latest(&store).await;

    let retry = store
        .append_message(&viewer, &draft)
        .await
        .ok_or_panic("retry");
    assert!(!retry.created, "a retry is not a new message");
    assert_eq!(retry.message, first.message);
    assert_eq!(
        latest(&store).await,
        after_first,
        "a retry is not announced"
    );

    assert_err!(
        store
            .append_message(&viewer, &with_client_id("Hello", "c-1", conversation))
            .await,
        StoreError::Rule(DomainError::IdempotencyMismatch)
    );
    // The same id in another conversation is another message.
    let elsewhere = store
        .create_conversation(acme.id, &cid("ann"))
        .await
        .ok_or_panic("create")
        .id;
    let other = store
        .append_message(&viewer, &with_client_id("Hi", "c-1", elsewhere))
        .await
        .ok_or_panic("elsewhere");
    assert!(other.created);
    assert_ne!(other.message.id, first.message.id);

    // A retry still gets its message once the conversation is closed.
    let agent = common::agent(&store, "a@example.com", false).await;
    store
        .close(agent.id, false, conversation)
        .await
        .ok_or_panic("close");
    let late = store
        .append_message(&viewer, &draft)
        .await
        .ok_or_panic("late");
    assert_eq!((late.created, late.message), (false, first.message.clone()));
    assert_eq!(
        store
            .messages(&viewer, conversation, MessageId(0), 100)
            .await
            .ok_or_panic("messages"),
        [first.message]
    );
}

async fn who_may_write_where(backend: Backend) {
    let (_db, store) = common::fresh(backend).await;
    let (acme, _) = partner(&store, "Acme").await;
    let (other, _) = partner(&store, "Other").await;
    let holder = common::agent(&store, "holder@example.com", false).await;
    let bystander = common::agent(&store, "other@example.com", false).await;
    let id = store
        .create_conversation(acme.id, &cid("ann"))
        .await
        .ok_or_panic("create")
        .id;
    let since = latest(&store).await;

    // Scope first: another partner, another customer, a missing conversation.
    for (viewer, draft) in [
        (Viewer::Partner(other.id), customer_draft(id, "ann", "x")),
        (
            Viewer::Customer(acme.id, cid("bob")),
            customer_draft(id, "bob", "x"),
        ),
        (
            Viewer::Partner(acme.id),
            customer_draft(ConversationId(id.0 + 100), "ann", "x"),
        ),
    ] {
        assert_err!(
            store.append_message(&viewer, &draft).await,
            StoreError::NotFound(Entity::Conversation)
        );
    }
    // An agent writes only in an active conversation it holds.
    let agent_view = |agent: AgentId| Viewer::Agent(agent);
    assert_err!(
        store
            .append_message(&agent_view(holder.id), &agent_draft(id, holder.id, "x"))
            .await,
        StoreError::Rule(DomainError::Transition {
            from: ConversationStatus::Waiting,
            to: ConversationStatus::Active
        })
    );
    // Another customer of the conversation's partner is not its customer.
    assert_err!(
        store
            .append_message(&Viewer::Partner(acme.id), &customer_draft(id, "bob", "x"))
            .await,
        StoreError::Rule(DomainError::Invalid(_))
    );
    assert_eq!(latest(&store).await, since, "refusals store nothing");

    store.assign(holder.id, id).await.ok_or_panic("assign");
    let reply = store
        .append_message(
            &agent_view(holder.id),
            &agent_draft(id, holder.id, "On its way"),
        )
        .await
        .ok_or_panic("reply");
    assert!(reply.message.is_from_agent);
    assert_eq!(reply.message.sender, Sender::Agent(holder.id));
    assert_err!(
        store
            .append_message(
                &agent_view(bystander.id),
                &agent_draft(id, bystander.id, "x")
            )
            .await,
        StoreError::Rule(DomainError::AssignedElsewhere)
    );
    // The customer may still write while an agent holds it, not once it is closed.
    say_ok(&store, &Viewer::Customer(acme.id, cid("ann")), id).await;
    store.close(holder.id, false, id).await.ok_or_panic("close");
    assert_err!(
        store
            .append_message(&Viewer::Partner(acme.id), &customer_draft(id, "ann", "x"))
            .await,
        StoreError::Rule(DomainError::ConversationClosed)
    );
    assert_err!(
        store
            .append_message(&agent_view(holder.id), &agent_draft(id, holder.id, "x"))
            .await,
        StoreError::Rule(DomainError::ConversationClosed)
    );
    assert_eq!(
        store
            .messages(&Viewer::Agent(holder.id), id, MessageId(0), 100)
            .await
            .ok_or_panic("messages")
            .len(),
        2
    );
}

async fn say_ok(store: &frontdesk_store::Store, viewer: &Viewer, id: ConversationId) {
    store
        .append_message(viewer, &customer_draft(id, "ann", "thanks"))
        .await
        .ok_or_panic("customer message");
}

async fn messages_are_paged_oldest_first(backend: Backend) {
    let (_db, store) = common::fresh(backend).await;
    let (acme, _) = partner(&store, "Acme").await;
    let (other, _) = partner(&store, "Other").await;
    let viewer = as_partner(&acme);
    let id = store
        .create_conversation(acme.id, &cid("ann"))
        .await
        .ok_or_panic("create")
        .id;
    let elsewhere = store
        .create_conversation(acme.id, &cid("bob"))
        .await
        .ok_or_panic("create")
        .id;
    let mut ids = Vec::new();
    for n in 0..5 {
        let draft = customer_draft(id, "ann", &format!("m{n}"));
        ids.push(
            store
                .append_message(&viewer, &draft)
                .await
                .ok_or_panic("m")
                .message
                .id,
        );
        // Interleaved messages of another conversation stay out of this one's pages.
        common::say(&store, &acme, elsewhere, "bob").await;
    }
    let page = |after, limit| {
        let (store, viewer) = (store.clone(), viewer.clone());
        async move {
            store
                .messages(&viewer, id, after, limit)
                .await
                .ok_or_panic("page")
                .into_iter()
                .map(|m| (m.id, m.content))
                .collect::<Vec<_>>()
        }
    };
    let all: Vec<(MessageId, String)> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| (*id, format!("m{n}")))
        .collect();
    assert_eq!(page(MessageId(0), 100).await, all);
    assert_eq!(page(MessageId(0), 2).await, all[..2]);
    assert_eq!(page(ids[1], 2).await, all[2..4]);
    assert_eq!(page(ids[4], 100).await, []);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));

    for refused in [
        Viewer::Partner(other.id),
        Viewer::Customer(acme.id, cid("bob")),
    ] {
        assert_err!(
            store.messages(&refused, id, MessageId(0), 100).await,
            StoreError::NotFound(Entity::Conversation)
        );
    }
    assert_err!(
        store
            .messages(&viewer, ConversationId(id.0 + 100), MessageId(0), 100)
            .await,
        StoreError::NotFound(Entity::Conversation)
    );
}

frontdesk_testkit::on_both_backends!(
    an_append_is_stored_returned_and_announced,
    a_client_message_id_is_one_message,
    who_may_write_where,
    messages_are_paged_oldest_first
);
