//! A circuit breaker: after `failures` consecutive server failures, calls are refused at once
//! for `cool_down`, so a dead model costs nothing per message; then one probe call decides.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// The cool-down is over and one probe is in flight.
    Probing,
}

#[derive(Debug)]
pub struct CircuitBreaker {
    state: Mutex<State>,
    failures: u32,
    cool_down: Duration,
}

impl CircuitBreaker {
    pub fn new(failures: u32, cool_down: Duration) -> Self {
        Self {
            state: Mutex::new(State::Closed { failures: 0 }),
            failures: failures.max(1),
            cool_down,
        }
    }

    /// Whether a call may go out at `now`.
    pub fn allow(&self, now: Instant) -> bool {
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => true,
            State::Open { until } if now >= until => {
                *state = State::Probing;
                true
            }
            State::Open { .. } | State::Probing => false,
        }
    }

    /// The outcome of a call that went out.
    pub fn record(&self, succeeded: bool, now: Instant) {
        let mut state = self.lock();
        *state = match (*state, succeeded) {
            (_, true) => State::Closed { failures: 0 },
            (State::Closed { failures }, false) if failures + 1 < self.failures => State::Closed {
                failures: failures + 1,
            },
            (_, false) => State::Open {
                until: now + self.cool_down,
            },
        };
    }

    pub fn is_open(&self) -> bool {
        !matches!(*self.lock(), State::Closed { .. })
    }

    // A poisoned lock held plain data a panicking thread was writing: still usable.
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_opens_after_consecutive_failures_and_one_probe_closes_it() {
        let breaker = CircuitBreaker::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        breaker.record(false, t0);
        breaker.record(false, t0);
        assert!(breaker.allow(t0), "two failures of three: still closed");
        breaker.record(true, t0);
        breaker.record(false, t0);
        breaker.record(false, t0);
        assert!(breaker.allow(t0), "a success resets the count");
        breaker.record(false, t0);
        assert!(!breaker.allow(t0), "three in a row: open");
        assert!(!breaker.allow(t0 + Duration::from_secs(9)));
        assert!(breaker.allow(t0 + Duration::from_secs(10)), "the probe");
        assert!(
            !breaker.allow(t0 + Duration::from_secs(10)),
            "one probe at a time"
        );
        breaker.record(false, t0 + Duration::from_secs(10));
        assert!(
            !breaker.allow(t0 + Duration::from_secs(19)),
            "a failed probe reopens it"
        );
        assert!(breaker.allow(t0 + Duration::from_secs(20)));
        breaker.record(true, t0 + Duration::from_secs(20));
        assert!(breaker.allow(t0 + Duration::from_secs(20)) && !breaker.is_open());
    }
}
