//! Latency histograms (HDR, microseconds) and the summary every result carries.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency a histogram holds; anything slower is clamped to it (and still counted).
const MAX_MICROS: u64 = 120_000_000;

/// Percentiles of one latency distribution, in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Summary {
    pub count: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

/// An HDR histogram of latencies with 3 significant digits, 1 µs to 120 s.
#[derive(Clone)]
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    pub fn new() -> Self {
        // Fixed bounds within hdrhistogram's limits: construction cannot fail.
        Self(
            Histogram::new_with_bounds(1, MAX_MICROS, 3)
                .expect("valid HDR histogram bounds (harness bug otherwise)"),
        )
    }

    pub fn record(&mut self, latency: Duration) {
        self.record_micros(u64::try_from(latency.as_micros()).unwrap_or(MAX_MICROS));
    }

    pub fn record_micros(&mut self, micros: u64) {
        // saturating_record clamps to the bounds instead of failing.
        self.0.saturating_record(micros.clamp(1, MAX_MICROS));
    }

    pub fn merge(&mut self, other: &Latencies) {
        // Same bounds on both sides, so adding cannot fail; ignore the impossible error.
        let _ = self.0.add(&other.0);
    }

    pub fn summary(&self) -> Summary {
        if self.0.is_empty() {
            return Summary::default();
        }
        Summary {
            count: self.0.len(),
            p50_us: self.0.value_at_quantile(0.50),
            p90_us: self.0.value_at_quantile(0.90),
            p99_us: self.0.value_at_quantile(0.99),
            max_us: self.0.max(),
            mean_us: self.0.mean(),
        }
    }
}

/// One clock for the whole process, so a timestamp written into a frame by one task can be
/// compared with the arrival time seen by another.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since the process epoch.
pub fn now_ns() -> u64 {
    u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Microseconds from `sent_ns` (a `now_ns` value) until now.
pub fn micros_since(sent_ns: u64) -> u64 {
    now_ns().saturating_sub(sent_ns) / 1_000
}

/// `<seq>:<sent_ns>`: the content of timed messages, so the receiver needs no shared state.
pub fn stamp(seq: u64) -> String {
    format!("{seq}:{}", now_ns())
}

/// The `(seq, sent_ns)` of a `stamp`.
pub fn parse_stamp(content: &str) -> Option<(u64, u64)> {
    let (seq, sent) = content.split_once(':')?;
    Some((seq.parse().ok()?, sent.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_known_values() {
        let mut latencies = Latencies::new();
        for micros in 1..=100 {
            latencies.record_micros(micros);
        }
        let summary = latencies.summary();
        assert_eq!(summary.count, 100);
        assert_eq!(summary.p50_us, 50);
        assert_eq!(summary.p99_us, 99);
        assert_eq!(summary.max_us, 100);
    }

    #[test]
    fn stamps_round_trip() {
        let text = stamp(42);
        let (seq, sent) = parse_stamp(&text).expect("a stamp parses");
        assert_eq!(seq, 42);
        assert!(sent <= now_ns());
    }
}
