//! Scenario 4, fan-out: 5,000 conversations, each with its customer and its agent connected
//! (agents hold 100 conversations each). Customers send over their WebSockets, 5,000 messages/s
//! in all; every message must reach its agent exactly once (and the sender's own socket, as
//! the other tabs of that customer would). Compared with baseline (c): echo round trips at the
//! same frame rate over as many connections.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::StreamExt;
use rand::Rng;
use tokio::sync::watch;

use crate::api::Agent;
use crate::db::Backend;
use crate::harness::{progress, Ctx, Deployment, Window};
use crate::report::Row;
use crate::scenarios::{connect_ready, gather, listen, wait_for};
use crate::stats::stamp;
use crate::ws;

const CONNECT_CONCURRENCY: usize = 200;

pub async fn run(ctx: &Ctx, backend: Backend) -> Result<Row> {
    let sizes = &ctx.sizes;
    let deployment = Deployment::start(ctx, backend, &[]).await?;
    let mut row = Row::new(
        backend.name(),
        "fanout",
        "scenario",
        &format!(
            "{} conversations (customer + agent connected, {} agents), {:.0} msg/s sent",
            sizes.fanout_conversations, sizes.fanout_agents, sizes.fanout_rate
        ),
    );
    let outcome = measure(ctx, &deployment, &mut row).await;
    deployment.finish(&mut row).await;
    outcome?;
    row.compare(
        ctx.baseline("baseline-c-echo-fanout"),
        "delivery p99 over the echo round trip's p99 at the same rate",
        |r| r.latency.p99_us as f64,
    );
    let ratio = row
        .extra
        .get("delivered_ratio")
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0);
    row.target = "delivered/sent = 1.0 (p99 reported)".to_owned();
    row.target_met = Some(ratio == 1.0 && row.errors == 0);
    Ok(row)
}

