//! Scenario 5, reconnect storm: 10,000 customers connected, each in its own conversation. All
//! drop at once; while they are away every conversation gets a message; then all reconnect
//! within one second with `since=<last cursor>` while partners keep posting live messages.
//! Measured: the time from the first reconnect until the last client has its `ready` (sent
//! after the replay, so that client has caught up). Then every client must hold every message
//! of its conversation exactly once, across both connections. Compared with baseline (c):
//! the same number of clients connecting to the echo server in the same window.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::{stream, StreamExt, TryStreamExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::db::Backend;
use crate::harness::{progress, Ctx, Deployment, Window};
use crate::load::{self, Target};
use crate::report::Row;
use crate::scenarios::wait_for;
use crate::stats::Latencies;
use crate::ws::{self, Read};

const CONNECT_CONCURRENCY: usize = 200;
const WRITER_CONNS: usize = 16;

pub async fn run(ctx: &Ctx, backend: Backend) -> Result<Row> {
    let sizes = &ctx.sizes;
    let deployment = Deployment::start(ctx, backend, &[]).await?;
    let mut row = Row::new(
        backend.name(),
        "reconnect",
        "scenario",
        &format!(
            "{} clients drop, miss a message each, reconnect within {:.0} s with `since`",
            sizes.reconnect_clients, sizes.reconnect_window_secs
        ),
    );
    let outcome = measure(ctx, &deployment, &mut row).await;
    deployment.finish(&mut row).await;
    outcome?;
    let took = |r: &Row| {
        r.extra
            .get("all_done_seconds")
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0)
    };
    row.compare(
        ctx.baseline("baseline-c-echo-storm"),
        "time until all caught up over the echo storm's time until all echoed",
        took,
    );
    row.target = "no event lost or duplicated (catch-up time reported)".to_owned();
    row.target_met = Some(row.errors == 0);
    Ok(row)
}

/// One client across both of its connections.
#[derive(Default)]
struct Client {
    cursor: i64,
    /// Message ids received, in order, duplicates kept.
    ids: Vec<i64>,
    ready_at: Option<Instant>,
    /// Connect (or reconnect) until `ready`.
    catch_up: Option<Duration>,
    problems: Vec<String>,
}

/// Shared counters the waits poll.
#[derive(Default)]
struct Counters {
    messages: AtomicU64,
    readies: AtomicU64,
}

