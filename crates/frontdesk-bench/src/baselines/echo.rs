//! Baseline (c): a bare actix-ws echo server (same framework, same frame limits as Frontdesk's
//! `/ws`, nothing else), and the loads run against it: timed echoes, a reconnect storm.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use actix_ws::AggregatedMessage;
use futures_util::StreamExt;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

use crate::config::BindArgs;
use crate::stats::{micros_since, now_ns, parse_stamp, stamp, Latencies};
use crate::ws;

const MAX_FRAME_BYTES: usize = 64 * 1024;

pub fn serve(args: &BindArgs) -> ExitCode {
    let system = actix_web::rt::System::new();
    match system.block_on(run(&args.bind)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("baseline-echo: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(bind: &str) -> std::io::Result<()> {
    let server = HttpServer::new(|| App::new().route("/ws", web::get().to(echo))).bind(bind)?;
    for addr in server.addrs() {
        eprintln!("baseline-echo listening on http://{addr}");
    }
    server.run().await
}

async fn echo(request: HttpRequest, body: web::Payload) -> actix_web::Result<HttpResponse> {
    let (response, mut session, stream) = actix_ws::handle(&request, body)?;
    let mut stream = stream
        .max_frame_size(MAX_FRAME_BYTES)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME_BYTES);
    actix_web::rt::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            let sent = match message {
                AggregatedMessage::Text(text) => session.text(text).await,
                AggregatedMessage::Ping(bytes) => session.pong(&bytes).await,
                AggregatedMessage::Close(reason) => {
                    let _ = session.close(reason).await;
                    return;
                }
                AggregatedMessage::Binary(_) | AggregatedMessage::Pong(_) => Ok(()),
            };
            if sent.is_err() {
                return;
            }
        }
    });
    Ok(response)
}

/// Round trips measured by `echo_latency`.
#[derive(Default)]
pub struct Echoes {
    pub latencies: Latencies,
    pub sent: u64,
    pub received: u64,
    pub errors: u64,
    pub error_samples: Vec<String>,
}

/// `conns` connections sending timed frames at `rate` per second in all for `secs`, each
/// timing its own echoes (client -> server -> client, the path of a relayed chat message).
pub async fn echo_latency(addr: SocketAddr, conns: usize, rate: f64, secs: f64) -> Echoes {
    let result = Arc::new(Mutex::new(Echoes::default()));
    let per_conn = rate / conns as f64;
    let period = Duration::from_secs_f64(1.0 / per_conn.max(1e-3));
    let frames = (per_conn * secs).round().max(1.0) as u64;
    let mut tasks = Vec::with_capacity(conns);
    for c in 0..conns {
        let result = Arc::clone(&result);
        tasks.push(tokio::spawn(async move {
            let mut mine = Echoes::default();
            match ws::connect(addr, Some(ws::source_ip(c)), "/ws", None, true).await {
                Ok(stream) => {
                    let (mut sink, mut stream) = stream.split();
                    // Start the connections at spread-out phases, like independent users.
                    let offset = period.mul_f64(c as f64 / conns as f64);
                    let writer = tokio::spawn(async move {
                        let mut ticks =
                            tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
                        let mut sent = 0;
                        for seq in 0..frames {
                            ticks.tick().await;
                            if ws::send(&mut sink, stamp(seq)).await.is_err() {
                                break;
                            }
                            sent += 1;
                        }
                        (sent, sink)
                    });
                    let deadline = Instant::now() + Duration::from_secs_f64(secs + 10.0);
                    while mine.received < frames && Instant::now() < deadline {
                        let next = tokio::time::timeout_at(deadline.into(), stream.next()).await;
                        match next {
                            Ok(Some(Ok(Message::Text(text)))) => {
                                if let Some((_, sent_ns)) = parse_stamp(&text) {
                                    mine.latencies.record_micros(micros_since(sent_ns));
                                    mine.received += 1;
                                }
                            }
                            Ok(Some(Ok(_))) => {}
                            _ => break,
                        }
                    }
                    match writer.await {
                        Ok((sent, _sink)) => mine.sent = sent,
                        Err(_) => mine.errors += 1,
                    }
                }
                Err(error) => {
                    mine.errors += 1;
                    mine.error_samples.push(format!("{error:#}"));
                }
            }
            let mut all = result.lock().await;
            all.latencies.merge(&mine.latencies);
            all.sent += mine.sent;
            all.received += mine.received;
            all.errors += mine.errors;
            all.error_samples
                .extend(mine.error_samples.into_iter().take(2));
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let mut all = std::mem::take(&mut *result.lock().await);
    let missing = all.sent.saturating_sub(all.received);
    if missing > 0 {
        all.errors += missing;
        all.error_samples
            .push(format!("{missing} echoes never came back"));
    }
    all
}

/// A reconnect storm against the echo server: `clients` connect, spread over `window`, and
/// each waits for the echo of one frame. Returns the time from the first attempt until the
/// last echo, each client's connect-to-echo latency, and failures.
pub async fn storm(
    addr: SocketAddr,
    clients: usize,
    window: Duration,
) -> (Duration, Latencies, u64) {
    let started = Instant::now();
    let failures = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(clients);
    for i in 0..clients {
        let failures = Arc::clone(&failures);
        let at = started + window.mul_f64(i as f64 / clients as f64);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            let begun = now_ns();
            let outcome = async {
                let mut stream =
                    ws::connect(addr, Some(ws::source_ip(i)), "/ws", None, true).await?;
                ws::send(&mut stream, stamp(0)).await?;
                loop {
                    match stream.next().await {
                        Some(Ok(Message::Text(_))) => return Ok::<_, anyhow::Error>(stream),
                        Some(Ok(_)) => continue,
                        _ => anyhow::bail!("no echo"),
                    }
                }
            };
            match tokio::time::timeout(Duration::from_secs(30), outcome).await {
                Ok(Ok(stream)) => Some((micros_since(begun), Instant::now(), stream)),
                _ => {
                    failures.fetch_add(1, Ordering::Relaxed);
                    None
                }
            }
        }));
    }
    let mut latencies = Latencies::new();
    let mut last = started;
    // Keep every connection open until all are done, as the real storm does.
    let mut open = Vec::with_capacity(clients);
    for task in tasks {
        match task.await {
            Ok(Some((micros, done, stream))) => {
                latencies.record_micros(micros);
                last = last.max(done);
                open.push(stream);
            }
            // Counted by the task itself.
            Ok(None) => {}
            Err(_) => {
                failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    drop(open);
    (last - started, latencies, failures.load(Ordering::Relaxed))
}