async fn measure(ctx: &Ctx, deployment: &Deployment, row: &mut Row) -> Result<()> {
    let sizes = &ctx.sizes;
    let backend = row.backend.clone();
    let api = &deployment.api;
    let key = deployment.key.as_str();
    let addr = deployment.server.addr;
    let n = sizes.fanout_conversations;

    let agents = api
        .agents(
            &ctx.frontdesk,
            &deployment.db.url,
            sizes.fanout_agents.max(1),
        )
        .await?;
    let customers: Vec<String> = (0..n).map(|i| format!("fan-{i}")).collect();
    let conversations = api.conversations(key, &customers).await?;
    let tokens = api.sessions(key, &customers).await?;
    let pairs: Vec<(i64, Agent)> = conversations
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, agents[i % agents.len()].clone()))
        .collect();
    api.assign(&pairs).await?;
    progress(&backend, "fanout", "conversations assigned; connecting");

    let (stop_tx, stop) = watch::channel(false);
    let delivered = Arc::new(AtomicU64::new(0));
    let echoed = Arc::new(AtomicU64::new(0));
    let agent_paths: Vec<String> = agents.iter().map(Agent::ws_path).collect();
    let agent_sockets = connect_ready(addr, &agent_paths, CONNECT_CONCURRENCY).await?;
    let agent_listeners: Vec<_> = agent_sockets
        .into_iter()
        .map(|socket| {
            listen(
                socket,
                Some("f-".to_owned()),
                None,
                Some(Arc::clone(&delivered)),
                stop.clone(),
            )
        })
        .collect();
    let customer_paths: Vec<String> = customers
        .iter()
        .zip(&tokens)
        .map(|(customer, token)| format!("/ws?clientId={customer}&token={token}"))
        .collect();
    let customer_sockets = connect_ready(addr, &customer_paths, CONNECT_CONCURRENCY).await?;
    progress(&backend, "fanout", "all connected; sending");

    // Each customer sends rate/n messages per second, at its own random phase.
    let period = Duration::from_secs_f64(n as f64 / sizes.fanout_rate);
    let per_customer = (sizes.fanout_secs / period.as_secs_f64()).round().max(1.0) as u64;
    let start = tokio::time::Instant::now() + Duration::from_millis(200);
    let mut writers = Vec::with_capacity(n);
    let mut customer_listeners = Vec::with_capacity(n);
    for (i, socket) in customer_sockets.into_iter().enumerate() {
        let (mut sink, stream) = socket.split();
        customer_listeners.push(listen(
            stream,
            Some("f-".to_owned()),
            None,
            Some(Arc::clone(&echoed)),
            stop.clone(),
        ));
        let conversation = conversations[i];
        let offset = period.mul_f64(rand::rng().random::<f64>());
        writers.push(tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(start + offset, period);
            let mut sent = 0_u64;
            for seq in 0..per_customer {
                ticks.tick().await;
                let frame = ws::message_frame(conversation, &stamp(seq), &format!("f-{i}-{seq}"));
                if ws::send(&mut sink, frame).await.is_err() {
                    break;
                }
                sent += 1;
            }
            // Keep the sink (and so the socket) open until the listeners stop.
            (sent, sink)
        }));
    }
    let window = Window::start(&deployment.server);
    let send_started = Instant::now();
    let mut sent = 0_u64;
    let mut sinks = Vec::with_capacity(n);
    for writer in writers {
        if let Ok((count, sink)) = writer.await {
            sent += count;
            sinks.push(sink);
        }
    }
    let send_secs = send_started.elapsed().as_secs_f64();
    // Deliveries still in flight when the last frame was sent.
    // An overloaded server delivers late, not never: wait long enough to tell the two apart.
    let complete = wait_for(&delivered, sent, Duration::from_secs(30)).await
        && wait_for(&echoed, sent, Duration::from_secs(10)).await;
    let measured = window.finish(&deployment.server, row);
    let _ = stop_tx.send(true);
    let agents_heard = gather(agent_listeners).await;
    let customers_heard = gather(customer_listeners).await;
    drop(sinks);

    let ratio = |got: u64| {
        if sent == 0 {
            0.0
        } else {
            got as f64 / sent as f64
        }
    };
    row.latency = agents_heard.latencies.summary();
    row.latency_of = "customer sends the frame until its agent's socket receives it".to_owned();
    row.throughput = agents_heard.timed as f64 / measured.max(1e-9);
    row.unit = "msg/s".to_owned();
    // Ack latency is the store's share (commit), the rest is the event log and fan-out.
    let acks = customers_heard.ack_latencies.summary();
    row.extra("ack_p50_us", acks.p50_us);
    row.extra("ack_p99_us", acks.p99_us);
    row.extra("sent", sent);
    row.extra(
        "send_rate_achieved",
        format!("{:.0}", sent as f64 / send_secs.max(1e-9)),
    );
    row.extra("delivered_to_agents", agents_heard.timed);
    row.extra("delivered_ratio", ratio(agents_heard.timed));
    row.extra("delivered_to_sender_sockets", customers_heard.timed);
    row.extra("sender_ratio", ratio(customers_heard.timed));
    row.extra(
        "sender_echo_p99_us",
        customers_heard.latencies.summary().p99_us,
    );
    if !complete {
        row.extra("drain", "timed out waiting for the last deliveries");
    }
    let lost = sent.saturating_sub(agents_heard.timed);
    row.error(lost, format!("{lost} messages never reached their agent"));
    let lost_own = sent.saturating_sub(customers_heard.timed);
    row.error(
        lost_own,
        format!("{lost_own} messages never reached the sender's socket"),
    );
    row.error(
        agents_heard.duplicates + customers_heard.duplicates,
        "messages delivered twice",
    );
    row.error(
        customers_heard.error_frames,
        customers_heard.error_samples.join("; "),
    );
    row.error(
        sent.saturating_sub(customers_heard.acks),
        "messages without an ack",
    );
    for heard in [&agents_heard, &customers_heard] {
        if let Some(why) = &heard.ended {
            row.error(heard.ended_count, why.clone());
        }
    }
    Ok(())
}
