//! HTTP load shapes shared by scenarios and baselines: closed-loop message ingest for a fixed
//! time, a fixed number of GETs, and a paced (open-loop) writer for background traffic.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use rand::Rng;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use crate::http::HttpConn;
use crate::stats::Latencies;

/// A conversation and the customer who speaks in it.
#[derive(Debug, Clone)]
pub struct Target {
    pub conversation: i64,
    pub customer: String,
}

/// What a load run measured.
#[derive(Default)]
pub struct LoadResult {
    pub latencies: Latencies,
    /// Successes inside the measured phase.
    pub measured_ok: u64,
    /// Successes in all (warm-up included): what the database must hold.
    pub total_ok: u64,
    pub errors: u64,
    /// The first few errors, for the report.
    pub error_samples: Vec<String>,
    pub measured_secs: f64,
}

impl LoadResult {
    fn absorb(&mut self, other: LoadResult) {
        self.latencies.merge(&other.latencies);
        self.measured_ok += other.measured_ok;
        self.total_ok += other.total_ok;
        self.errors += other.errors;
        for sample in other.error_samples {
            if self.error_samples.len() < 5 {
                self.error_samples.push(sample);
            }
        }
    }

    fn failed(&mut self, what: String) {
        self.errors += 1;
        if self.error_samples.len() < 5 {
            self.error_samples.push(what);
        }
    }

    pub fn rate(&self) -> f64 {
        self.measured_ok as f64 / self.measured_secs.max(1e-9)
    }
}

/// The body of one customer message, as a partner's server would send it.
pub fn message_body(target: &Target, text: &str) -> Bytes {
    Bytes::from(
        serde_json::json!({
            "conversationId": target.conversation,
            "senderId": target.customer,
            "content": text,
            "isFromAgent": false,
        })
        .to_string(),
    )
}

/// `clients` connections each posting messages back to back for `secs` (run it once more
/// before, unmeasured, to warm up). Client `c` cycles through targets c, c+clients, …, so
/// every conversation receives messages.
pub async fn ingest(
    addr: SocketAddr,
    key: Option<Arc<str>>,
    targets: Arc<Vec<Target>>,
    clients: usize,
    secs: f64,
) -> LoadResult {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::with_capacity(clients);
    for client in 0..clients {
        let key = key.clone();
        let targets = Arc::clone(&targets);
        tasks.push(tokio::spawn(async move {
            let mut result = LoadResult::default();
            let mut conn = HttpConn::new(addr);
            let mut seq: usize = 0;
            loop {
                let sent = Instant::now();
                if sent >= end || targets.is_empty() {
                    break;
                }
                let target = &targets[(client + seq * clients) % targets.len()];
                seq += 1;
                let body = message_body(
                    target,
                    &format!("ingest {client}-{seq}: my parcel has not arrived yet"),
                );
                let outcome = conn
                    .call(
                        Method::POST,
                        "/api/partner/messages",
                        key.as_deref(),
                        Some(body),
                    )
                    .await;
                match outcome {
                    Ok((StatusCode::CREATED, _)) => {
                        result.total_ok += 1;
                        result.measured_ok += 1;
                        result.latencies.record(sent.elapsed());
                    }
                    Ok((status, body)) => result.failed(format!(
                        "POST /api/partner/messages: {status} {}",
                        String::from_utf8_lossy(&body)
                    )),
                    Err(error) => result.failed(format!("{error:#}")),
                }
            }
            result
        }));
    }
    let mut total = LoadResult::default();
    for task in tasks {
        match task.await {
            Ok(result) => total.absorb(result),
            Err(error) => total.failed(format!("load task: {error}")),
        }
    }
    total.measured_secs = secs;
    total
}

/// GETs back to back over `clients` connections for `secs`, paths from `path` (given a
/// random source).
pub async fn gets(
    addr: SocketAddr,
    key: Option<Arc<str>>,
    path: Arc<dyn Fn(&mut rand::rngs::ThreadRng) -> String + Send + Sync>,
    clients: usize,
    secs: f64,
) -> LoadResult {
    let started = Instant::now();
    let end = started + Duration::from_secs_f64(secs);
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let key = key.clone();
        let path = Arc::clone(&path);
        tasks.push(tokio::spawn(async move {
            let mut result = LoadResult::default();
            let mut conn = HttpConn::new(addr);
            loop {
                let target = path(&mut rand::rng());
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                match conn.call(Method::GET, &target, key.as_deref(), None).await {
                    Ok((StatusCode::OK, body)) if body.first() == Some(&b'[') => {
                        result.latencies.record(sent.elapsed());
                        result.measured_ok += 1;
                        result.total_ok += 1;
                    }
                    Ok((status, body)) => result.failed(format!(
                        "GET {target}: {status} {}",
                        String::from_utf8_lossy(&body[..body.len().min(200)])
                    )),
                    Err(error) => result.failed(format!("{error:#}")),
                }
            }
            result
        }));
    }
    let mut total = LoadResult::default();
    for task in tasks {
        match task.await {
            Ok(result) => total.absorb(result),
            Err(error) => total.failed(format!("load task: {error}")),
        }
    }
    total.measured_secs = started.elapsed().as_secs_f64();
    total
}

