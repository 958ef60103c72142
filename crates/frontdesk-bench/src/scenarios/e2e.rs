//! Scenario 2, end-to-end latency: customers' WebSockets send `message` frames (25 customers
//! taking turns), the agent holding their conversations receives the `message` events on its
//! WebSocket. Meanwhile partners
//! POST 1,000 messages/s into other conversations, held by a second (connected) agent, so the
//! store, the event log and the fan-out are all busy. Compared with baseline (c): the round
//! trip through a bare echo server under the same frame rate (client -> server -> client, as
//! here, without storage).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use futures_util::StreamExt;
use tokio::sync::watch;

use crate::db::Backend;
use crate::harness::{progress, Ctx, Deployment, Window};
use crate::load::{self, Target};
use crate::report::Row;
use crate::scenarios::{connect_ready, gather, listen};
use crate::stats::stamp;
use crate::ws;

/// Connections the background writer uses.
const BACKGROUND_CONNS: usize = 8;
/// Customers whose messages are timed.
const TIMED_CUSTOMERS: usize = 25;

pub async fn run(ctx: &Ctx, backend: Backend) -> Result<Row> {
    let deployment = Deployment::start(ctx, backend, &[]).await?;
    let mut row = Row::new(
        backend.name(),
        "e2e",
        "scenario",
        &format!(
            "customer WS -> agent WS at {:.0} msg/s of background POSTs",
            ctx.sizes.e2e_background_rate
        ),
    );
    let outcome = measure(ctx, &deployment, &mut row).await;
    deployment.finish(&mut row).await;
    outcome?;
    row.compare(
        ctx.baseline("baseline-c-echo-e2e"),
        "p99 over the echo round trip's p99 (1.0 = no cost beyond the framework)",
        |r| r.latency.p99_us as f64,
    );
    row.target = "p99 < 10 ms".to_owned();
    row.target_met = Some(row.latency.count > 0 && row.latency.p99_us < 10_000);
    Ok(row)
}

