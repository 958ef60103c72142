//! One customer flooding its WebSocket (issue 12, finding 3): the flooder is rate-limited and
//! then closed with 1008, its typing is coalesced and never queued into a full queue, and the
//! agents listening to the conversation stay connected. The log stays short.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use support::{Backend, Server, TestDb, WsClient};
use tokio_tungstenite::tungstenite::Message;

on_both_backends!(
    a_typing_flood_is_rate_limited_and_disconnects_no_agent,
    unlimited_typing_never_disconnects_a_peer,
    a_ping_and_read_flood_is_rate_limited,
);

/// How long the flooder sends as fast as it can.
const FLOOD_FOR: Duration = Duration::from_secs(3);
/// Log lines the whole flood may cause (the original flood wrote 26,377).
const LOG_LINES_BOUND: usize = 40;

#[derive(Debug, Default)]
struct Flooded {
    sent: u64,
    rate_limited: u64,
    close_code: Option<u16>,
}

/// A conversation waiting for an agent (so every agent hears its typing), two agents
/// connected who do not read during the flood (as a busy console might not for a few
/// seconds), and a customer session for "ann".
struct Scene {
    _db: TestDb,
    server: Server,
    partner: support::Partner,
    conversation: i64,
    agents: Vec<WsClient>,
    ann_query: String,
}

async fn scene(backend: Backend, env: &[(&str, &str)]) -> Scene {
    let db = TestDb::new(backend).await;
    let server = Server::start_with(&db, env).await;
    let partner = server.register("Acme").await;
    let conversation = server.conversation(&partner, "ann").await;
    let token = server.session(&partner, "ann").await;
    let mut agents = Vec::new();
    for email in ["one@example.com", "two@example.com"] {
        let agent = server.agent(email, false).await;
        // Tiny receive buffers: their queues fill within moments of a flood.
        let mut client = WsClient::connect_small_buffer(&server, &agent.ws_query(), None).await;
        client.expect("ready").await;
        agents.push(client);
    }
    Scene {
        _db: db,
        server,
        partner,
        conversation,
        agents,
        ann_query: format!("clientId=ann&token={token}"),
    }
}

/// Sends `frame(n)` as fast as the socket takes it for `FLOOD_FOR` (or until the server
/// ends the connection), while counting what the server answers.
async fn flood(server: &Server, query: &str, frame: impl Fn(u64) -> String) -> Flooded {
    let url = format!("{}/ws?{query}", server.base.replacen("http", "ws", 1));
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let (mut sink, mut stream) = ws.split();
    let seen = Arc::new(Mutex::new(Flooded::default()));
    let counts = Arc::clone(&seen);
    let reading = tokio::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            let mut counts = counts.lock().unwrap_or_else(|p| p.into_inner());
            match message {
                Message::Text(text) => {
                    let frame: Value = serde_json::from_str(&text).unwrap_or_default();
                    if frame["type"] == "error" && frame["payload"]["code"] == "rate_limited" {
                        counts.rate_limited += 1;
                    }
                }
                Message::Close(close) => {
                    counts.close_code = close.map(|c| u16::from(c.code));
                    return;
                }
                _ => {}
            }
        }
    });
    let started = Instant::now();
    let mut sent = 0;
    while started.elapsed() < FLOOD_FOR {
        // `feed` without a flush per frame: as fast as the socket takes them.
        if sink.feed(Message::text(frame(sent))).await.is_err() {
            break;
        }
        sent += 1;
        if sent.is_multiple_of(64) && sink.flush().await.is_err() {
            break;
        }
    }
    let _ = sink.flush().await;
    let _ = sink.close().await;
    // Whatever the server still had to say about the flood arrives shortly.
    let _ = tokio::time::timeout(Duration::from_secs(5), reading).await;
    let mut outcome = std::mem::take(&mut *seen.lock().unwrap_or_else(|p| p.into_inner()));
    outcome.sent = sent;
    outcome
}

/// Every agent is still connected: a real message posted now reaches each of them.
async fn agents_still_hear(scene: &mut Scene) {
    let message = scene
        .server
        .say(&scene.partner, scene.conversation, "ann", "a real message")
        .await;
    for agent in &mut scene.agents {
        // `until` fails if the connection ended before the message came.
        let frame = agent.until("message").await;
        assert_eq!(frame["payload"]["id"], message["id"]);
    }
}

/// The customer floods with `frame`s: it is told `rate_limited`, then closed with 1008; both
/// agents still hear a real message, and the flood cost a handful of log lines, no panic.
async fn flood_is_contained(scene: &mut Scene, log_before: usize, frame: impl Fn(u64) -> String) {
    let outcome = flood(&scene.server, &scene.ann_query, frame).await;
    println!("{outcome:?}");
    assert!(outcome.rate_limited >= 1, "{outcome:?}");
    assert_eq!(outcome.close_code, Some(1008), "{outcome:?}");
    agents_still_hear(scene).await;
    let lines = log_lines(&scene.server) - log_before;
    assert!(
        lines < LOG_LINES_BOUND,
        "{lines} log lines:\n{}",
        scene.server.log()
    );
    scene.server.assert_no_panics();
}

fn log_lines(server: &Server) -> usize {
    server.log().lines().count()
}

async fn a_typing_flood_is_rate_limited_and_disconnects_no_agent(backend: Backend) {
    let mut scene = scene(backend, &[]).await;
    let before = log_lines(&scene.server);
    let conversation = scene.conversation;
    let typing = move |_| {
        json!({"type": "typing", "payload": {"conversationId": conversation, "isTyping": true}})
            .to_string()
    };
    flood_is_contained(&mut scene, before, typing).await;
}

/// With the rate limit lifted, typing alone (alternating, so none is coalesced away) still
/// cannot fill an agent's queue: it is dropped when a queue is half full.
async fn unlimited_typing_never_disconnects_a_peer(backend: Backend) {
    let unlimited = [
        ("FRONTDESK_WS_RATE", "1000000000"),
        ("FRONTDESK_WS_BURST", "1000000000"),
    ];
    let mut scene = scene(backend, &unlimited).await;
    let before = log_lines(&scene.server);
    let conversation = scene.conversation;
    let typing = move |n: u64| {
        json!({"type": "typing", "payload": {"conversationId": conversation, "isTyping": n.is_multiple_of(2)}})
            .to_string()
    };
    let outcome = flood(&scene.server, &scene.ann_query, typing).await;
    println!("{outcome:?}");
    assert!(outcome.sent > 1_000, "the flood was no flood: {outcome:?}");
    agents_still_hear(&mut scene).await;
    let lines = log_lines(&scene.server) - before;
    assert!(
        lines < LOG_LINES_BOUND,
        "{lines} log lines:\n{}",
        scene.server.log()
    );
    scene.server.assert_no_panics();
}

async fn a_ping_and_read_flood_is_rate_limited(backend: Backend) {
    let mut scene = scene(backend, &[]).await;
    let message = scene
        .server
        .say(&scene.partner, scene.conversation, "ann", "hello")
        .await;
    for agent in &mut scene.agents {
        agent.until("message").await;
    }
    let before = log_lines(&scene.server);
    let conversation = scene.conversation;
    let frames = move |n: u64| {
        if n.is_multiple_of(2) {
            json!({"type": "ping"}).to_string()
        } else {
            json!({"type": "read", "payload": {"conversationId": conversation, "messageId": message["id"]}})
                .to_string()
        }
    };
    flood_is_contained(&mut scene, before, frames).await;
}
