//! Sign-in and admin-token throttling, counted in the database (`Store::throttle_hit`) so every
//! worker and every instance on one database shares the counts.
//!
//! An attempt is reserved (counted) before its password is hashed, atomically, so concurrent
//! attempts cannot all slip under a limit. For sign-in three keys are counted, in this order:
//! - the client address, across accounts: past `per_address`, 429 (one address guessing many
//!   accounts);
//! - the account and address pair: past `per_account_address`, 429 (one address guessing one
//!   account); an attacker elsewhere never touches the real agent's pair;
//! - the account, from any address: past `per_account`, each further attempt is delayed,
//!   doubling up to `max_delay`, but never refused, so no one can lock an agent out.
//!
//! A key refused at one step is not counted at the next, so a refused flood costs one row per
//! address and never inflates the account's count. A success clears the pair and the account
//! and gives the address its attempt back; an attempt that never got hashed (503) is refunded.
//!
//! Keys are digests (no email or address is stored in clear); rows whose window has ended are
//! pruned at most once a minute per instance, so the table holds at most the keys hit in one
//! window plus a minute: per address one row plus at most `per_address` pairs and accounts.
//!
//! Each instance also remembers, in memory, the keys the database has refused until their
//! window ends, so a flood of refused attempts costs no database write (at most
//! `MAX_BLOCKED` keys; past that the database alone answers).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use frontdesk_domain::Secret;
use frontdesk_store::{Store, StoreError};

use crate::config::ServeConfig;

/// How often expired counters are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// The first delay once an account is past its limit.
const FIRST_DELAY: Duration = Duration::from_millis(250);
/// Refused keys remembered in memory per instance (each about 100 bytes).
const MAX_BLOCKED: usize = 100_000;

#[derive(Debug, Clone)]
pub struct ThrottleLimits {
    pub per_account_address: i64,
    pub per_address: i64,
    pub per_account: i64,
    pub max_delay: Duration,
    pub window: Duration,
    pub admin_token_failures: i64,
}

impl ThrottleLimits {
    pub fn from_config(config: &ServeConfig) -> Self {
        Self {
            per_account_address: i64::from(config.sign_in_per_account_address),
            per_address: i64::from(config.sign_in_per_address),
            per_account: i64::from(config.sign_in_per_account),
            max_delay: Duration::from_secs_f64(config.sign_in_max_delay_secs.clamp(0.0, 3600.0)),
            window: Duration::from_secs(config.sign_in_window_secs.max(1)),
            admin_token_failures: i64::from(config.admin_token_failures),
        }
    }

    /// The wait before checking a password for an account with `hits` attempts this window.
    fn delay(&self, hits: i64) -> Duration {
        let excess = hits.saturating_sub(self.per_account);
        if excess <= 0 {
            return Duration::ZERO;
        }
        let doublings = u32::try_from(excess - 1).unwrap_or(u32::MAX).min(20);
        FIRST_DELAY
            .saturating_mul(1 << doublings)
            .min(self.max_delay)
    }
}

/// A counted sign-in attempt: the keys to settle once the password has been checked.
#[derive(Debug)]
pub struct Reservation {
    address: String,
    pair: String,
    account: String,
    /// How long to wait before checking the password (the account is being guessed).
    pub delay: Duration,
}

/// A counted admin-token attempt.
#[derive(Debug)]
pub struct AdminAttempt {
    address: String,
}

pub struct Throttle {
    limits: ThrottleLimits,
    last_prune: Mutex<Option<Instant>>,
    /// Keys over their limit, until their window ends.
    blocked: Mutex<HashMap<String, Instant>>,
}

/// `Err(wait)`: refused, with how long until the window ends.
pub type Admission<T> = Result<T, Duration>;

