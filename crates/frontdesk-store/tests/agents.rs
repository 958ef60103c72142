//! Agents through the store: created once per email (`Duplicate` after), found by email for
//! sign-in (trimmed, any case; a NUL finds nobody rather than failing). None of it is an event.

mod common;

use common::{latest, Ok};
use frontdesk_domain::{AgentSignup, Cursor};
use frontdesk_store::StoreError;
use frontdesk_testkit::Backend;

async fn agents_are_created_once_per_email(backend: Backend) {
    let (_db, store) = common::fresh(backend).await;
    let signup = AgentSignup {
        email: "ada@example.com".to_owned(),
        name: "Ada".to_owned(),
        password_hash: "$argon2id$stand-in".to_owned(),
        is_admin: true,
    };
    let ada = store.create_agent(&signup).await.ok_or_panic("create");
    assert_eq!(
        (ada.email.as_str(), ada.name.as_str(), ada.is_admin),
        ("ada@example.com", "Ada", true)
    );
    let bob = common::agent(&store, "bob@example.com", false).await;
    assert_ne!(ada.id, bob.id);
    assert!(!bob.is_admin);

    let again = AgentSignup {
        name: "Another Ada".to_owned(),
        ..signup.clone()
    };
    assert_err!(
        store.create_agent(&again).await,
        StoreError::Duplicate("email")
    );

    assert_eq!(latest(&store).await, Cursor::START, "agents are not events");
}

async fn credentials_are_found_by_email(backend: Backend) {
    let (_db, store) = common::fresh(backend).await;
    let ada = common::agent(&store, "ada@example.com", false).await;
    common::agent(&store, "bob@example.com", false).await;
    for spelt in ["ada@example.com", "  ADA@Example.com\t"] {
        let (agent, hash) = store
            .agent_credentials(spelt)
            .await
            .ok_or_panic("credentials")
            .unwrap_or_else(|| panic!("{spelt:?} found nobody"));
        assert_eq!(agent, ada);
        assert_eq!(hash, "hash of ada@example.com");
    }
    for nobody in ["carol@example.com", "ada@example.com\0", ""] {
        assert_eq!(
            store.agent_credentials(nobody).await.ok_or_panic("nobody"),
            None,
            "{nobody:?}"
        );
    }
}

frontdesk_testkit::on_both_backends!(
    agents_are_created_once_per_email,
    credentials_are_found_by_email
);
