//! What the store's in-source database tests start from.

use frontdesk_domain::{Partner, PartnerRegistration, Secret};

use crate::{Store, StoreConfig};

/// The store at `url` with one partner, Acme.
pub(crate) async fn with_acme(url: &str) -> (Store, Partner) {
    let store = Store::open(&StoreConfig::new(url))
        .await
        .unwrap_or_else(|e| panic!("open: {e}"));
    let registration = PartnerRegistration {
        name: "Acme".into(),
        domain: "acme.example.com".into(),
    };
    let partner = store
        .create_partner(&registration, &Secret::presented("fdk_test").hash())
        .await
        .unwrap_or_else(|e| panic!("partner: {e}"));
    (store, partner)
}
