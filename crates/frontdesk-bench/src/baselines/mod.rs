//! The baselines measured in the same run as the scenarios, so ratios survive a noisy
//! machine: (a) a bare actix-web JSON handler, (b) the raw store append loop, (c) a bare
//! actix-ws echo. (a) and (c) use no database, so they run once per run; (b) once per backend.

pub mod echo;
pub mod http;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use crate::config::Sizes;
use crate::harness::{progress, Window};
use crate::load::{self, Target};
use crate::report::Row;
use crate::scenarios::connections;
use crate::server::{baseline_command, ServerProcess};

/// Runs the backend-independent baselines the selected scenarios compare with.
pub async fn shared(sizes: &Sizes, selected: &[String]) -> Vec<Row> {
    let wants = |name: &str| selected.iter().any(|s| s == name);
    let mut rows = Vec::new();
    let mut run = |row: Result<Row>, name: &str| {
        let row = row.unwrap_or_else(|error| {
            let mut row = Row::new("none", name, "baseline", "did not run");
            row.error(1, format!("{error:#}"));
            row
        });
        progress("none", name, summary_line(&row));
        rows.push(row);
    };
    if wants("ingest") {
        run(http_ingest(sizes).await, "baseline-a-http-ingest");
    }
    if wants("history") {
        run(http_history(sizes).await, "baseline-a-http-history");
    }
    if wants("e2e") {
        let secs = sizes.e2e_samples as f64 / sizes.e2e_sample_rate;
        let rate = sizes.e2e_background_rate + sizes.e2e_sample_rate;
        run(
            echo_latency("baseline-c-echo-e2e", 9, rate, secs).await,
            "baseline-c-echo-e2e",
        );
    }
    if wants("fanout") {
        run(
            echo_latency(
                "baseline-c-echo-fanout",
                sizes.fanout_conversations,
                sizes.fanout_rate,
                sizes.fanout_secs,
            )
            .await,
            "baseline-c-echo-fanout",
        );
    }
    if wants("connections") {
        run(echo_idle(sizes).await, "baseline-c-echo-idle");
    }
    if wants("reconnect") {
        run(echo_storm(sizes).await, "baseline-c-echo-storm");
    }
    rows
}

pub fn summary_line(row: &Row) -> String {
    format!(
        "{} {} | p50 {} p99 {} | errors {}",
        crate::report::number(row.throughput),
        row.unit,
        crate::report::duration(row.latency.p50_us),
        crate::report::duration(row.latency.p99_us),
        row.errors
    )
}

/// The ingest load against the bare handler: the HTTP + JSON ceiling of this machine.
async fn http_ingest(sizes: &Sizes) -> Result<Row> {
    let server = ServerProcess::start("baseline-http", baseline_command("baseline-http")?).await?;
    let targets: Arc<Vec<Target>> = Arc::new(
        (0..sizes.ingest_conversations)
            .map(|i| Target {
                conversation: i as i64 + 1,
                customer: format!("cust-{i}"),
            })
            .collect(),
    );
    let warmup = load::ingest(
        server.addr,
        None,
        Arc::clone(&targets),
        sizes.ingest_clients,
        sizes.ingest_warmup_secs,
    )
    .await;
    let window = Window::start(&server);
    let result = load::ingest(
        server.addr,
        None,
        targets,
        sizes.ingest_clients,
        sizes.ingest_secs,
    )
    .await;
    let mut row = Row::new(
        "none",
        "baseline-a-http-ingest",
        "baseline",
        "bare actix-web POST handler, same JSON, no auth, no storage",
    );
    window.finish(&server, &mut row);
    row.measured_seconds = result.measured_secs;
    row.throughput = result.rate();
    row.unit = "msg/s".to_owned();
    row.latency = result.latencies.summary();
    row.latency_of = "one POST, request to response".to_owned();
    row.error(result.errors, result.error_samples.join("; "));
    row.error(
        warmup.errors,
        format!("warm-up: {}", warmup.error_samples.join("; ")),
    );
    server.stop().await;
    Ok(row)
}

