//! Throttle counters: hits per key in a fixed window, kept in the database so that every worker
//! and every instance sharing it sees the same count. Each hit is one atomic upsert, so
//! concurrent requests always get distinct counts (no check-then-count race).

use diesel::dsl::case_when;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Timestamp as SqlTimestamp};
use diesel_async::RunQueryDsl;
use frontdesk_domain::Timestamp;
use time::{Duration, PrimitiveDateTime};

use crate::error::StoreError;
use crate::pool::with_conn;
use crate::rows::now;
use crate::schema::throttle_counters;
use crate::Store;

/// A key's count after a hit, and when its window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleCount {
    pub hits: i64,
    pub resets_at: Timestamp,
}

impl ThrottleCount {
    /// Time left in the window (at least zero).
    pub fn remaining(&self) -> std::time::Duration {
        let left = self.resets_at.as_offset() - now().as_offset();
        std::time::Duration::try_from(left).unwrap_or_default()
    }
}

impl Store {
    /// Counts one hit on `key`: the first hit, or the first after the window ended, starts a
    /// new window of `window`; the others add one. Returns the count including this hit.
    pub async fn throttle_hit(
        &self,
        key: &str,
        window: Duration,
    ) -> Result<ThrottleCount, StoreError> {
        let at = now().as_utc();
        let ends = at + window;
        let expired = throttle_counters::resets_at.le(at);
        let (_turn, mut db) = self.pool.write().await?;
        let (hits, resets_at): (i64, PrimitiveDateTime) = with_conn!(db, |conn| {
            diesel::insert_into(throttle_counters::table)
                .values((
                    throttle_counters::key.eq(key),
                    throttle_counters::hits.eq(1_i64),
                    throttle_counters::resets_at.eq(ends),
                ))
                .on_conflict(throttle_counters::key)
                .do_update()
                .set((
                    throttle_counters::hits.eq(case_when(expired, 1_i64.into_sql::<BigInt>())
                        .otherwise(throttle_counters::hits + 1_i64)),
                    throttle_counters::resets_at.eq(case_when(
                        expired,
                        ends.into_sql::<SqlTimestamp>(),
                    )
                    .otherwise(throttle_counters::resets_at)),
                ))
                .returning((throttle_counters::hits, throttle_counters::resets_at))
                .get_result(conn)
                .await?
        });
        Ok(ThrottleCount {
            hits,
            resets_at: Timestamp::from_utc(resets_at),
        })
    }

    /// Takes back one hit on `key` (a reserved attempt that turned out not to count).
    pub async fn throttle_refund(&self, key: &str) -> Result<(), StoreError> {
        let (_turn, mut db) = self.pool.write().await?;
        with_conn!(db, |conn| {
            diesel::update(
                throttle_counters::table
                    .filter(throttle_counters::key.eq(key))
                    .filter(throttle_counters::hits.gt(0_i64)),
            )
            .set(throttle_counters::hits.eq(throttle_counters::hits - 1_i64))
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    /// Forgets `key` (a successful sign-in clears its account's count).
    pub async fn throttle_clear(&self, key: &str) -> Result<(), StoreError> {
        let (_turn, mut db) = self.pool.write().await?;
        with_conn!(db, |conn| {
            diesel::delete(throttle_counters::table.filter(throttle_counters::key.eq(key)))
                .execute(conn)
                .await?;
        });
        Ok(())
    }

    /// Deletes every counter whose window has ended; returns how many. This is what keeps the
    /// table bounded by the keys hit within one window.
    pub async fn throttle_prune(&self) -> Result<usize, StoreError> {
        let at = now().as_utc();
        let (_turn, mut db) = self.pool.write().await?;
        let deleted = with_conn!(db, |conn| {
            diesel::delete(throttle_counters::table.filter(throttle_counters::resets_at.le(at)))
                .execute(conn)
                .await?
        });
        Ok(deleted)
    }
}
