//! Whether writes are failing for lack of space, for readiness: a server whose disk is full
//! still answers `SELECT 1`, so pinging alone kept reporting healthy while every write failed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::StoreError;
use crate::Store;

/// Shared by every clone of a store (and so by every worker of an instance).
#[derive(Debug, Clone, Default)]
pub(crate) struct StorageHealth(Arc<AtomicBool>);

impl StorageHealth {
    /// Notes the outcome of a write: full after one failed for lack of space, until one
    /// succeeds. Other failures say nothing about space.
    pub(crate) fn note<T>(&self, outcome: &Result<T, StoreError>) {
        match outcome {
            Ok(_) => self.0.store(false, Ordering::Relaxed),
            Err(StoreError::StorageFull(_)) => self.0.store(true, Ordering::Relaxed),
            Err(_) => {}
        }
    }

    fn is_full(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl Store {
    /// Whether the last write that could tell failed for lack of space.
    pub fn storage_full(&self) -> bool {
        self.health.is_full()
    }

    /// `outcome` of a write, noted for `storage_full`.
    pub(crate) fn noted<T>(&self, outcome: Result<T, StoreError>) -> Result<T, StoreError> {
        self.health.note(&outcome);
        outcome
    }
}
