//! Whether writes are failing for lack of space, for readiness: a server whose disk is full
//! still answers `SELECT 1`, so pinging alone kept reporting healthy while every write failed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::StoreError;
use crate::Store;

/// How long a write failed for lack of space keeps the store reported full without a write
/// succeeding since. Readiness must come back by itself: an unready instance gets no traffic,
/// so no write would ever clear it. After this, the next write tells again.
const FULL_FOR: Duration = Duration::from_secs(30);

/// Shared by every clone of a store (and so by every worker of an instance).
#[derive(Debug, Clone)]
pub(crate) struct StorageHealth {
    start: Instant,
    /// Milliseconds after `start` (plus one) of the last write that failed for lack of space
    /// with none succeeding since; 0 for none.
    full_since: Arc<AtomicU64>,
}

impl Default for StorageHealth {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            full_since: Arc::default(),
        }
    }
}

impl StorageHealth {
    /// Notes the outcome of a write: full after one failed for lack of space, until one
    /// succeeds (or `FULL_FOR` passes). Other failures say nothing about space.
    pub(crate) fn note<T>(&self, outcome: &Result<T, StoreError>) {
        match outcome {
            Ok(_) => self.full_since.store(0, Ordering::Relaxed),
            Err(StoreError::StorageFull(_)) => {
                let now = self.start.elapsed().as_millis() as u64 + 1;
                self.full_since.store(now, Ordering::Relaxed);
            }
            Err(_) => {}
        }
    }

    fn is_full(&self) -> bool {
        match self.full_since.load(Ordering::Relaxed) {
            0 => false,
            since => {
                let now = self.start.elapsed().as_millis() as u64 + 1;
                now.saturating_sub(since) < FULL_FOR.as_millis() as u64
            }
        }
    }
}

impl Store {
    /// Whether the last write that could tell failed for lack of space, within the last
    /// `FULL_FOR`.
    pub fn storage_full(&self) -> bool {
        self.health.is_full()
    }

    /// `outcome` of a write, noted for `storage_full`.
    pub(crate) fn noted<T>(&self, outcome: Result<T, StoreError>) -> Result<T, StoreError> {
        self.health.note(&outcome);
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_until_a_write_succeeds_or_the_time_passes() {
        let health = StorageHealth::default();
        assert!(!health.is_full());
        health.note::<()>(&Err(StoreError::StorageFull("disk full".into())));
        assert!(health.is_full());
        health.note(&Ok(()));
        assert!(!health.is_full());
        // Set long enough ago: reported ready again, so traffic (and a write) can tell.
        if let Some(start) = Instant::now().checked_sub(FULL_FOR + Duration::from_secs(1)) {
            let stale = StorageHealth {
                start,
                full_since: Arc::new(AtomicU64::new(1)),
            };
            assert!(!stale.is_full());
        }
    }
}
