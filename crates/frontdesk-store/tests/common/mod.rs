//! What the store's tests share: a fresh store on a backend, and the callers and drafts the
//! tests build through the public API only (the store's internals are free to change).
// Each test file uses a different part of this module.
#![allow(dead_code)]

use frontdesk_domain::{
    Agent, AgentId, AgentSignup, ConversationId, Cursor, CustomerId, MessageDraft, MessageId,
    Partner, PartnerRegistration, Secret, Sender, Viewer,
};
use frontdesk_store::{Store, StoredEvent};
use frontdesk_testkit::{Backend, TestDb};
use serde_json::Value;

/// Asserts that `$result` is `Err` matching `$pattern` (StoreError is not `PartialEq`).
#[macro_export]
macro_rules! assert_err {
    ($result:expr, $pattern:pat) => {
        match $result {
            Err($pattern) => {}
            other => panic!("expected Err({}), got {other:?}", stringify!($pattern)),
        }
    };
}

/// A fresh database on `backend` and the store opened on it (keep the `TestDb` alive: it
/// drops the database).
pub async fn fresh(backend: Backend) -> (TestDb, Store) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    (db, store)
}

pub fn cid(text: &str) -> CustomerId {
    CustomerId::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// A partner and its API key.
pub async fn partner(store: &Store, name: &str) -> (Partner, Secret) {
    let key = Secret::presented(&format!("fdk_test_key_of_{name}"));
    let registration = PartnerRegistration {
        name: name.to_owned(),
        domain: format!("{}.example.com", name.to_lowercase()),
    };
    let partner = store
        .create_partner(&registration, &key.hash())
        .await
        .unwrap_or_else(|e| panic!("create_partner: {e}"));
    (partner, key)
}

/// An agent (the store keeps whatever hash it is given; no argon2 needed here).
pub async fn agent(store: &Store, email: &str, is_admin: bool) -> Agent {
    let signup = AgentSignup {
        email: email.to_owned(),
        name: format!("Agent {email}"),
        password_hash: format!("hash of {email}"),
        is_admin,
    };
    store
        .create_agent(&signup)
        .await
        .unwrap_or_else(|e| panic!("create_agent: {e}"))
}

pub fn customer_draft(conversation: ConversationId, customer: &str, content: &str) -> MessageDraft {
    MessageDraft::new(
        conversation,
        Sender::Customer(cid(customer)),
        content.to_owned(),
        None,
        None,
    )
    .unwrap_or_else(|e| panic!("draft: {e}"))
}

pub fn agent_draft(conversation: ConversationId, agent: AgentId, content: &str) -> MessageDraft {
    MessageDraft::new(
        conversation,
        Sender::Agent(agent),
        content.to_owned(),
        None,
        None,
    )
    .unwrap_or_else(|e| panic!("draft: {e}"))
}

/// The partner's viewer.
pub fn as_partner(partner: &Partner) -> Viewer {
    Viewer::Partner(partner.id)
}

/// A customer message through the store; returns its id.
pub async fn say(
    store: &Store,
    partner: &Partner,
    conversation: ConversationId,
    customer: &str,
) -> MessageId {
    store
        .append_message(
            &as_partner(partner),
            &customer_draft(conversation, customer, "hello"),
        )
        .await
        .unwrap_or_else(|e| panic!("append_message: {e}"))
        .message
        .id
}

/// Every event after `since`, oldest first.
pub async fn events_after(store: &Store, since: Cursor) -> Vec<StoredEvent> {
    store
        .events_after(since, 10_000)
        .await
        .unwrap_or_else(|e| panic!("events_after: {e}"))
}

pub async fn latest(store: &Store) -> Cursor {
    store
        .latest_event_id()
        .await
        .unwrap_or_else(|e| panic!("latest_event_id: {e}"))
}

/// An event's payload as JSON.
pub fn payload(event: &StoredEvent) -> Value {
    serde_json::from_str(&event.payload).unwrap_or_else(|e| panic!("{}: {e}", event.payload))
}

/// Unwraps a store result, naming the call.
pub trait Ok<T> {
    fn ok_or_panic(self, what: &str) -> T;
}

impl<T, E: std::fmt::Display> Ok<T> for Result<T, E> {
    fn ok_or_panic(self, what: &str) -> T {
        self.unwrap_or_else(|e| panic!("{what}: {e}"))
    }
}