/// The history load against a bare handler answering a canned page of the same size.
async fn http_history(sizes: &Sizes) -> Result<Row> {
    let server = ServerProcess::start("baseline-http", baseline_command("baseline-http")?).await?;
    let window = Window::start(&server);
    let conversations = sizes.history_conversations as i64;
    let result = load::gets(
        server.addr,
        None,
        Arc::new(move |rng| {
            use rand::Rng;
            format!(
                "/api/partner/messages/{}?after=0&limit={}",
                rng.random_range(1..=conversations),
                http::PAGE
            )
        }),
        sizes.history_clients,
        sizes.history_secs,
    )
    .await;
    let mut row = Row::new(
        "none",
        "baseline-a-http-history",
        "baseline",
        "bare actix-web GET handler serialising a canned page of the same size",
    );
    window.finish(&server, &mut row);
    row.throughput = result.rate();
    row.unit = "req/s".to_owned();
    row.latency = result.latencies.summary();
    row.latency_of = format!("one GET of {} messages", http::PAGE);
    row.error(result.errors, result.error_samples.join("; "));
    server.stop().await;
    Ok(row)
}

async fn echo_latency(name: &str, conns: usize, rate: f64, secs: f64) -> Result<Row> {
    let server = ServerProcess::start("baseline-echo", baseline_command("baseline-echo")?).await?;
    let window = Window::start(&server);
    let echoes = echo::echo_latency(server.addr, conns, rate, secs).await;
    let mut row = Row::new(
        "none",
        name,
        "baseline",
        &format!("bare actix-ws echo, {conns} connections, {rate:.0} frames/s"),
    );
    let elapsed = window.finish(&server, &mut row);
    row.throughput = echoes.received as f64 / elapsed.max(1e-9);
    row.unit = "msg/s".to_owned();
    row.latency = echoes.latencies.summary();
    row.latency_of = "client -> echo server -> client round trip".to_owned();
    row.extra("sent", echoes.sent);
    row.error(echoes.errors, echoes.error_samples.join("; "));
    server.stop().await;
    Ok(row)
}

async fn echo_idle(sizes: &Sizes) -> Result<Row> {
    let server = ServerProcess::start("baseline-echo", baseline_command("baseline-echo")?).await?;
    let mut row = Row::new(
        "none",
        "baseline-c-echo-idle",
        "baseline",
        "idle connections held by the bare actix-ws echo server",
    );
    connections::hold(
        &server,
        sizes.idle_connections,
        connections::Peer::Echo,
        Duration::from_secs(2),
        None,
        &mut row,
    )
    .await?;
    server.stop().await;
    Ok(row)
}

async fn echo_storm(sizes: &Sizes) -> Result<Row> {
    let server = ServerProcess::start("baseline-echo", baseline_command("baseline-echo")?).await?;
    let window = Window::start(&server);
    let clients = sizes.reconnect_clients;
    let (took, latencies, failures) = echo::storm(
        server.addr,
        clients,
        Duration::from_secs_f64(sizes.reconnect_window_secs),
    )
    .await;
    let mut row = Row::new(
        "none",
        "baseline-c-echo-storm",
        "baseline",
        &format!(
            "{clients} clients connect to the echo server within {:.0} s, one echo each",
            sizes.reconnect_window_secs
        ),
    );
    window.finish(&server, &mut row);
    row.throughput = clients as f64 / took.as_secs_f64().max(1e-9);
    row.unit = "conn/s".to_owned();
    row.latency = latencies.summary();
    row.latency_of = "connect until the first echo".to_owned();
    row.extra("all_done_seconds", took.as_secs_f64());
    row.error(failures, format!("{failures} clients failed"));
    server.stop().await;
    Ok(row)
}
