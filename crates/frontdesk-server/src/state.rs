//! What every handler shares.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use frontdesk_domain::SecretHash;
use frontdesk_store::Store;

use crate::config::{Registration, ServeConfig};
use crate::key_cache::KeyCache;
use crate::limiter::{Throttle, ThrottleLimits};
use crate::origins::PartnerOrigins;
use crate::password_gate::PasswordGate;
use crate::realtime::connection::Heartbeat;
use crate::realtime::flow::Flow;
use crate::realtime::Hub;
use crate::registration_limit::RegistrationLimit;

/// One per worker thread (see `for_worker` and `server::WORKER_STATE`); all but the store are
/// shared by every worker.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub hub: Arc<Hub>,
    pub heartbeat: Heartbeat,
    /// What one WebSocket may send, and how long a write to it may wait.
    pub flow: Flow,
    /// How often each WebSocket re-checks its credential against the database (jittered).
    pub ws_recheck: Duration,
    /// How long a customer session token lasts.
    pub customer_session: time::Duration,
    /// Sign-in and admin-token attempts, counted in the database.
    pub logins: Arc<Throttle>,
    /// Every argon2 hash or check goes through it.
    pub hashing: Arc<PasswordGate>,
    pub registrations: Arc<RegistrationLimit>,
    /// Peers whose `X-Forwarded-For` is believed (see `client_ip`).
    pub trusted_proxies: Arc<[IpAddr]>,
    pub keys: Arc<KeyCache>,
    /// The browser origins each partner's pages may call from.
    pub origins: Arc<PartnerOrigins>,
    pub registration: Registration,
    /// Digest of the admin token, compared digest to digest.
    pub admin_token: Option<SecretHash>,
    /// The automated responder (a no-op when it is off).
    pub replies: Arc<crate::app::replies::Replies>,
}

impl AppState {
    /// `keys` is shared with the tailer, which forgets revoked keys on every instance.
    pub fn new(
        store: Store,
        hub: Arc<Hub>,
        keys: Arc<KeyCache>,
        config: &ServeConfig,
        admin_token: Option<SecretHash>,
        replies: Arc<crate::app::replies::Replies>,
    ) -> Self {
        let hashing_threads = match config.password_hashes {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let seconds = |s: f64| Duration::from_secs_f64(s.max(0.01));
        Self {
            store,
            hub,
            heartbeat: Heartbeat {
                interval: seconds(config.ws_ping_secs),
                timeout: seconds(config.ws_timeout_secs),
            },
            flow: Flow {
                rate: config.ws_rate,
                burst: config.ws_burst,
                typing_interval: Duration::from_millis(config.ws_typing_interval_ms),
                write_timeout: seconds(config.ws_write_timeout_secs),
            },
            ws_recheck: seconds(config.ws_recheck_secs),
            customer_session: time::Duration::seconds(config.customer_session_secs.max(1)),
            logins: Arc::new(Throttle::new(ThrottleLimits::from_config(config))),
            hashing: Arc::new(PasswordGate::new(
                hashing_threads,
                config.password_hash_queue,
            )),
            registrations: Arc::new(RegistrationLimit::new(config.registrations_per_hour)),
            trusted_proxies: config.trusted_proxies.clone().into(),
            keys,
            origins: Arc::new(PartnerOrigins::new(config.allow_localhost_origins)),
            registration: config.registration,
            admin_token,
            replies,
        }
    }

    /// This state for the worker thread calling it, with a store whose PostgreSQL connections
    /// that thread opens and drives itself (`Store::with_own_pool`): through a pool shared by
    /// the workers, a request waited for whichever worker drove its connection.
    pub fn for_worker(&self, pool_size: usize) -> Self {
        let store = self.store.with_own_pool(pool_size).unwrap_or_else(|error| {
            tracing::warn!(%error, "no pool of the worker's own; it shares the instance's");
            self.store.clone()
        });
        Self {
            store,
            ..self.clone()
        }
    }
}
