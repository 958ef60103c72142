//! Scenario 3, connections: 50,000 idle, authenticated WebSockets held at once, from source
//! addresses 127.0.0.2..250 (one address has only ~28,000 ephemeral ports). The server's
//! heartbeat is shortened so the hold outlasts its silence timeout: every connection must
//! still be open at the end and have seen pings (answered by tungstenite's automatic pongs).
//! Memory per connection is the server's RSS growth divided by the connections. Compared with
//! baseline (c), the bare echo server holding as many idle connections.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use futures_util::StreamExt;
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use crate::db::Backend;
use crate::harness::{progress, Ctx, Deployment, Window};
use crate::report::Row;
use crate::server::ServerProcess;
use crate::stats::Latencies;
use crate::ws::{self, Read};

/// Handshakes in flight at once: enough to keep the server busy, few enough not to overflow
/// its accept backlog.
const CONNECT_CONCURRENCY: usize = 200;
/// How long to wait for all connections to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(180);

/// Who is on the other end.
#[derive(Clone)]
pub enum Peer {
    /// Frontdesk, authenticated with the partner's API key (a partner's server holding a socket
    /// per customer); the connection is up once `ready` arrives.
    Frontdesk { key: Arc<str> },
    /// The echo baseline; the connection is up once one frame has come back.
    Echo,
}

pub async fn run(ctx: &Ctx, backend: Backend) -> Result<Row> {
    let sizes = &ctx.sizes;
    let env = [
        ("FRONTDESK_WS_PING_SECS", sizes.idle_ping_secs.to_string()),
        (
            "FRONTDESK_WS_TIMEOUT_SECS",
            sizes.idle_timeout_secs.to_string(),
        ),
    ];
    let deployment = Deployment::start(ctx, backend, &env).await?;
    let mut row = Row::new(
        backend.name(),
        "connections",
        "scenario",
        &format!(
            "{} idle authenticated WebSockets held {:.0} s (ping every {:.0} s, timeout {:.0} s)",
            sizes.idle_connections,
            sizes.idle_hold_secs,
            sizes.idle_ping_secs,
            sizes.idle_timeout_secs
        ),
    );
    // Every connection must have seen at least the pings of the hold but one.
    let min_pings =
        ((sizes.idle_hold_secs / sizes.idle_ping_secs).floor() as u64).saturating_sub(1);
    let outcome = hold(
        &deployment.server,
        sizes.idle_connections,
        Peer::Frontdesk {
            key: Arc::from(deployment.key.as_str()),
        },
        Duration::from_secs_f64(sizes.idle_hold_secs),
        Some(min_pings.max(1)),
        &mut row,
    )
    .await;
    deployment.finish(&mut row).await;
    outcome?;
    let per_conn = |r: &Row| {
        r.extra
            .get("per_connection_kib")
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0)
    };
    row.compare(
        ctx.baseline("baseline-c-echo-idle"),
        "server memory per connection over the echo server's",
        per_conn,
    );
    let held = row.extra.get("held").and_then(|v| v.as_u64()).unwrap_or(0);
    if sizes.idle_connections < sizes.idle_requested {
        row.extra("requested", sizes.idle_requested);
        row.extra("capped_by", "open-file limit of this machine");
    }
    row.target = format!(
        "{} held, < 20 KiB each, heartbeats kept",
        crate::report::number(sizes.idle_requested as f64)
    );
    row.target_met =
        Some(held == sizes.idle_requested as u64 && per_conn(&row) < 20.0 && row.errors == 0);
    Ok(row)
}

/// What one idle connection saw.
#[derive(Default)]
struct Idle {
    connected: bool,
    pings: u64,
    ended: Option<String>,
}

