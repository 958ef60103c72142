//! What every handler shares.

use frontdesk_domain::{Secret, SecretHash};
use frontdesk_store::Store;

use crate::config::{Registration, ServeConfig};

pub struct AppState {
    pub store: Store,
    pub registration: Registration,
    /// Digest of the admin token, compared digest to digest.
    pub admin_token: Option<SecretHash>,
}

impl AppState {
    pub fn new(store: Store, config: &ServeConfig) -> Self {
        Self {
            store,
            registration: config.registration,
            admin_token: config
                .admin_token
                .as_deref()
                .filter(|token| !token.is_empty())
                .map(|token| Secret::presented(token).hash()),
        }
    }
}
