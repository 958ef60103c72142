//! The rate of frames one WebSocket may send: a token bucket per connection.
//!
//! Every frame but the client's close costs a token (pings and pongs too: each one makes the
//! server write). A client that runs out is refused frame by frame, and told once; one that
//! goes on sending a whole burst's worth while refused is disconnected. Only the sender is
//! affected.

use std::time::Instant;

/// What to do with one incoming frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// Drop the frame; `tell` is true for the first refusal in a row (send `rate_limited`).
    Refuse {
        tell: bool,
    },
    /// The client kept flooding after being told: close with 1008.
    Disconnect,
}

#[derive(Debug)]
pub struct InboundLimit {
    /// Tokens added per second.
    rate: f64,
    /// The bucket's size: frames a client may send at once.
    burst: f64,
    tokens: f64,
    refilled: Instant,
    /// Frames refused since the last one accepted.
    refused_in_a_row: u64,
}

impl InboundLimit {
    /// `rate` frames per second on average, `burst` at once (at least one of each).
    pub fn new(rate: f64, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate: if rate.is_finite() {
                rate.max(0.001)
            } else {
                f64::MAX
            },
            burst,
            tokens: burst,
            refilled: now,
            refused_in_a_row: 0,
        }
    }

    pub fn check(&mut self, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.refused_in_a_row = 0;
            return Verdict::Accept;
        }
        self.refused_in_a_row += 1;
        if self.refused_in_a_row as f64 > self.burst {
            Verdict::Disconnect
        } else {
            Verdict::Refuse {
                tell: self.refused_in_a_row == 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let start = Instant::now();
        let mut limit = InboundLimit::new(10.0, 5, start);
        for _ in 0..5 {
            assert_eq!(limit.check(start), Verdict::Accept);
        }
        assert_eq!(limit.check(start), Verdict::Refuse { tell: true });
        assert_eq!(limit.check(start), Verdict::Refuse { tell: false });
        // 100 ms later one token has come back.
        let later = start + Duration::from_millis(100);
        assert_eq!(limit.check(later), Verdict::Accept);
        assert_eq!(limit.check(later), Verdict::Refuse { tell: true });
    }

    #[test]
    fn a_client_keeping_to_the_rate_is_never_refused() {
        let start = Instant::now();
        let mut limit = InboundLimit::new(20.0, 1, start);
        for n in 0..1_000 {
            let now = start + Duration::from_millis(50 * n);
            assert_eq!(limit.check(now), Verdict::Accept, "frame {n}");
        }
    }

    #[test]
    fn flooding_on_after_being_told_disconnects() {
        let start = Instant::now();
        let mut limit = InboundLimit::new(1.0, 3, start);
        let verdicts: Vec<Verdict> = (0..7).map(|_| limit.check(start)).collect();
        assert_eq!(
            verdicts,
            [
                Verdict::Accept,
                Verdict::Accept,
                Verdict::Accept,
                Verdict::Refuse { tell: true },
                Verdict::Refuse { tell: false },
                Verdict::Refuse { tell: false },
                Verdict::Disconnect,
            ]
        );
    }

    #[test]
    fn the_bucket_never_holds_more_than_a_burst() {
        let start = Instant::now();
        let mut limit = InboundLimit::new(100.0, 2, start);
        let much_later = start + Duration::from_secs(3600);
        assert_eq!(limit.check(much_later), Verdict::Accept);
        assert_eq!(limit.check(much_later), Verdict::Accept);
        assert_eq!(limit.check(much_later), Verdict::Refuse { tell: true });
    }
}
