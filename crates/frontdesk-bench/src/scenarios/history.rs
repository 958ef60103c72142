//! Scenario 6, history: `GET /api/partner/messages/:id?after=&limit=50` (a client syncing
//! after a reconnect) at random points of 100 conversations, first on a database of 10,000
//! messages, then of 1,000,000. The rows are seeded with SQL straight into the server's
//! tables (generate_series on PostgreSQL, a recursive CTE through the sqlite3 CLI on SQLite),
//! interleaved over the conversations as real traffic would be. The latency must not grow
//! with the database. Compared with baseline (a): a bare handler serialising a page of the
//! same size.

use std::sync::Arc;

use anyhow::{bail, Result};
use rand::Rng;

use crate::db::{Backend, FreshDb};
use crate::harness::{progress, Ctx, Deployment, Window};
use crate::load::{self, LoadResult};
use crate::report::{number, Row};

/// How much the p99 may grow from the small to the large database and still count as flat
/// (p99s of a few thousand requests on a shared two-core machine wobble by tens of percent).
const FLAT: f64 = 1.5;

pub async fn run(ctx: &Ctx, backend: Backend) -> Result<Row> {
    let sizes = &ctx.sizes;
    let deployment = Deployment::start(ctx, backend, &[]).await?;
    let mut row = Row::new(
        backend.name(),
        "history",
        "scenario",
        &format!(
            "GET messages?after=&limit={} on {} then {} messages",
            sizes.history_page,
            number(sizes.history_small as f64),
            number(sizes.history_large as f64)
        ),
    );
    let outcome = measure(ctx, &deployment, &mut row).await;
    deployment.finish(&mut row).await;
    outcome?;
    row.compare(
        ctx.baseline("baseline-a-http-history"),
        "p99 over the bare handler's p99 for a page of the same size",
        |r| r.latency.p99_us as f64,
    );
    let growth = row
        .extra
        .get("p99_growth")
        .and_then(|v| v.as_f64())
        .unwrap_or(f64::MAX);
    row.target = format!("p99 flat: large/small <= {FLAT}");
    row.target_met = Some(growth <= FLAT && row.errors == 0);
    Ok(row)
}

async fn measure(ctx: &Ctx, deployment: &Deployment, row: &mut Row) -> Result<()> {
    let sizes = &ctx.sizes;
    let backend = row.backend.clone();
    let convs = sizes.history_conversations;
    // Created one by one so their ids are consecutive, which the seeding SQL relies on.
    let mut ids = Vec::with_capacity(convs);
    for k in 0..convs {
        ids.push(
            deployment
                .api
                .conversation(&deployment.key, &format!("hist-{k}"))
                .await?,
        );
    }
    let first = ids[0];
    if ids
        .iter()
        .enumerate()
        .any(|(k, id)| *id != first + k as i64)
    {
        bail!("conversation ids are not consecutive: {ids:?}");
    }

    seed(&deployment.db, 1, sizes.history_small, first, convs).await?;
    progress(
        &backend,
        "history",
        format!("{} rows seeded; querying", sizes.history_small),
    );
    let small = query(ctx, deployment, first, sizes.history_small).await;
    seed(
        &deployment.db,
        sizes.history_small + 1,
        sizes.history_large,
        first,
        convs,
    )
    .await?;
    let rows = deployment.db.count("messages").await?;
    if rows != sizes.history_large {
        bail!("seeded {rows} rows, wanted {}", sizes.history_large);
    }
    progress(&backend, "history", format!("{rows} rows seeded; querying"));
    let window = Window::start(&deployment.server);
    let large = query(ctx, deployment, first, sizes.history_large).await;
    window.finish(&deployment.server, row);

    let (s, l) = (small.latencies.summary(), large.latencies.summary());
    row.latency = l;
    row.latency_of = format!(
        "one GET of up to {} messages, on {} rows",
        sizes.history_page,
        number(rows as f64)
    );
    row.throughput = large.rate();
    row.unit = "req/s".to_owned();
    row.extra("small_rows", sizes.history_small);
    row.extra("small_p50_us", s.p50_us);
    row.extra("small_p99_us", s.p99_us);
    row.extra("small_req_per_s", format!("{:.0}", small.rate()));
    row.extra("large_rows", rows);
    let growth = |a: u64, b: u64| {
        if a == 0 {
            f64::MAX
        } else {
            (b as f64 / a as f64 * 100.0).round() / 100.0
        }
    };
    row.extra("p50_growth", growth(s.p50_us, l.p50_us));
    row.extra("p99_growth", growth(s.p99_us, l.p99_us));
    row.error(small.errors, small.error_samples.join("; "));
    row.error(large.errors, large.error_samples.join("; "));
    Ok(())
}

/// Random `after` points in random conversations, as many clients as configured.
async fn query(ctx: &Ctx, deployment: &Deployment, first: i64, rows: u64) -> LoadResult {
    let sizes = &ctx.sizes;
    let convs = sizes.history_conversations as i64;
    let page = sizes.history_page;
    // `after` below the last full page of every conversation, so each answer holds `page`
    // messages whatever the database size (otherwise the small database, with 100 messages
    // per conversation, would often answer half-empty pages and look faster).
    let last_after = (rows as i64 - convs * page as i64).max(1);
    load::gets(
        deployment.server.addr,
        Some(Arc::from(deployment.key.as_str())),
        Arc::new(move |rng| {
            let conversation = first + rng.random_range(0..convs);
            let after = rng.random_range(0..last_after);
            format!("/api/partner/messages/{conversation}?after={after}&limit={page}")
        }),
        sizes.history_clients,
        sizes.history_secs,
    )
    .await
}

/// Inserts messages `from..=to` (ids equal their number in a fresh database): message `i`
/// goes to conversation `first + i % convs`, from that conversation's customer.
async fn seed(db: &FreshDb, from: u64, to: u64, first: i64, convs: usize) -> Result<()> {
    let sql = match db.backend {
        Backend::Postgres => format!(
            "INSERT INTO messages (conversation_id, sender_id, content, is_from_agent, created_at, read_status) \
             SELECT {first} + (g % {convs}), 'hist-' || (g % {convs}), \
                    'seeded message ' || g || ': where is my parcel?', false, \
                    (now() AT TIME ZONE 'utc')::timestamp(3), false \
             FROM generate_series({from}, {to}) AS g; \
             ANALYZE messages;"
        ),
        Backend::Sqlite => format!(
            "BEGIN; \
             INSERT INTO messages (conversation_id, sender_id, content, is_from_agent, created_at, read_status) \
             WITH RECURSIVE s(i) AS (SELECT {from} UNION ALL SELECT i + 1 FROM s WHERE i < {to}) \
             SELECT {first} + (i % {convs}), 'hist-' || (i % {convs}), \
                    'seeded message ' || i || ': where is my parcel?', 0, \
                    strftime('%Y-%m-%d %H:%M:%f', 'now'), 0 \
             FROM s; \
             COMMIT; \
             ANALYZE; \
             PRAGMA wal_checkpoint(TRUNCATE);"
        ),
    };
    db.execute(&sql).await
}