/// Opens `n` idle connections to `server`, holds them for `hold`, and fills `row`: connection
/// rate and handshake latency, memory per connection, and as errors every connection that
/// failed, ended early, or (with `min_pings`) saw fewer heartbeats.
pub async fn hold(
    server: &ServerProcess,
    n: usize,
    peer: Peer,
    hold: Duration,
    min_pings: Option<u64>,
    row: &mut Row,
) -> Result<()> {
    // The resting size, after start-up and setup settled.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server.stats();
    let window = Window::start(server);
    let (stop_tx, stop) = watch::channel(false);
    let permits = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let handshakes = Arc::new(Mutex::new(Latencies::new()));
    let settled = Arc::new(AtomicU64::new(0));
    let addr = server.addr;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permits = Arc::clone(&permits);
        let handshakes = Arc::clone(&handshakes);
        let settled = Arc::clone(&settled);
        let peer = peer.clone();
        let mut stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut idle = Idle::default();
            let opened = {
                let _permit = permits.acquire().await;
                let begun = Instant::now();
                let opened =
                    tokio::time::timeout(Duration::from_secs(60), open(addr, i, &peer)).await;
                match opened {
                    Ok(Ok(stream)) => {
                        if let Ok(mut latencies) = handshakes.lock() {
                            latencies.record(begun.elapsed());
                        }
                        Some(stream)
                    }
                    Ok(Err(error)) => {
                        idle.ended = Some(format!("{error:#}"));
                        None
                    }
                    Err(_) => {
                        idle.ended = Some("connect timed out".to_owned());
                        None
                    }
                }
            };
            settled.fetch_add(1, Ordering::Relaxed);
            let Some(mut stream) = opened else {
                return idle;
            };
            idle.connected = true;
            loop {
                let read = tokio::select! {
                    _ = stop.changed() => break,
                    read = ws::read(&mut stream) => read,
                };
                match read {
                    Read::Ping => idle.pings += 1,
                    Read::Frame(_) => {}
                    Read::Ended(why) => {
                        idle.ended = Some(why);
                        break;
                    }
                }
            }
            idle
        }));
    }
    while settled.load(Ordering::Relaxed) < n as u64 {
        if started.elapsed() > CONNECT_TIMEOUT {
            let _ = stop_tx.send(true);
            bail!(
                "only {} of {n} connections settled within {CONNECT_TIMEOUT:?}",
                settled.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connect_secs = started.elapsed().as_secs_f64();
    let after_connect = server.stats();
    tokio::time::sleep(hold).await;
    let after_hold = server.stats();
    let _ = stop_tx.send(true);

    let (mut connected, mut failed, mut dropped, mut deaf) = (0_u64, 0_u64, 0_u64, 0_u64);
    let (mut fewest_pings, mut first_failure) = (u64::MAX, None);
    for task in tasks {
        let idle = task.await.unwrap_or_default();
        if idle.connected {
            connected += 1;
            fewest_pings = fewest_pings.min(idle.pings);
            if idle.ended.is_some() {
                dropped += 1;
            }
            if min_pings.is_some_and(|min| idle.pings < min) {
                deaf += 1;
            }
        } else {
            failed += 1;
        }
        if first_failure.is_none() {
            first_failure = idle.ended;
        }
    }
    window.finish(server, row);
    let kib_each = |stats: crate::server::ProcStats| {
        stats.rss_kib.saturating_sub(before.rss_kib) as f64 / connected.max(1) as f64
    };
    let per_connection = kib_each(after_connect).max(kib_each(after_hold));
    let handshakes = handshakes.lock().map(|l| l.summary()).unwrap_or_default();
    row.throughput = connected as f64 / connect_secs.max(1e-9);
    row.unit = "conn/s".to_owned();
    row.latency = handshakes;
    row.latency_of = match peer {
        Peer::Frontdesk { .. } => "TCP connect until the `ready` frame".to_owned(),
        Peer::Echo => "TCP connect until the first echo".to_owned(),
    };
    row.extra("connections", n);
    row.extra("held", connected - dropped);
    row.extra("connect_seconds", format!("{connect_secs:.1}"));
    row.extra(
        "rss_before_mib",
        format!("{:.1}", before.rss_kib as f64 / 1024.0),
    );
    row.extra(
        "rss_connected_mib",
        format!("{:.1}", after_connect.rss_kib as f64 / 1024.0),
    );
    row.extra(
        "rss_after_hold_mib",
        format!("{:.1}", after_hold.rss_kib as f64 / 1024.0),
    );
    row.extra("per_connection_kib", (per_connection * 10.0).round() / 10.0);
    if min_pings.is_some() {
        row.extra(
            "fewest_pings_seen",
            if connected > 0 { fewest_pings } else { 0 },
        );
    }
    let why = first_failure.unwrap_or_default();
    row.error(
        failed,
        format!("{failed} connections failed to open: {why}"),
    );
    row.error(
        dropped,
        format!("{dropped} connections dropped while idle: {why}"),
    );
    row.error(
        deaf,
        format!(
            "{deaf} connections saw fewer than {} pings",
            min_pings.unwrap_or(0)
        ),
    );
    progress(
        &row.backend,
        &row.name,
        format!("{connected} connected in {connect_secs:.1} s, {per_connection:.1} KiB each"),
    );
    Ok(())
}

/// One connection, up to the point where it is known to be established.
async fn open(addr: std::net::SocketAddr, i: usize, peer: &Peer) -> Result<ws::Ws> {
    let source = Some(ws::source_ip(i));
    match peer {
        Peer::Frontdesk { key } => {
            let path = format!("/ws?clientId=idle-{i}");
            let mut stream = ws::connect(addr, source, &path, Some(key), true).await?;
            ws::until(&mut stream, "ready").await?;
            Ok(stream)
        }
        Peer::Echo => {
            let mut stream = ws::connect(addr, source, "/ws", None, true).await?;
            ws::send(&mut stream, "hello".to_owned()).await?;
            loop {
                match stream.next().await {
                    Some(Ok(Message::Text(_))) => return Ok(stream),
                    Some(Ok(_)) => continue,
                    _ => bail!("no echo"),
                }
            }
        }
    }
}