impl Throttle {
    pub fn new(limits: ThrottleLimits) -> Self {
        Self {
            limits,
            last_prune: Mutex::new(None),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    /// How long `key` is still known to be refused on this instance.
    fn blocked_for(&self, key: &str) -> Option<Duration> {
        let blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        let until = blocked.get(key)?;
        let left = until.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    }

    /// Remembers that the database refused `key` for `wait`; returns `wait`.
    fn block(&self, key: &str, wait: Duration) -> Duration {
        let now = Instant::now();
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        if blocked.len() >= MAX_BLOCKED {
            blocked.retain(|_, until| *until > now);
        }
        if blocked.len() < MAX_BLOCKED {
            blocked.insert(key.to_owned(), now + wait);
        }
        wait
    }

    /// Counts one hit on `key`; `Err(wait)` when it is over `limit` (known here, or just now).
    async fn hit(
        &self,
        store: &Store,
        key: &str,
        limit: i64,
    ) -> Result<Admission<i64>, StoreError> {
        if let Some(wait) = self.blocked_for(key) {
            return Ok(Err(wait));
        }
        let hit = store.throttle_hit(key, self.window()).await?;
        if hit.hits > limit {
            return Ok(Err(self.block(key, hit.remaining())));
        }
        Ok(Ok(hit.hits))
    }

    fn window(&self) -> time::Duration {
        time::Duration::try_from(self.limits.window).unwrap_or(time::Duration::MINUTE)
    }

    /// Counts a sign-in attempt for `email` from `ip` before its password is checked.
    pub async fn reserve(
        &self,
        store: &Store,
        email: &str,
        ip: Option<IpAddr>,
    ) -> Result<Admission<Reservation>, StoreError> {
        self.prune_now_and_then(store).await;
        let email = email.trim().to_lowercase();
        let address = ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        let reservation = Reservation {
            address: key("sign-in-address", &address),
            pair: key("sign-in-pair", &format!("{email}\n{address}")),
            account: key("sign-in-account", &email),
            delay: Duration::ZERO,
        };
        if let Err(wait) = self
            .hit(store, &reservation.address, self.limits.per_address)
            .await?
        {
            return Ok(Err(wait));
        }
        if let Err(wait) = self
            .hit(store, &reservation.pair, self.limits.per_account_address)
            .await?
        {
            return Ok(Err(wait));
        }
        let hits = store
            .throttle_hit(&reservation.account, self.window())
            .await?
            .hits;
        Ok(Ok(Reservation {
            delay: self.limits.delay(hits),
            ..reservation
        }))
    }

    /// The right password: the account and pair start afresh, the address gets its attempt back.
    pub async fn succeeded(
        &self,
        store: &Store,
        reservation: &Reservation,
    ) -> Result<(), StoreError> {
        store.throttle_clear(&reservation.pair).await?;
        store.throttle_clear(&reservation.account).await?;
        store.throttle_refund(&reservation.address).await
    }

    /// The password was never checked (no hashing slot): the attempt does not count.
    pub async fn not_attempted(
        &self,
        store: &Store,
        reservation: &Reservation,
    ) -> Result<(), StoreError> {
        store.throttle_refund(&reservation.pair).await?;
        store.throttle_refund(&reservation.account).await?;
        store.throttle_refund(&reservation.address).await
    }

    /// Counts an admin-token attempt from `ip` before the token is compared.
    pub async fn reserve_admin(
        &self,
        store: &Store,
        ip: Option<IpAddr>,
    ) -> Result<Admission<AdminAttempt>, StoreError> {
        self.prune_now_and_then(store).await;
        let address = ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        let attempt = AdminAttempt {
            address: key("admin-token-address", &address),
        };
        Ok(self
            .hit(store, &attempt.address, self.limits.admin_token_failures)
            .await?
            .map(|_| attempt))
    }

    /// The attempt was not a wrong guess (the right token, or a valid agent session).
    pub async fn admin_not_failed(
        &self,
        store: &Store,
        attempt: &AdminAttempt,
    ) -> Result<(), StoreError> {
        store.throttle_refund(&attempt.address).await
    }

    /// Deletes expired counters, at most once per `PRUNE_EVERY` on this instance.
    async fn prune_now_and_then(&self, store: &Store) {
        let due = {
            let mut last = self.last_prune.lock().unwrap_or_else(|p| p.into_inner());
            let due = last.is_none_or(|at| at.elapsed() >= PRUNE_EVERY);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if due {
            match store.throttle_prune().await {
                Ok(pruned) if pruned > 0 => tracing::debug!(pruned, "expired throttle counters"),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "cannot prune throttle counters"),
            }
        }
    }
}

/// `kind:` and the digest of what it counts.
fn key(kind: &str, material: &str) -> String {
    format!("{kind}:{}", Secret::presented(material).hash().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ThrottleLimits {
        ThrottleLimits {
            per_account_address: 5,
            per_address: 20,
            per_account: 20,
            max_delay: Duration::from_secs(10),
            window: Duration::from_secs(900),
            admin_token_failures: 10,
        }
    }

    #[test]
    fn the_delay_doubles_past_the_account_limit_up_to_the_cap() {
        let limits = limits();
        assert_eq!(limits.delay(1), Duration::ZERO);
        assert_eq!(limits.delay(20), Duration::ZERO);
        assert_eq!(limits.delay(21), Duration::from_millis(250));
        assert_eq!(limits.delay(22), Duration::from_millis(500));
        assert_eq!(limits.delay(24), Duration::from_secs(2));
        assert_eq!(limits.delay(30), Duration::from_secs(10));
        assert_eq!(limits.delay(i64::MAX), Duration::from_secs(10));
    }

    #[test]
    fn keys_are_digests_of_a_normalised_email() {
        assert_eq!(key("k", "a@b.c"), key("k", "a@b.c"));
        assert_ne!(key("k", "a@b.c"), key("j", "a@b.c"));
        assert!(!key("k", "a@b.c").contains("a@b.c"));
    }
}
