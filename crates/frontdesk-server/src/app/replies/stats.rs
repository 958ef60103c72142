//! Counts of what the responder did since start: each failure's log line carries the running
//! count (issue 18 exports them as metrics).

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub(crate) struct ReplyStats {
    pub replies: AtomicU64,
    pub handoffs: AtomicU64,
    pub failures: AtomicU64,
}

impl ReplyStats {
    pub(super) fn stored(&self, handoff: bool) {
        let counter = if handoff {
            &self.handoffs
        } else {
            &self.replies
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a failure; the count so far, for the log line.
    pub(super) fn failed(&self) -> u64 {
        self.failures.fetch_add(1, Ordering::Relaxed) + 1
    }
}
