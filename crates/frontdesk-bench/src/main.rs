//! `frontdesk-bench`: the load generator. It starts the real `frontdesk` release binary on a
//! fresh database per scenario (SQLite, and PostgreSQL when reachable), drives it with its own
//! HTTP and WebSocket clients, measures baselines in the same run so ratios survive a noisy
//! machine, and writes results.json, results.md and chart.svg. A run with errors exits
//! non-zero, after writing its results.

mod api;
mod baselines;
mod config;
mod db;
mod harness;
mod http;
mod limits;
mod load;
mod report;
mod scenarios;
mod server;
mod stats;
mod ws;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;

use crate::config::{BackendChoice, Cli, Internal, RunArgs, Sizes, SCENARIOS};
use crate::db::Backend;
use crate::harness::{progress, Ctx};
use crate::report::{Meta, Row};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Internal::Http(args)) => baselines::http::serve(&args),
        Some(Internal::Echo(args)) => baselines::echo::serve(&args),
        Some(Internal::Store(args)) => baselines::store::child(&args),
        None => run(cli.run),
    }
}

fn run(args: RunArgs) -> ExitCode {
    // Starts the clock progress lines show.
    let _ = stats::now_ns();
    let files = limits::raise_nofile();
    eprintln!("open-file limit: {files}");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("frontdesk-bench: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(orchestrate(&args, files)) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(errors) => {
            eprintln!(
                "\nfrontdesk-bench: {errors} ERRORS in this run (see the errors column and \
                 {}/results.md); the figures of the rows with errors are not valid",
                args.out.display()
            );
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("frontdesk-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs everything selected; returns the number of errors.
async fn orchestrate(args: &RunArgs, open_files: u64) -> Result<u64> {
    let started = Instant::now();
    let started_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut sizes = if args.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    let mut skipped = Vec::new();
    if let Some(note) = sizes.fit_open_files(open_files) {
        eprintln!("notice: {note}");
        skipped.push(note);
    }
    let selected = selected(&args.only)?;
    let frontdesk = frontdesk_binary(args)?;
    let postgres_admin_url = postgres_url(args);
    let mut backends = Vec::new();
    if args.backend != BackendChoice::Postgres {
        backends.push(Backend::Sqlite);
    }
    if args.backend != BackendChoice::Sqlite {
        match db::postgres_reachable(&postgres_admin_url).await {
            Ok(()) => backends.push(Backend::Postgres),
            Err(error) => {
                let notice = format!("PostgreSQL skipped: {error:#}");
                eprintln!("notice: {notice}");
                skipped.push(notice);
            }
        }
    }
    eprintln!(
        "frontdesk-bench: mode {}, scenarios {}, backends {}, server {}",
        sizes.mode,
        selected.join(","),
        backends
            .iter()
            .map(|b| b.name())
            .collect::<Vec<_>>()
            .join(","),
        frontdesk.display()
    );

    let baselines = baselines::shared(&sizes, &selected).await;
    let mut ctx = Ctx {
        sizes,
        frontdesk,
        postgres_admin_url,
        baselines,
    };
    let mut rows: Vec<Row> = ctx.baselines.clone();
    for backend in backends {
        let store_baseline = if selected.iter().any(|s| s == "ingest") {
            let row = baselines::store::run(&ctx, backend)
                .await
                .unwrap_or_else(|error| failed(backend, "baseline-b-store", "baseline", &error));
            progress(backend.name(), &row.name, baselines::summary_line(&row));
            rows.push(row.clone());
            Some(row)
        } else {
            None
        };
        for scenario in &selected {
            let began = Instant::now();
            let one = |row: Result<Row>| row.map(|row| vec![row]);
            let outcome = match scenario.as_str() {
                "ingest" => {
                    one(scenarios::ingest::run(&ctx, backend, store_baseline.as_ref()).await)
                }
                "e2e" => one(scenarios::e2e::run(&ctx, backend).await),
                "connections" => one(scenarios::connections::run(&ctx, backend).await),
                "fanout" => one(scenarios::fanout::run(&ctx, backend).await),
                "reconnect" => one(scenarios::reconnect::run(&ctx, backend).await),
                "history" => one(scenarios::history::run(&ctx, backend).await),
                "replies" => scenarios::replies::run(&ctx, backend).await,
                other => bail!("unknown scenario {other}"),
            };
            let produced =
                outcome.unwrap_or_else(|error| vec![failed(backend, scenario, "scenario", &error)]);
            for mut row in produced {
                row.extra(
                    "scenario_wall_seconds",
                    format!("{:.1}", began.elapsed().as_secs_f64()),
                );
                progress(backend.name(), &row.name, baselines::summary_line(&row));
                rows.push(row);
            }
        }
    }
    ctx.baselines.clear();

    let (commit, dirty) = git_commit();
    let meta = Meta {
        mode: ctx.sizes.mode.to_owned(),
        started_at,
        commit,
        dirty,
        machine: machine(),
        total_seconds: started.elapsed().as_secs_f64(),
        skipped,
    };
    report::write_all(&args.out, &meta, &rows)?;
    println!("{}", report::text_table(&rows));
    for row in rows.iter().filter(|r| r.errors > 0) {
        println!(
            "ERRORS in {} / {}: {}",
            row.backend,
            row.name,
            row.error_notes.join(" | ")
        );
    }
    println!(
        "wrote {0}/results.json, {0}/results.md, {0}/chart.svg in {1:.0} s",
        args.out.display(),
        meta.total_seconds
    );
    Ok(rows.iter().map(|r| r.errors).sum())
}

/// A scenario that could not run at all is one error, with its reason.
fn failed(backend: Backend, name: &str, kind: &str, error: &anyhow::Error) -> Row {
    let mut row = Row::new(backend.name(), name, kind, "did not complete");
    row.error(1, format!("{error:#}"));
    row
}

fn selected(only: &[String]) -> Result<Vec<String>> {
    if only.is_empty() {
        return Ok(SCENARIOS.iter().map(|s| (*s).to_owned()).collect());
    }
    for name in only {
        if !SCENARIOS.contains(&name.as_str()) {
            bail!("unknown scenario `{name}`; known: {}", SCENARIOS.join(","));
        }
    }
    // In the canonical order, whatever order they were given in.
    Ok(SCENARIOS
        .iter()
        .filter(|s| only.iter().any(|o| o == *s))
        .map(|s| (*s).to_owned())
        .collect())
}

fn frontdesk_binary(args: &RunArgs) -> Result<PathBuf> {
    let path = match &args.frontdesk {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .context("locating frontdesk-bench")?
            .with_file_name("frontdesk"),
    };
    if !path.is_file() {
        bail!(
            "no frontdesk binary at {} (cargo build --release -p frontdesk-server, or --frontdesk)",
            path.display()
        );
    }
    Ok(path)
}

fn postgres_url(args: &RunArgs) -> String {
    if let Some(url) = &args.postgres_url {
        return url.clone();
    }
    if let Ok(url) = std::env::var("BENCH_POSTGRES_URL") {
        return url;
    }
    match std::env::var("DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => url,
        _ => "postgres://postgres@127.0.0.1:5432/postgres".to_owned(),
    }
}

/// The commit measured, and whether the tree had uncommitted changes.
fn git_commit() -> (String, bool) {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".to_owned());
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    (commit, dirty)
}

/// `2 CPUs (model), 24 GiB, Linux x.y`.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cpus} CPUs ({model}), {memory_gib:.0} GiB, Linux {}",
        kernel.trim()
    )
}
