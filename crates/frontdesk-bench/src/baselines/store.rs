//! Baseline (b): `Store::append_message` called directly from as many concurrent tasks as
//! the ingest scenario has clients, on a fresh database of the same backend. It goes through
//! the same `Store::open` (pool size, SQLite pragmas, group commit), so durability is the
//! server's; only HTTP, JSON and authentication are missing. It runs in a child process so it
//! has the machine to itself, like the server does.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use frontdesk_domain::{
    ConversationId, CustomerId, MessageDraft, PartnerRegistration, Secret, Sender, Viewer,
};
use frontdesk_store::{Store, StoreConfig};
use futures_util::{stream, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::config::{Sizes, StoreArgs};
use crate::db::{Backend, FreshDb};
use crate::harness::Ctx;
use crate::report::Row;
use crate::server::own_stats;
use crate::stats::{Latencies, Summary};

/// What the child prints (one JSON line on stdout).
#[derive(Debug, Serialize, Deserialize)]
pub struct StoreReport {
    pub total_ok: u64,
    pub measured_ok: u64,
    pub secs: f64,
    pub errors: u64,
    pub error_samples: Vec<String>,
    pub latency: Summary,
    pub cpu_seconds: f64,
    pub peak_rss_kib: u64,
}

/// The child: `frontdesk-bench baseline-store --database-url …`.
pub fn child(args: &StoreArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("baseline-store: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(measure(args)) {
        Ok(report) => match serde_json::to_string(&report) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("baseline-store: {error}");
                ExitCode::FAILURE
            }
        },
        Err(error) => {
            eprintln!("baseline-store: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn measure(args: &StoreArgs) -> Result<StoreReport> {
    let store = Store::open(&StoreConfig::new(&args.database_url)).await?;
    let registration = PartnerRegistration {
        name: "Bench Shop".to_owned(),
        domain: "bench.example.com".to_owned(),
    }
    .validate()?;
    let key = Secret::generate("fdk_", &mut rand::rng());
    let partner = store.create_partner(&registration, &key.hash()).await?;
    let customers: Vec<CustomerId> = (0..args.conversations)
        .map(|i| CustomerId::parse(&format!("cust-{i}")))
        .collect::<Result<_, _>>()?;
    let conversations: Vec<i64> = stream::iter(&customers)
        .map(|customer| {
            let store = store.clone();
            async move {
                store
                    .create_conversation(partner.id, customer)
                    .await
                    .map(|c| c.id.0)
            }
        })
        // Few at a time, like the scenarios' setup: on SQLite, many concurrent writers
        // outside the group commit collapse into busy-timeout back-off.
        .buffered(4)
        .try_collect()
        .await?;
    let targets: Arc<Vec<(i64, CustomerId)>> =
        Arc::new(conversations.into_iter().zip(customers).collect());
    let viewer = Viewer::Partner(partner.id);

    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup_secs);
    let end = measure_from + Duration::from_secs_f64(args.secs);
    // CPU at the start of the measured phase, read by a task that wakes up then.
    let cpu_at_start = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        own_stats().cpu_seconds
    });
    let clients = args.concurrency;
    let mut tasks = Vec::with_capacity(clients);
    for client in 0..clients {
        let store = store.clone();
        let targets = Arc::clone(&targets);
        let viewer = viewer.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Latencies::new();
            let (mut total, mut measured, mut errors) = (0_u64, 0_u64, 0_u64);
            let mut samples = Vec::new();
            let mut seq = 0_usize;
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let (conversation, customer) = &targets[(client + seq * clients) % targets.len()];
                seq += 1;
                let outcome = MessageDraft::new(
                    ConversationId(*conversation),
                    Sender::Customer(customer.clone()),
                    format!("ingest {client}-{seq}: my parcel has not arrived yet"),
                    None,
                    None,
                )
                .map_err(|e| anyhow!(e.to_string()));
                let outcome = match outcome {
                    Ok(draft) => store
                        .append_message(&viewer, &draft)
                        .await
                        .map_err(|e| anyhow!(e.to_string())),
                    Err(error) => Err(error),
                };
                match outcome {
                    Ok(_) => {
                        total += 1;
                        if sent >= measure_from {
                            measured += 1;
                            latencies.record(sent.elapsed());
                        }
                    }
                    Err(error) => {
                        errors += 1;
                        if samples.len() < 3 {
                            samples.push(format!("{error:#}"));
                        }
                    }
                }
            }
            (latencies, total, measured, errors, samples)
        }));
    }
    let mut latencies = Latencies::new();
    let mut report = StoreReport {
        total_ok: 0,
        measured_ok: 0,
        secs: args.secs,
        errors: 0,
        error_samples: Vec::new(),
        latency: Summary::default(),
        cpu_seconds: 0.0,
        peak_rss_kib: 0,
    };
    for task in tasks {
        let (part, total, measured, errors, samples) = task.await?;
        latencies.merge(&part);
        report.total_ok += total;
        report.measured_ok += measured;
        report.errors += errors;
        report.error_samples.extend(samples);
    }
    let stats = own_stats();
    report.cpu_seconds = stats.cpu_seconds - cpu_at_start.await?;
    report.peak_rss_kib = stats.hwm_kib;
    report.latency = latencies.summary();
    Ok(report)
}

/// The parent side: a fresh database, the child, and the check that every acknowledged
/// append is in the database.
pub async fn run(ctx: &Ctx, backend: Backend) -> Result<Row> {
    let sizes: &Sizes = &ctx.sizes;
    let db = FreshDb::create(backend, &ctx.postgres_admin_url).await?;
    let exe = std::env::current_exe().context("locating frontdesk-bench itself")?;
    let mut command = std::process::Command::new(exe);
    command
        .args(["baseline-store", "--database-url", &db.url])
        .args(["--conversations", &sizes.ingest_conversations.to_string()])
        .args(["--concurrency", &sizes.ingest_clients.to_string()])
        .args(["--warmup-secs", &sizes.ingest_warmup_secs.to_string()])
        .args(["--secs", &sizes.ingest_secs.to_string()])
        .current_dir(db.dir.path())
        .env("RUST_LOG", "warn");
    let output = tokio::task::spawn_blocking(move || command.output())
        .await?
        .context("running baseline-store")?;
    if !output.status.success() {
        bail!(
            "baseline-store failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .last()
        .ok_or_else(|| anyhow!("baseline-store printed nothing"))?;
    let report: StoreReport =
        serde_json::from_str(line).with_context(|| format!("baseline-store printed {line:?}"))?;

    let mut row = Row::new(
        backend.name(),
        "baseline-b-store",
        "baseline",
        "Store::append_message from concurrent tasks, no HTTP",
    );
    row.throughput = report.measured_ok as f64 / report.secs.max(1e-9);
    row.unit = "msg/s".to_owned();
    row.latency = report.latency;
    row.latency_of = "one append_message call, until committed".to_owned();
    row.server_cpu_seconds = report.cpu_seconds;
    row.server_peak_rss_mib = report.peak_rss_kib as f64 / 1024.0;
    row.measured_seconds = report.secs;
    row.extra("concurrency", sizes.ingest_clients);
    row.extra("conversations", sizes.ingest_conversations);
    row.error(report.errors, report.error_samples.join("; "));
    let stored = db.count("messages").await?;
    if stored != report.total_ok {
        row.error(
            stored.abs_diff(report.total_ok),
            format!(
                "{} appends acknowledged, {stored} rows stored",
                report.total_ok
            ),
        );
    }
    row.extra("rows_stored", stored);
    db.remove().await;
    Ok(row)
}
