//! Scenario 7, automated replies (issue 16), against a fake OpenAI-compatible model in this
//! process that answers after a fixed latency:
//!
//! - `replies-post-off` / `replies-post`: the customer's POST latency under a paced load into
//!   waiting conversations, with the responder off and then on. The responder must not slow
//!   the request path: the ratio of the p99s should be within noise of 1.
//! - `replies-latency`: that many waiting conversations get one customer message each, at
//!   once; each reply's latency is from the customer's message being stored (its POST answered
//!   201) until the bot's `message` reaches an agent's socket: what the responder adds to the
//!   model's own time. The target is p99 at most the model's latency + 50 ms. The latency from
//!   the POST's sending, which includes the burst of 500 POSTs itself, is reported beside it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use frontdesk_testkit::fake_model::FakeModel;
use hyper::{Method, StatusCode};
use serde_json::Value;
use tokio::time::MissedTickBehavior;

use crate::db::Backend;
use crate::harness::{progress, Ctx, Deployment, Window};
use crate::http::HttpConn;
use crate::load::{message_body, Target};
use crate::report::Row;
use crate::stats::Latencies;
use crate::ws::{self, Read};

/// The fake model's latency (the figure).
pub const MODEL_LATENCY: Duration = Duration::from_millis(300);
/// What the fake model answers, in four streamed pieces.
const REPLY: &str = "Thanks! Let me look into that for you.";
/// Connections the paced POST load uses.
const POST_CONNS: usize = 8;

pub async fn run(ctx: &Ctx, backend: Backend) -> Result<Vec<Row>> {
    let model = FakeModel::replying(REPLY, MODEL_LATENCY, 4).await;
    let off = post_latency(
        ctx,
        backend,
        &[("FRONTDESK_AUTOMATED_REPLIES", "off".into())],
        "replies-post-off",
    )
    .await?;
    let mut on = post_latency(ctx, backend, &model_env(&model), "replies-post").await?;
    on.compare(
        Some(&off),
        "POST p99 with the responder on over its p99 with it off (1.0 = no cost)",
        |r| r.latency.p99_us as f64,
    );
    on.target = "within noise of off".to_owned();
    // A model of its own, so its call count is this phase's.
    let fresh = FakeModel::replying(REPLY, MODEL_LATENCY, 4).await;
    // The baseline: the same path for one conversation alone, in this run.
    let one = reply_latency(ctx, backend, &fresh, 1, "replies-latency-one").await?;
    let mut latency = reply_latency(
        ctx,
        backend,
        &fresh,
        ctx.sizes.replies_concurrent,
        "replies-latency",
    )
    .await?;
    latency.compare(
        Some(&one),
        "p99 over one conversation's reply latency alone (1.0 = no cost of the crowd)",
        |r| r.latency.p99_us as f64,
    );
    Ok(vec![off, on, one, latency])
}

fn model_env(model: &FakeModel) -> Vec<(&'static str, String)> {
    vec![
        ("FRONTDESK_AUTOMATED_REPLIES", "on".into()),
        ("FRONTDESK_LLM_URL", model.url.clone()),
        // Every conversation of the scenario is answered, none handed off as busy.
        ("FRONTDESK_LLM_MAX_IN_FLIGHT", "10000".into()),
        ("FRONTDESK_BOT_MAX_REPLIES", "1000000".into()),
        ("FRONTDESK_BOT_MAX_TOKENS", "1000000000".into()),
        // One agent socket hears every waiting conversation's events and deltas at once.
        ("FRONTDESK_WS_QUEUE", "16384".into()),
    ]
}

async fn post_latency(
    ctx: &Ctx,
    backend: Backend,
    env: &[(&str, String)],
    name: &str,
) -> Result<Row> {
    let sizes = &ctx.sizes;
    let deployment = Deployment::start(ctx, backend, env).await?;
    let mut row = Row::new(
        backend.name(),
        name,
        if name.ends_with("-off") {
            "baseline"
        } else {
            "scenario"
        },
        &format!(
            "customer POSTs at {:.0}/s into {} waiting conversations, responder {}",
            sizes.replies_post_rate,
            sizes.replies_conversations,
            if name.ends_with("-off") {
                "off"
            } else {
                "on (model 300 ms)"
            }
        ),
    );
    let outcome = async {
        let customers: Vec<String> = (0..sizes.replies_conversations)
            .map(|i| format!("r-{i}"))
            .collect();
        let ids = deployment
            .api
            .conversations(&deployment.key, &customers)
            .await?;
        let targets: Arc<Vec<Target>> = Arc::new(
            ids.iter()
                .zip(&customers)
                .map(|(conversation, customer)| Target {
                    conversation: *conversation,
                    customer: customer.clone(),
                })
                .collect(),
        );
        let window = Window::start(&deployment.server);
        let (latencies, stored, errors) = paced_posts(
            deployment.server.addr,
            Arc::from(deployment.key.as_str()),
            targets,
            sizes.replies_post_rate,
            sizes.replies_post_secs,
        )
        .await;
        window.finish(&deployment.server, &mut row);
        row.latency = latencies.summary();
        row.latency_of = "customer's POST /api/partner/messages until its 201".into();
        row.throughput = stored as f64 / row.measured_seconds.max(1e-9);
        row.unit = "msg/s".to_owned();
        row.error(errors.len() as u64, errors.join(" | "));
        anyhow::Ok(())
    }
    .await;
    deployment.finish(&mut row).await;
    outcome?;
    Ok(row)
}

