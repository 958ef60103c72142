//! Open registration, rate-limited per client address (a GCRA bucket from the `governor`
//! crate): a burst of `per_hour`, then one more every hour / `per_hour`. Kept in memory per
//! instance, which suffices for a limit meant to stop floods, not to count exactly.
//!
//! Memory: one small entry per address that registered recently. Entries whose bucket is full
//! again (at most an hour after their last registration) are dropped every `SWEEP_EVERY`
//! checks, so only addresses seen within about an hour are held.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

const SWEEP_EVERY: u64 = 1024;

pub struct RegistrationLimit {
    /// `None`: unlimited (`per_hour` 0).
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    checks: AtomicU64,
}

impl RegistrationLimit {
    pub fn new(per_hour: u32) -> Self {
        Self {
            limiter: NonZeroU32::new(per_hour)
                .map(|n| RateLimiter::keyed(Quota::per_hour(n).allow_burst(n))),
            checks: AtomicU64::new(0),
        }
    }

    /// `Err(wait)` when `ip` has used up its registrations for now.
    pub fn check(&self, ip: Option<IpAddr>) -> Result<(), Duration> {
        let (Some(limiter), Some(ip)) = (&self.limiter, ip) else {
            return Ok(());
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        limiter
            .check_key(&ip)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_cut_off_for_its_address_only() {
        let limit = RegistrationLimit::new(3);
        let one = "10.0.0.1".parse().ok();
        let two = "10.0.0.2".parse().ok();
        for _ in 0..3 {
            assert_eq!(limit.check(one), Ok(()));
        }
        let wait = limit.check(one).err().unwrap_or_default();
        assert!(wait > Duration::from_secs(60), "about 20 minutes: {wait:?}");
        assert_eq!(limit.check(two), Ok(()));
        let unlimited = RegistrationLimit::new(0);
        assert!((0..100).all(|_| unlimited.check(one).is_ok()));
    }
}