/// Reads one connection: cursors must only grow, message ids are kept, `ready` is timed.
fn read_connection(
    mut socket: ws::Ws,
    mut client: Client,
    connected_at: Instant,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<Client> {
    tokio::spawn(async move {
        loop {
            let read = tokio::select! {
                _ = stop.changed() => break,
                read = ws::read(&mut socket) => read,
            };
            let frame = match read {
                Read::Frame(frame) => frame,
                Read::Ping => continue,
                Read::Ended(why) => {
                    if !*stop.borrow() {
                        client.problems.push(format!("connection ended: {why}"));
                    }
                    break;
                }
            };
            if let Some(cursor) = frame.cursor {
                let backwards =
                    cursor < client.cursor || (cursor == client.cursor && frame.kind != "ready");
                if backwards {
                    client
                        .problems
                        .push(format!("cursor {cursor} after {}", client.cursor));
                }
                client.cursor = client.cursor.max(cursor);
            }
            match frame.kind.as_str() {
                "message" => {
                    if let Some(id) = frame.payload["id"].as_i64() {
                        client.ids.push(id);
                        counters.messages.fetch_add(1, Ordering::Relaxed);
                    }
                }
                "ready" if client.ready_at.is_none() => {
                    let now = Instant::now();
                    client.ready_at = Some(now);
                    client.catch_up = Some(now - connected_at);
                    counters.readies.fetch_add(1, Ordering::Relaxed);
                }
                "error" => client
                    .problems
                    .push(format!("error frame {}", frame.payload)),
                _ => {}
            }
        }
        // Dropping the socket here closes it without a close frame: an abrupt drop.
        client
    })
}

async fn measure(ctx: &Ctx, deployment: &Deployment, row: &mut Row) -> Result<()> {
    let sizes = &ctx.sizes;
    let backend = row.backend.clone();
    let api = &deployment.api;
    let key: Arc<str> = Arc::from(deployment.key.as_str());
    let addr = deployment.server.addr;
    let n = sizes.reconnect_clients;

    let customers: Vec<String> = (0..n).map(|i| format!("rc-{i}")).collect();
    let conversations = api.conversations(&key, &customers).await?;
    let tokens = api.sessions(&key, &customers).await?;
    let paths: Arc<Vec<String>> = Arc::new(
        customers
            .iter()
            .zip(&tokens)
            .map(|(customer, token)| format!("/ws?clientId={customer}&token={token}"))
            .collect(),
    );
    let targets: Arc<Vec<Target>> = Arc::new(
        conversations
            .iter()
            .zip(&customers)
            .map(|(conversation, customer)| Target {
                conversation: *conversation,
                customer: customer.clone(),
            })
            .collect(),
    );
    let counters = Arc::new(Counters::default());

    // 1. Everyone connects (no `since`: they start at the present).
    let (stop_tx, stop) = watch::channel(false);
    let first: Vec<JoinHandle<Client>> = stream::iter(0..n)
        .map(|i| {
            let paths = Arc::clone(&paths);
            let counters = Arc::clone(&counters);
            let stop = stop.clone();
            async move {
                let begun = Instant::now();
                let socket =
                    ws::connect(addr, Some(ws::source_ip(i)), &paths[i], None, true).await?;
                let handle = read_connection(socket, Client::default(), begun, counters, stop);
                Ok::<_, anyhow::Error>(handle)
            }
        })
        .buffered(CONNECT_CONCURRENCY)
        .try_collect()
        .await?;
    if !wait_for(&counters.readies, n as u64, Duration::from_secs(60)).await {
        anyhow::bail!("not every client got `ready` on its first connection");
    }
    // 2. One live message each, to prove the live path before the drop.
    let live = load::one_each(addr, Arc::clone(&key), Arc::clone(&targets), WRITER_CONNS).await;
    wait_for(
        &counters.messages,
        live.stored.len() as u64,
        Duration::from_secs(30),
    )
    .await;
    // 3. Everyone drops at once.
    let _ = stop_tx.send(true);
    let mut clients = Vec::with_capacity(n);
    for handle in first {
        let mut client = handle.await?;
        client.ready_at = None;
        clients.push(client);
    }
    progress(&backend, "reconnect", "all dropped; posting what they miss");
    // 4. What they miss while away.
    let missed = load::one_each(addr, Arc::clone(&key), Arc::clone(&targets), WRITER_CONNS).await;

    // 5. The storm: reconnects spread over the window, live messages meanwhile.
    counters.readies.store(0, Ordering::Relaxed);
    let (stop_tx, stop) = watch::channel(false);
    let (stop_writer_tx, stop_writer) = watch::channel(false);
    let writer = tokio::spawn(load::paced(
        addr,
        Arc::clone(&key),
        Arc::clone(&targets),
        sizes.reconnect_live_rate,
        WRITER_CONNS,
        stop_writer,
    ));
    let window_length = Duration::from_secs_f64(sizes.reconnect_window_secs);
    let window = Window::start(&deployment.server);
    let t0 = Instant::now();
    let mut second = Vec::with_capacity(n);
    for (i, client) in clients.into_iter().enumerate() {
        let paths = Arc::clone(&paths);
        let counters = Arc::clone(&counters);
        let stop = stop.clone();
        let at = t0 + window_length.mul_f64(i as f64 / n as f64);
        second.push(tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            let begun = Instant::now();
            let path = format!("{}&since={}", paths[i], client.cursor);
            match ws::connect(addr, Some(ws::source_ip(i)), &path, None, true).await {
                Ok(socket) => read_connection(socket, client, begun, counters, stop)
                    .await
                    .ok(),
                Err(error) => {
                    let mut client = client;
                    client.problems.push(format!("reconnect failed: {error:#}"));
                    // Counted as settled so the wait does not stall on it; it is an error.
                    counters.readies.fetch_add(1, Ordering::Relaxed);
                    Some(client)
                }
            }
        }));
    }
    let all_ready = wait_for(&counters.readies, n as u64, Duration::from_secs(120)).await;
    let readied = Instant::now();
    window.finish(&deployment.server, row);
    // Live traffic a little past the storm, then stop it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop_writer_tx.send(true);
    let during = writer.await?;

    // 6. Everything stored must arrive: wait, then stop and compare.
    let expected_total = (live.stored.len() + missed.stored.len() + during.stored.len()) as u64;
    let complete = wait_for(&counters.messages, expected_total, Duration::from_secs(30)).await;
    let _ = stop_tx.send(true);
    let mut finished = Vec::with_capacity(n);
    for handle in second {
        finished.push(handle.await.ok().flatten());
    }

    let mut expected: HashMap<usize, Vec<i64>> = HashMap::new();
    for (index, id) in live
        .stored
        .iter()
        .chain(&missed.stored)
        .chain(&during.stored)
    {
        expected.entry(*index).or_default().push(*id);
    }
    let (mut lost, mut duplicated, mut foreign, mut broken) = (0_u64, 0_u64, 0_u64, 0_u64);
    let mut catch_up = Latencies::new();
    let mut last_ready = t0;
    let mut samples: Vec<String> = Vec::new();
    for (i, client) in finished.into_iter().enumerate() {
        let Some(client) = client else {
            broken += 1;
            continue;
        };
        if let (Some(ready), Some(took)) = (client.ready_at, client.catch_up) {
            last_ready = last_ready.max(ready);
            catch_up.record(took);
        }
        let want: HashSet<i64> = expected
            .get(&i)
            .map(|v| v.iter().copied().collect())
            .unwrap_or_default();
        let got: HashSet<i64> = client.ids.iter().copied().collect();
        lost += want.difference(&got).count() as u64;
        foreign += got.difference(&want).count() as u64;
        duplicated += (client.ids.len() - got.len()) as u64;
        if !client.problems.is_empty() {
            broken += 1;
            if samples.len() < 3 {
                samples.push(client.problems.join("; "));
            }
        }
    }
    let took = last_ready - t0;
    row.throughput = n as f64 / took.as_secs_f64().max(1e-9);
    row.unit = "conn/s".to_owned();
    row.latency = catch_up.summary();
    row.latency_of = "reconnect with `since` until `ready` (replay done)".to_owned();
    row.extra(
        "all_done_seconds",
        (took.as_secs_f64() * 1000.0).round() / 1000.0,
    );
    row.extra(
        "storm_to_all_ready_seconds",
        format!("{:.3}", (readied - t0).as_secs_f64()),
    );
    row.extra("clients", n);
    row.extra("missed_while_away", missed.stored.len());
    row.extra("live_during_storm", during.stored.len());
    row.extra("messages_checked", expected_total);
    if !all_ready {
        row.error(
            (n as u64).saturating_sub(counters.readies.load(Ordering::Relaxed)),
            "clients never got `ready` after reconnecting",
        );
    }
    if !complete {
        row.extra("drain", "timed out waiting for the last messages");
    }
    row.error(lost, format!("{lost} messages lost"));
    row.error(duplicated, format!("{duplicated} messages delivered twice"));
    row.error(
        foreign,
        format!("{foreign} messages of other conversations received"),
    );
    row.error(
        broken,
        format!("{broken} clients had problems: {}", samples.join(" | ")),
    );
    for written in [&live, &missed, &during] {
        row.error(written.errors, written.error_samples.join("; "));
    }
    Ok(())
}
