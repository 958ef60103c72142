//! A fresh, empty database per scenario: the test kit's (`frontdesk_testkit::db`), a SQLite
//! file in a temporary folder or a new PostgreSQL database dropped afterwards, with errors as
//! values. Empty on purpose: the server under test runs its migrations at start, as it would
//! in production.

use anyhow::Result;
use frontdesk_testkit::db::{Schema, TestDb};

pub use frontdesk_testkit::db::{postgres_reachable, Backend};

pub struct FreshDb(TestDb);

impl std::ops::Deref for FreshDb {
    type Target = TestDb;

    fn deref(&self) -> &TestDb {
        &self.0
    }
}

impl FreshDb {
    /// `admin_url`: a PostgreSQL database we may connect to and run CREATE DATABASE from.
    pub async fn create(backend: Backend, admin_url: &str) -> Result<Self> {
        TestDb::create(backend, admin_url, Schema::Empty)
            .await
            .map(Self)
    }

    /// Runs statements directly, outside the server (seeding).
    pub async fn execute(&self, sql: &str) -> Result<()> {
        self.0.try_execute(sql).await
    }

    /// `SELECT COUNT(*) FROM {from}`: `from` may carry a WHERE clause.
    pub async fn count(&self, from: &str) -> Result<u64> {
        self.0.try_count(from).await
    }

    /// Drops the PostgreSQL database (the SQLite folder goes with `self`).
    pub async fn remove(self) {
        self.0.remove().await
    }
}