/// What the paced writer stored: `(index into targets, message id)` per success.
#[derive(Default)]
pub struct Written {
    pub stored: Vec<(usize, i64)>,
    pub errors: u64,
    pub error_samples: Vec<String>,
    pub secs: f64,
}

impl Written {
    /// Merges what each writer task recorded; a task that died counts as one error.
    async fn gather(tasks: Vec<tokio::task::JoinHandle<Written>>) -> Written {
        let mut all = Written::default();
        for task in tasks {
            if let Ok(mut part) = task.await {
                all.stored.append(&mut part.stored);
                all.errors += part.errors;
                all.error_samples.append(&mut part.error_samples);
            } else {
                all.errors += 1;
            }
        }
        all
    }

    /// Posts one message to `targets[index]`, recording the stored id or the failure.
    async fn post(
        &mut self,
        conn: &mut HttpConn,
        key: &str,
        targets: &[Target],
        index: usize,
        text: &str,
    ) {
        let body = message_body(&targets[index], text);
        let failure = match conn
            .call(Method::POST, "/api/partner/messages", Some(key), Some(body))
            .await
        {
            Ok((StatusCode::CREATED, body)) => {
                match serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["id"].as_i64())
                {
                    Some(id) => {
                        self.stored.push((index, id));
                        return;
                    }
                    None => "201 without a message id".to_owned(),
                }
            }
            Ok((status, body)) => format!("POST: {status} {}", String::from_utf8_lossy(&body)),
            Err(error) => format!("{error:#}"),
        };
        self.errors += 1;
        if self.error_samples.len() < 3 {
            self.error_samples.push(failure);
        }
    }
}

/// Posts to random targets at `rate` messages per second in all over `conns` connections
/// (open loop: a slow answer delays that connection, not the schedule of the others) until
/// `stop` turns true.
pub async fn paced(
    addr: SocketAddr,
    key: Arc<str>,
    targets: Arc<Vec<Target>>,
    rate: f64,
    conns: usize,
    mut stop: watch::Receiver<bool>,
) -> Written {
    let started = Instant::now();
    let period = Duration::from_secs_f64(conns as f64 / rate.max(1e-3));
    let mut tasks = Vec::with_capacity(conns);
    for c in 0..conns {
        let key = Arc::clone(&key);
        let targets = Arc::clone(&targets);
        let mut stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut written = Written::default();
            let mut conn = HttpConn::new(addr);
            // Spread the connections' ticks over one period.
            let offset = period.mul_f64(c as f64 / conns as f64);
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let mut seq = 0_u64;
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    _ = ticks.tick() => {}
                }
                if *stop.borrow() || targets.is_empty() {
                    break;
                }
                let index = rand::rng().random_range(0..targets.len());
                seq += 1;
                let text = format!("background {c}-{seq}");
                written.post(&mut conn, &key, &targets, index, &text).await;
            }
            written
        }));
    }
    let mut all = Written::gather(tasks).await;
    // Wake-ups of `stop` after the loop ended are harmless.
    let _ = stop.borrow_and_update();
    all.secs = started.elapsed().as_secs_f64();
    all
}

/// Posts one message to each target (all of them, `conns` at a time); successes as `paced`.
pub async fn one_each(
    addr: SocketAddr,
    key: Arc<str>,
    targets: Arc<Vec<Target>>,
    conns: usize,
) -> Written {
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(conns);
    for _ in 0..conns {
        let key = Arc::clone(&key);
        let targets = Arc::clone(&targets);
        let next = Arc::clone(&next);
        tasks.push(tokio::spawn(async move {
            let mut written = Written::default();
            let mut conn = HttpConn::new(addr);
            loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if index >= targets.len() {
                    break;
                }
                let text = format!("missed while away {index}");
                written.post(&mut conn, &key, &targets, index, &text).await;
            }
            written
        }));
    }
    let mut all = Written::gather(tasks).await;
    all.secs = started.elapsed().as_secs_f64();
    all
}
