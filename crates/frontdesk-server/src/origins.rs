//! The browser origins the partner and customer API answer: each partner's registered domain
//! and its subdomains, and loopback hosts when the development flag allows them. Kept in
//! memory, so CORS decides a preflight (which carries no credential) without a query; refreshed
//! from the database every `REFRESH`, and at once for a partner registered on this instance.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use frontdesk_domain::origin::{host_is_within, is_loopback};
use frontdesk_domain::PartnerId;
use frontdesk_store::Store;

/// How soon a partner registered on another instance is answered from its pages.
pub(crate) const REFRESH: Duration = Duration::from_secs(30);

pub(crate) struct PartnerOrigins {
    domains: RwLock<HashMap<PartnerId, String>>,
    allow_loopback: bool,
}

impl PartnerOrigins {
    pub(crate) fn new(allow_loopback: bool) -> Self {
        Self {
            domains: RwLock::new(HashMap::new()),
            allow_loopback,
        }
    }

    /// Whether a page on `host` may be some partner's (the preflight's question).
    pub(crate) fn any_allows(&self, host: &str) -> bool {
        if self.allow_loopback && is_loopback(host) {
            return true;
        }
        self.read()
            .values()
            .any(|domain| host_is_within(host, domain))
    }

    /// Whether a page on `host` may call with `partner`'s credentials; `None` while this
    /// instance has not heard of the partner yet.
    pub(crate) fn allows(&self, partner: PartnerId, host: &str) -> Option<bool> {
        if self.allow_loopback && is_loopback(host) {
            return Some(true);
        }
        self.read()
            .get(&partner)
            .map(|domain| host_is_within(host, domain))
    }

    pub(crate) fn note(&self, partner: PartnerId, domain: String) {
        self.write().insert(partner, domain);
    }

    /// Adds every partner's domain. Merged into what is known, not replacing it: a partner
    /// noted by a registration that committed after the query began must not be forgotten
    /// until the next refresh (partners are never deleted, and a domain never changes).
    pub(crate) async fn refresh(&self, store: &Store) -> Result<(), frontdesk_store::StoreError> {
        let all = store.partner_domains().await?;
        self.write().extend(all);
        Ok(())
    }

    /// Refreshes every `REFRESH` for as long as the server runs.
    pub(crate) fn keep_fresh(self: &Arc<Self>, store: Store) {
        let origins = Arc::clone(self);
        actix_web::rt::spawn(async move {
            loop {
                if let Err(error) = origins.refresh(&store).await {
                    tracing::warn!(%error, "partner domains not refreshed; keeping the last ones");
                }
                actix_web::rt::time::sleep(REFRESH).await;
            }
        });
    }

    // A poisoned lock only means a writer panicked mid-insert of a plain map: still usable.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<PartnerId, String>> {
        self.domains.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<PartnerId, String>> {
        self.domains.write().unwrap_or_else(|e| e.into_inner())
    }
}