/// Posts at `rate` in all for `secs` over `POST_CONNS` connections, open loop; the latency
/// of each POST, how many were stored, and the failures.
async fn paced_posts(
    addr: SocketAddr,
    key: Arc<str>,
    targets: Arc<Vec<Target>>,
    rate: f64,
    secs: f64,
) -> (Latencies, u64, Vec<String>) {
    let period = Duration::from_secs_f64(POST_CONNS as f64 / rate.max(1e-3));
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for c in 0..POST_CONNS {
        let (key, targets) = (Arc::clone(&key), Arc::clone(&targets));
        tasks.push(tokio::spawn(async move {
            let mut conn = HttpConn::new(addr);
            let offset = period.mul_f64(c as f64 / POST_CONNS as f64);
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let (mut latencies, mut stored, mut errors) = (Latencies::new(), 0u64, Vec::new());
            let mut seq = c;
            while Instant::now() < end {
                ticks.tick().await;
                let target = &targets[seq % targets.len()];
                seq += POST_CONNS;
                let body = message_body(target, "Where is my parcel? It has not arrived yet.");
                let sent = Instant::now();
                match conn
                    .call(
                        Method::POST,
                        "/api/partner/messages",
                        Some(&key),
                        Some(body),
                    )
                    .await
                {
                    Ok((StatusCode::CREATED, _)) => {
                        latencies.record(sent.elapsed());
                        stored += 1;
                    }
                    Ok((status, _)) if errors.len() < 3 => errors.push(format!("POST: {status}")),
                    Err(error) if errors.len() < 3 => errors.push(format!("POST: {error:#}")),
                    _ => {}
                }
            }
            (latencies, stored, errors)
        }));
    }
    let (mut all, mut stored, mut errors) = (Latencies::new(), 0, Vec::new());
    for task in tasks {
        match task.await {
            Ok((latencies, n, mut failed)) => {
                all.merge(&latencies);
                stored += n;
                errors.append(&mut failed);
            }
            Err(error) => errors.push(format!("POST task: {error}")),
        }
    }
    (all, stored, errors)
}

