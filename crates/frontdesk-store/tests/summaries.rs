//! Conversation summaries through the store: the agent list with each conversation's
//! customer and partner, first and last message, and unread count (the customer's unread
//! messages), with the list's own order, filters and limit.

mod common;

use common::{agent_draft, cid, partner, say, Ok};
use frontdesk_domain::{ConversationStatus, CustomerChanges, Patch, Viewer};
use frontdesk_testkit::Backend;

async fn summaries_carry_what_the_queue_shows(backend: Backend) {
    let (_db, store) = common::fresh(backend).await;
    assert_eq!(
        store
            .conversation_summaries(None, None, 100)
            .await
            .ok_or_panic("empty"),
        []
    );
    let (acme, _) = partner(&store, "Acme").await;
    let (globex, _) = partner(&store, "Globex").await;
    let agent = common::agent(&store, "a@example.com", false).await;
    store
        .upsert_customer(
            acme.id,
            &cid("ann"),
            CustomerChanges {
                name: Patch::Set("Ann".into()),
                email: Patch::Set("ann@example.com".into()),
                ..CustomerChanges::default()
            },
        )
        .await
        .ok_or_panic("ann");
    let anns = store
        .create_conversation(acme.id, &cid("ann"))
        .await
        .ok_or_panic("ann's")
        .id;
    // The same customer id under another partner: its own customer, without a name.
    let globex_ann = store
        .create_conversation(globex.id, &cid("ann"))
        .await
        .ok_or_panic("globex")
        .id;
    let m1 = say(&store, &acme, anns, "ann").await;
    // Two more from the customer, left unread.
    say(&store, &acme, anns, "ann").await;
    say(&store, &acme, anns, "ann").await;
    store.assign(agent.id, anns).await.ok_or_panic("assign");
    let reply = store
        .append_message(&Viewer::Agent(agent.id), &agent_draft(anns, agent.id, "hi"))
        .await
        .ok_or_panic("reply")
        .message
        .id;
    store
        .mark_read(&Viewer::Agent(agent.id), anns, m1)
        .await
        .ok_or_panic("read");

    let all = store
        .conversation_summaries(None, None, 100)
        .await
        .ok_or_panic("summaries");
    assert_eq!(
        all.iter().map(|s| s.conversation.id).collect::<Vec<_>>(),
        [anns, globex_ann],
        "newest activity first"
    );
    let ann = &all[0];
    assert_eq!(
        ann.conversation,
        store
            .conversation(&Viewer::Agent(agent.id), anns)
            .await
            .ok_or_panic("conversation")
    );
    assert_eq!(ann.customer.id, cid("ann"));
    assert_eq!(ann.customer.name.as_deref(), Some("Ann"));
    assert_eq!(ann.customer.email.as_deref(), Some("ann@example.com"));
    assert_eq!(ann.partner.id, acme.id.to_string());
    assert_eq!(ann.partner.name, "Acme");
    assert_eq!(ann.first_message.as_ref().map(|m| m.id), Some(m1));
    assert_eq!(ann.last_message.as_ref().map(|m| m.id), Some(reply));
    // Two unread; the one read and the agent's own reply do not count.
    assert_eq!(ann.unread_count, 2);

    let other = &all[1];
    assert_eq!(other.customer.id, cid("ann"));
    assert_eq!(
        (&other.customer.name, &other.customer.email),
        (&None, &None)
    );
    assert_eq!(other.partner.name, "Globex");
    assert_eq!((&other.first_message, &other.last_message), (&None, &None));
    assert_eq!(other.unread_count, 0);

    let ids = |summaries: Vec<frontdesk_domain::summary::ConversationSummary>| {
        summaries
            .into_iter()
            .map(|s| s.conversation.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store
            .conversation_summaries(Some(ConversationStatus::Waiting), None, 100)
            .await
            .ok_or_panic("waiting")),
        [globex_ann]
    );
    assert_eq!(
        ids(store
            .conversation_summaries(None, Some(agent.id), 100)
            .await
            .ok_or_panic("mine")),
        [anns]
    );
    assert_eq!(
        ids(store
            .conversation_summaries(None, None, 1)
            .await
            .ok_or_panic("limit")),
        [anns]
    );
}

frontdesk_testkit::on_both_backends!(summaries_carry_what_the_queue_shows);