async fn measure(ctx: &Ctx, deployment: &Deployment, row: &mut Row) -> Result<()> {
    let sizes = &ctx.sizes;
    let backend = row.backend.clone();
    let api = &deployment.api;
    let key = deployment.key.as_str();
    let addr = deployment.server.addr;

    let agents = api.agents(&ctx.frontdesk, &deployment.db.url, 2).await?;
    let (timed_agent, busy_agent) = (&agents[0], &agents[1]);
    let background_customers: Vec<String> = (0..sizes.e2e_background_conversations)
        .map(|i| format!("bg-{i}"))
        .collect();
    let background = api.conversations(key, &background_customers).await?;
    // Several timed customers share the sample rate: one person types a message every few
    // seconds at most, and each socket handles its frames in order, so a single socket at
    // hundreds of frames/s would measure its own queue, not the server's latency.
    let customers: Vec<String> = (0..TIMED_CUSTOMERS).map(|i| format!("e2e-{i}")).collect();
    let conversations = api.conversations(key, &customers).await?;
    let mut pairs: Vec<(i64, crate::api::Agent)> = background
        .iter()
        .map(|id| (*id, busy_agent.clone()))
        .collect();
    pairs.extend(conversations.iter().map(|id| (*id, timed_agent.clone())));
    api.assign(&pairs).await?;
    let tokens = api.sessions(key, &customers).await?;

    let (stop_tx, stop) = watch::channel(false);
    let mut timed_ws = ws::connect(addr, None, &timed_agent.ws_path(), None, false).await?;
    ws::until(&mut timed_ws, "ready").await?;
    let mut busy_ws = ws::connect(addr, None, &busy_agent.ws_path(), None, false).await?;
    ws::until(&mut busy_ws, "ready").await?;
    let customer_paths: Vec<String> = customers
        .iter()
        .zip(&tokens)
        .map(|(customer, token)| format!("/ws?clientId={customer}&token={token}"))
        .collect();
    let customer_sockets = connect_ready(addr, &customer_paths, TIMED_CUSTOMERS).await?;

    let samples = sizes.e2e_samples;
    let timed = listen(
        timed_ws,
        Some("e2e-".to_owned()),
        Some(samples),
        None,
        stop.clone(),
    );
    let busy = listen(busy_ws, None, None, None, stop.clone());
    let mut sinks = Vec::with_capacity(TIMED_CUSTOMERS);
    let mut own = Vec::with_capacity(TIMED_CUSTOMERS);
    for socket in customer_sockets {
        let (sink, stream) = socket.split();
        sinks.push(sink);
        own.push(listen(stream, None, None, None, stop.clone()));
    }
    let targets: Arc<Vec<Target>> = Arc::new(
        background
            .iter()
            .zip(&background_customers)
            .map(|(conversation, customer)| Target {
                conversation: *conversation,
                customer: customer.clone(),
            })
            .collect(),
    );
    let (stop_writer_tx, stop_writer) = watch::channel(false);
    let writer = tokio::spawn(load::paced(
        addr,
        Arc::from(key),
        targets,
        sizes.e2e_background_rate,
        BACKGROUND_CONNS,
        stop_writer,
    ));
    progress(&backend, "e2e", "background load running; sampling");
    tokio::time::sleep(Duration::from_millis(500)).await;

    let window = Window::start(&deployment.server);
    // One sender loop, round-robin over the customers: sample `seq` goes out on customer
    // `seq % TIMED_CUSTOMERS`'s socket at the schedule's tick.
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / sizes.e2e_sample_rate));
    let mut sent = 0_u64;
    for seq in 0..samples {
        ticks.tick().await;
        let who = seq as usize % TIMED_CUSTOMERS;
        let frame = ws::message_frame(conversations[who], &stamp(seq), &format!("e2e-{seq}"));
        if ws::send(&mut sinks[who], frame).await.is_err() {
            break;
        }
        sent += 1;
    }
    // The timed listener stops by itself once every sample arrived; give stragglers 10 s.
    let mut timed = timed;
    let finished = tokio::time::timeout(Duration::from_secs(10), &mut timed).await;
    window.finish(&deployment.server, row);
    let _ = stop_writer_tx.send(true);
    let written = writer.await?;
    // Let the last background events reach the busy agent before everyone stops listening.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = stop_tx.send(true);
    let heard = match finished {
        Ok(joined) => joined.unwrap_or_default(),
        Err(_) => timed.await.unwrap_or_default(),
    };
    let busy = gather(vec![busy]).await;
    let own = gather(own).await;
    drop(sinks);

    row.latency = heard.latencies.summary();
    row.latency_of = "customer sends the frame until the agent's socket receives the event".into();
    row.throughput = (written.stored.len() as f64 + heard.timed as f64) / row.measured_seconds;
    row.unit = "msg/s".to_owned();
    // Ack latency is the store's share (commit), the rest is the event log and fan-out.
    let acks = own.ack_latencies.summary();
    row.extra("ack_p50_us", acks.p50_us);
    row.extra("ack_p99_us", acks.p99_us);
    row.extra("samples_sent", sent);
    row.extra("samples_received", heard.timed);
    row.extra(
        "background_rate_achieved",
        format!(
            "{:.0}",
            written.stored.len() as f64 / written.secs.max(1e-9)
        ),
    );
    row.extra("background_events_heard_by_agent", busy.messages);
    row.error(
        sent.saturating_sub(heard.timed),
        format!(
            "{} of {sent} samples never reached the agent",
            sent.saturating_sub(heard.timed)
        ),
    );
    row.error(heard.duplicates, "samples delivered twice");
    row.error(written.errors, written.error_samples.join("; "));
    row.error(own.error_frames, own.error_samples.join("; "));
    row.error(sent.saturating_sub(own.acks), "samples without an ack");
    for ended in [&busy, &own] {
        if let Some(why) = &ended.ended {
            row.error(ended.ended_count, why.clone());
        }
    }
    // The busy agent must have heard every background message (it holds them all).
    let missed = (written.stored.len() as u64).saturating_sub(busy.messages);
    row.error(
        missed,
        format!("{missed} background messages never reached their agent"),
    );
    Ok(())
}