async fn reply_latency(
    ctx: &Ctx,
    backend: Backend,
    model: &FakeModel,
    count: usize,
    name: &str,
) -> Result<Row> {
    let calls_before = model.bodies().len();
    let deployment = Deployment::start(ctx, backend, &model_env(model)).await?;
    let mut row = Row::new(
        backend.name(),
        name,
        if count == 1 { "baseline" } else { "scenario" },
        &format!("{count} waiting conversation(s) get a customer message at once; model 300 ms"),
    );
    let outcome = async {
        let api = &deployment.api;
        let agent = api
            .agents(&ctx.frontdesk, &deployment.db.url, 1)
            .await?
            .remove(0);
        let customers: Vec<String> = (0..count).map(|i| format!("w-{i}")).collect();
        let ids = api.conversations(&deployment.key, &customers).await?;
        let mut socket =
            ws::connect(deployment.server.addr, None, &agent.ws_path(), None, false).await?;
        ws::until(&mut socket, "ready").await?;

        // By message id: when its POST was sent and when it was answered 201 (the message is
        // stored: from then on the reply is the responder's work). Filled before the reply
        // can arrive, since the reply needs the model's 300 ms.
        let sent: Arc<Mutex<HashMap<i64, (Instant, Instant)>>> = Arc::default();
        let window = Window::start(&deployment.server);
        let posts = ids.iter().zip(&customers).map(|(conversation, customer)| {
            let sent = Arc::clone(&sent);
            let key = deployment.key.clone();
            let addr = deployment.server.addr;
            let target = Target {
                conversation: *conversation,
                customer: customer.clone(),
            };
            async move {
                let mut conn = HttpConn::new(addr);
                let body = message_body(&target, "Hello, is anyone there?");
                let at = Instant::now();
                let (status, body) = conn
                    .call(
                        Method::POST,
                        "/api/partner/messages",
                        Some(&key),
                        Some(body),
                    )
                    .await?;
                anyhow::ensure!(status == StatusCode::CREATED, "POST: {status}");
                let id = serde_json::from_slice::<Value>(&body)?["id"]
                    .as_i64()
                    .ok_or_else(|| anyhow::anyhow!("no id"))?;
                if let Ok(mut sent) = sent.lock() {
                    sent.insert(id, (at, Instant::now()));
                }
                anyhow::Ok(())
            }
        });
        // Each POST and the listener in tasks of their own, so no instant is taken late
        // because its task was busy with another.
        let posted = futures_util::future::join_all(posts.map(tokio::spawn));
        let sent_for_listener = Arc::clone(&sent);
        let listen = async move {
            let (mut latencies, mut from_send, mut posts) =
                (Latencies::new(), Latencies::new(), Latencies::new());
            let (mut replies, mut handoffs, mut duplicates) = (0usize, 0u64, 0u64);
            let mut seen = std::collections::HashSet::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while replies < count {
                let read = match tokio::time::timeout_at(deadline, ws::read(&mut socket)).await {
                    Ok(read) => read,
                    Err(_) => break,
                };
                let frame = match read {
                    Read::Frame(frame) => frame,
                    Read::Ping => continue,
                    Read::Ended(why) => anyhow::bail!("the agent's socket ended: {why}"),
                };
                if frame.kind != "message" || frame.payload["senderId"] != "bot" {
                    continue;
                }
                let arrived = Instant::now();
                if frame.payload["metadata"]["handoff"] == true {
                    handoffs += 1;
                }
                let Some(reply_to) = frame.payload["metadata"]["replyTo"].as_i64() else {
                    continue;
                };
                if !seen.insert(reply_to) {
                    duplicates += 1;
                    continue;
                }
                replies += 1;
                let at = sent_for_listener
                    .lock()
                    .ok()
                    .and_then(|s| s.get(&reply_to).copied());
                if let Some((sent, stored)) = at {
                    latencies.record(arrived.duration_since(stored));
                    from_send.record(arrived.duration_since(sent));
                    posts.record(stored.duration_since(sent));
                }
            }
            anyhow::Ok((latencies, from_send, posts, replies, handoffs, duplicates))
        };
        let listener = tokio::spawn(listen);
        let posted = posted.await;
        let heard = listener
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("listener: {e}")));
        window.finish(&deployment.server, &mut row);
        let failed: Vec<String> = posted
            .into_iter()
            .filter_map(|joined| match joined {
                Ok(Ok(())) => None,
                Ok(Err(error)) => Some(format!("{error:#}")),
                Err(error) => Some(format!("POST task: {error}")),
            })
            .collect();
        row.error(
            failed.len() as u64,
            failed.into_iter().take(3).collect::<Vec<_>>().join(" | "),
        );
        let (latencies, from_send, posts, replies, handoffs, duplicates) = heard?;
        // The burst of 500 POSTs at once is the request path's own load (see replies-post for
        // the responder's effect on it); these say how long it took.
        row.extra("post_p99_us", posts.summary().p99_us);
        row.extra("from_post_sent_p50_us", from_send.summary().p50_us);
        row.extra("from_post_sent_p99_us", from_send.summary().p99_us);
        row.error(
            (count - replies) as u64,
            format!("{} replies never arrived", count - replies),
        );
        row.error(handoffs, "conversations handed off instead of answered");
        row.error(duplicates, "replies stored twice");
        row.latency = latencies.summary();
        row.latency_of =
            "customer's POST sent until the bot's message reaches an agent's socket".into();
        row.throughput = replies as f64 / row.measured_seconds.max(1e-9);
        row.unit = "replies/s".to_owned();
        row.extra("model_latency_ms", MODEL_LATENCY.as_millis() as u64);
        row.extra("model_calls", (model.bodies().len() - calls_before) as u64);
        let target_us = (MODEL_LATENCY + Duration::from_millis(50)).as_micros() as u64;
        row.target = "p99 <= model latency + 50 ms".to_owned();
        row.target_met = Some(row.latency.count > 0 && row.latency.p99_us <= target_us);
        row.extra(
            "p99_over_model_latency",
            format!(
                "{:.2}",
                row.latency.p99_us as f64 / MODEL_LATENCY.as_micros() as f64
            ),
        );
        progress(
            backend.name(),
            "replies-latency",
            format!("{replies} replies"),
        );
        anyhow::Ok(())
    }
    .await;
    deployment.finish(&mut row).await;
    outcome?;
    Ok(row)
}
