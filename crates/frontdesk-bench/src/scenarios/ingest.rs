//! Scenario 1, ingest: partners' servers POST customer messages from 64 keep-alive clients
//! over 2,000 conversations, back to back. Every acknowledged message must be in the database
//! afterwards. Compared with baseline (b), the store's own append loop on the same backend.

use std::sync::Arc;

use anyhow::Result;

use crate::db::Backend;
use crate::harness::{progress, Ctx, Deployment, Window};
use crate::load::{self, Target};
use crate::report::Row;

pub async fn run(ctx: &Ctx, backend: Backend, store_baseline: Option<&Row>) -> Result<Row> {
    let sizes = &ctx.sizes;
    let deployment = Deployment::start(ctx, backend, &[]).await?;
    let mut row = Row::new(
        backend.name(),
        "ingest",
        "scenario",
        &format!(
            "POST /api/partner/messages, {} clients, {} conversations",
            sizes.ingest_clients, sizes.ingest_conversations
        ),
    );
    let outcome = measure(ctx, &deployment, &mut row).await;
    deployment.finish(&mut row).await;
    outcome?;

    row.compare(
        store_baseline,
        "messages/s over baseline (b)'s appends/s",
        |r| r.throughput,
    );
    if let Some(http) = ctx.baseline("baseline-a-http-ingest") {
        if http.throughput > 0.0 {
            row.extra(
                "ratio_to_baseline_a_http",
                format!("{:.2}", row.throughput / http.throughput),
            );
        }
    }
    row.target = ">= 10,000 msg/s and >= 0.5× baseline (b)".to_owned();
    row.target_met = Some(row.throughput >= 10_000.0 && row.ratio.is_some_and(|r| r >= 0.5));
    Ok(row)
}

async fn measure(ctx: &Ctx, deployment: &Deployment, row: &mut Row) -> Result<()> {
    let sizes = &ctx.sizes;
    let backend = &row.backend.clone();
    let customers: Vec<String> = (0..sizes.ingest_conversations)
        .map(|i| format!("cust-{i}"))
        .collect();
    let setup = std::time::Instant::now();
    let conversations = deployment
        .api
        .conversations(&deployment.key, &customers)
        .await?;
    row.extra(
        "setup_conversations_per_s",
        format!(
            "{:.0}",
            customers.len() as f64 / setup.elapsed().as_secs_f64().max(1e-9)
        ),
    );
    let targets: Arc<Vec<Target>> = Arc::new(
        conversations
            .into_iter()
            .zip(customers)
            .map(|(conversation, customer)| Target {
                conversation,
                customer,
            })
            .collect(),
    );
    let key: Arc<str> = Arc::from(deployment.key.as_str());
    let addr = deployment.server.addr;
    progress(backend, "ingest", "conversations ready; warming up");
    let warmup = load::ingest(
        addr,
        Some(Arc::clone(&key)),
        Arc::clone(&targets),
        sizes.ingest_clients,
        sizes.ingest_warmup_secs,
    )
    .await;
    let window = Window::start(&deployment.server);
    let result = load::ingest(
        addr,
        Some(key),
        targets,
        sizes.ingest_clients,
        sizes.ingest_secs,
    )
    .await;
    window.finish(&deployment.server, row);
    row.measured_seconds = result.measured_secs;
    row.throughput = result.rate();
    row.unit = "msg/s".to_owned();
    row.latency = result.latencies.summary();
    row.latency_of = "one POST, request until the 201 (after commit)".to_owned();
    row.error(result.errors, result.error_samples.join("; "));
    row.error(
        warmup.errors,
        format!("warm-up: {}", warmup.error_samples.join("; ")),
    );

    // "All persisted": every 201 is a customer's row, and nothing else is (automated
    // replies, should they come, are the agent side's rows).
    let acknowledged = warmup.total_ok + result.total_ok;
    let stored = deployment
        .db
        .count("messages WHERE NOT is_from_agent")
        .await?;
    row.extra("acknowledged", acknowledged);
    row.extra("rows_stored", stored);
    if stored != acknowledged {
        row.error(
            stored.abs_diff(acknowledged),
            format!("{acknowledged} messages acknowledged but {stored} rows stored"),
        );
    }
    Ok(())
}
