//! The scenarios (six of issue 9, automated replies of issue 16), one module each, and the WebSocket listener they share.

pub mod connections;
pub mod e2e;
pub mod fanout;
pub mod history;
pub mod ingest;
pub mod reconnect;
pub mod replies;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::{stream, StreamExt, TryStreamExt};

use futures_util::Stream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::stats::{micros_since, parse_stamp, Latencies};
use crate::ws::{self, Read};

/// What one connection heard until it was told to stop.
#[derive(Default)]
pub struct Heard {
    /// Latencies of `message` events whose clientMessageId has the timed prefix.
    pub latencies: Latencies,
    /// Send-to-ack latencies of timed messages this connection sent (the store's share of
    /// the delivery latency: an ack is sent once the message is committed).
    pub ack_latencies: Latencies,
    /// Timed messages received, and how many of them more than once.
    pub timed: u64,
    pub duplicates: u64,
    /// Every `message` event (timed or not).
    pub messages: u64,
    pub acks: u64,
    pub pings: u64,
    pub error_frames: u64,
    pub error_samples: Vec<String>,
    /// Why the connection ended before it was told to stop, if it did (for a sum: the first
    /// reason, and `ended_count` connections).
    pub ended: Option<String>,
    pub ended_count: u64,
}

/// Reads `stream` until `stop` turns true (or, with `until`, until that many timed messages
/// arrived): times `message` events whose clientMessageId starts with `timed_prefix` from the
/// stamp in their content, counts the rest.
///
/// `progress`, if given, counts timed messages as they arrive, so the caller can wait for the
/// last ones before stopping.
pub fn listen<S>(
    mut stream: S,
    timed_prefix: Option<String>,
    until: Option<u64>,
    progress: Option<Arc<AtomicU64>>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<Heard>
where
    S: Stream<Item = tungstenite::Result<Message>> + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut heard = Heard::default();
        let mut seen: HashSet<String> = HashSet::new();
        loop {
            if until.is_some_and(|n| heard.timed >= n) || *stop.borrow() {
                break;
            }
            let read = tokio::select! {
                _ = stop.changed() => break,
                read = ws::read(&mut stream) => read,
            };
            let frame = match read {
                Read::Frame(frame) => frame,
                Read::Ping => {
                    heard.pings += 1;
                    continue;
                }
                Read::Ended(why) => {
                    // A stop that raced with the end is not a failure.
                    if !*stop.borrow() {
                        heard.ended = Some(why);
                        heard.ended_count = 1;
                    }
                    break;
                }
            };
            match frame.kind.as_str() {
                "message" => {
                    heard.messages += 1;
                    let id = frame.payload["clientMessageId"]
                        .as_str()
                        .unwrap_or_default();
                    let Some(prefix) = timed_prefix.as_deref() else {
                        continue;
                    };
                    if !id.starts_with(prefix) {
                        continue;
                    }
                    if !seen.insert(id.to_owned()) {
                        heard.duplicates += 1;
                        continue;
                    }
                    let content = frame.payload["content"].as_str().unwrap_or_default();
                    if let Some((_, sent_ns)) = parse_stamp(content) {
                        heard.latencies.record_micros(micros_since(sent_ns));
                    }
                    heard.timed += 1;
                    if let Some(progress) = &progress {
                        progress.fetch_add(1, Ordering::Relaxed);
                    }
                }
                "ack" => {
                    heard.acks += 1;
                    let content = frame.payload["message"]["content"]
                        .as_str()
                        .unwrap_or_default();
                    if let Some((_, sent_ns)) = parse_stamp(content) {
                        heard.ack_latencies.record_micros(micros_since(sent_ns));
                    }
                }
                "error" => {
                    heard.error_frames += 1;
                    if heard.error_samples.len() < 3 {
                        heard.error_samples.push(frame.payload.to_string());
                    }
                }
                _ => {}
            }
        }
        heard
    })
}

/// Awaits listeners and adds up what they heard.
pub async fn gather(listeners: Vec<JoinHandle<Heard>>) -> Heard {
    let mut all = Heard::default();
    let mut ended = 0_u64;
    let mut first_end = None;
    for listener in listeners {
        let Ok(heard) = listener.await else {
            ended += 1;
            continue;
        };
        all.latencies.merge(&heard.latencies);
        all.ack_latencies.merge(&heard.ack_latencies);
        all.timed += heard.timed;
        all.duplicates += heard.duplicates;
        all.messages += heard.messages;
        all.acks += heard.acks;
        all.pings += heard.pings;
        all.error_frames += heard.error_frames;
        if all.error_samples.len() < 3 {
            all.error_samples.extend(heard.error_samples);
        }
        if let Some(why) = heard.ended {
            ended += 1;
            first_end.get_or_insert(why);
        }
    }
    all.ended_count = ended;
    if ended > 0 {
        all.ended = Some(format!(
            "{ended} connections ended early; first: {}",
            first_end.unwrap_or_else(|| "a listener task panicked".to_owned())
        ));
    }
    all
}

/// Opens a WebSocket per path (from spread-out source addresses, `concurrency` at a time) and
/// waits for each one's `ready`; in the paths' order.
pub async fn connect_ready(
    addr: SocketAddr,
    paths: &[String],
    concurrency: usize,
) -> Result<Vec<ws::Ws>> {
    stream::iter(paths.iter().enumerate())
        .map(|(i, path)| async move {
            let mut socket = ws::connect(addr, Some(ws::source_ip(i)), path, None, true).await?;
            ws::until(&mut socket, "ready").await?;
            Ok::<_, anyhow::Error>(socket)
        })
        .buffered(concurrency)
        .try_collect()
        .await
}

/// Waits until `counter` reaches `target` or `patience` passes; whether it got there.
pub async fn wait_for(counter: &AtomicU64, target: u64, patience: Duration) -> bool {
    let deadline = Instant::now() + patience;
    while counter.load(Ordering::Relaxed) < target {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}
