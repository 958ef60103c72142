//! One log line per interval for a warning that repeats, with how often it happened: a flood
//! must not turn into a flood of log lines.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct LogThrottle {
    interval: Duration,
    /// When the last line was written.
    logged: Option<Instant>,
    /// Occurrences since then.
    pending: u64,
}

impl LogThrottle {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            logged: None,
            pending: 0,
        }
    }

    /// Counts one occurrence; `Some(count)` when a line is due (the first occurrence, then at
    /// most once per interval), with the occurrences it stands for.
    pub fn hit(&mut self, now: Instant) -> Option<u64> {
        self.pending += 1;
        let due = self
            .logged
            .is_none_or(|at| now.saturating_duration_since(at) >= self.interval);
        if !due {
            return None;
        }
        self.logged = Some(now);
        Some(std::mem::take(&mut self.pending))
    }

    /// Occurrences not yet logged (for a last line when the connection ends).
    pub fn unlogged(&self) -> u64 {
        self.pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_the_first_then_once_per_interval_with_a_count() {
        let start = Instant::now();
        let mut throttle = LogThrottle::new(Duration::from_secs(10));
        assert_eq!(throttle.hit(start), Some(1));
        for n in 1..1_000 {
            assert_eq!(throttle.hit(start + Duration::from_millis(n)), None);
        }
        assert_eq!(throttle.unlogged(), 999);
        assert_eq!(throttle.hit(start + Duration::from_secs(10)), Some(1_000));
        assert_eq!(throttle.unlogged(), 0);
    }
}
