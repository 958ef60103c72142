//! Login throttling: failed attempts counted per account and per client address in a sliding
//! window; past the limit, `429` with `Retry-After` until the window has passed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed per key within the window.
const MAX_FAILURES: usize = 5;
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Above this many tracked keys the oldest entries are dropped (bounded memory under attack).
const MAX_KEYS: usize = 100_000;

#[derive(Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl LoginLimiter {
    fn keys(email: &str, ip: Option<IpAddr>) -> Vec<String> {
        let mut keys = vec![format!("account:{}", email.trim().to_lowercase())];
        if let Some(ip) = ip {
            keys.push(format!("ip:{ip}"));
        }
        keys
    }

    /// `Some(wait)` when this account or address must wait before trying again.
    pub fn check(&self, email: &str, ip: Option<IpAddr>) -> Option<Duration> {
        let now = Instant::now();
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        Self::keys(email, ip)
            .iter()
            .filter_map(|key| failures.get(key))
            .filter_map(|times| {
                let recent: Vec<&Instant> = times
                    .iter()
                    .filter(|t| now.duration_since(**t) < WINDOW)
                    .collect();
                (recent.len() >= MAX_FAILURES)
                    .then(|| {
                        recent
                            .first()
                            .map(|first| WINDOW - now.duration_since(**first))
                    })
                    .flatten()
            })
            .max()
    }

    pub fn failed(&self, email: &str, ip: Option<IpAddr>) {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() > MAX_KEYS {
            failures.retain(|_, times| times.iter().any(|t| now.duration_since(*t) < WINDOW));
        }
        for key in Self::keys(email, ip) {
            let times = failures.entry(key).or_default();
            times.retain(|t| now.duration_since(*t) < WINDOW);
            times.push(now);
        }
    }

    /// A successful login clears the account's count (not the address's).
    pub fn succeeded(&self, email: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(&format!("account:{}", email.trim().to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_five_failures_per_account_or_address() {
        let limiter = LoginLimiter::default();
        let ip: Option<IpAddr> = "10.0.0.1".parse().ok();
        for _ in 0..MAX_FAILURES {
            assert_eq!(limiter.check("a@b.c", ip), None);
            limiter.failed("a@b.c", ip);
        }
        assert!(limiter.check("a@b.c", None).is_some(), "account blocked");
        assert!(limiter.check("other@b.c", ip).is_some(), "address blocked");
        assert_eq!(limiter.check("other@b.c", None), None);
        limiter.succeeded("A@B.C");
        assert!(limiter.check("a@b.c", None).is_none());
    }
}
