//! Slow and silent clients are dropped without slowing anyone else.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::raw_ws::{self, OP_CLOSE};
use support::{Backend, Partner, Server, TestDb, WsClient};
use tokio::io::AsyncWriteExt;

on_both_backends!(
    a_client_that_stops_reading_is_disconnected,
    silent_clients_are_dropped
);

/// At most this many messages: the stuck client is cut off long before (its queue holds 128).
const FLOOD: usize = 2_000;
/// Messages posted after the cut, so the reconnect has something it never saw live.
const AFTER_CUT: usize = 10;

/// Posts `count` messages numbered from `first` to ann's conversation, 25 at a time.
async fn post_batch(server: &Server, partner: &Partner, conversation: i64, first: usize) {
    let padding = "x".repeat(9_000);
    let posts = (first..first + 25).map(|n| {
        let body = json!({"conversationId": conversation, "senderId": "ann",
            "content": format!("{n:04} {padding}")});
        async move { server.post_message(&partner.key, &body).await }
    });
    futures_util::future::join_all(posts).await;
}

/// The ids of messages, for assertions that print readably.
fn ids(messages: &[Value]) -> Vec<i64> {
    messages.iter().filter_map(|m| m["id"].as_i64()).collect()
}

async fn a_client_that_stops_reading_is_disconnected(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start_with(&db, &[("FRONTDESK_WS_QUEUE", "128")]).await;
    let partner = server.register("Acme").await;
    let conversation = server.conversation(&partner, "ann").await;
    let query = "clientId=ann";
    // Two tabs of one customer: one stops reading, the other keeps up.
    let mut stuck = WsClient::connect_small_buffer(&server, query, Some(&partner.key)).await;
    let mut reader = WsClient::ready(&server, query, Some(&partner.key)).await;
    let reading = tokio::spawn(async move {
        let mut payloads = Vec::new();
        loop {
            let frame = reader.expect("message").await;
            let last = frame["payload"]["content"] == "the end";
            payloads.push(frame["payload"].clone());
            if last {
                break;
            }
        }
        reader.expect_quiet().await;
        payloads
    });

    // Messages of 9 KB until the server cuts the stuck client off: far more than its queue
    // and socket buffers hold. The moment the log says so, the stuck client reads again, and
    // must find a prefix of the history and then the close frame (the server waits 1 s for
    // a peer to take its close frame before it resets the connection instead).
    let cut = std::sync::atomic::AtomicBool::new(false);
    let flood = async {
        let mut posted = 0;
        while posted < FLOOD && !cut.load(std::sync::atomic::Ordering::Acquire) {
            post_batch(&server, &partner, conversation, posted).await;
            posted += 25;
        }
        posted
    };
    let stuck_side = async {
        let began = Instant::now();
        while !server.log().contains("disconnecting slow client") {
            assert!(
                began.elapsed() < Duration::from_secs(120),
                "the stuck client was never cut off:\n{}",
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        cut.store(true, std::sync::atomic::Ordering::Release);
        let mut frames: Vec<Value> = Vec::new();
        let close = loop {
            match stuck.frame_or_close(support::ws::PATIENCE).await {
                Ok(frame) => frames.push(frame),
                Err(close) => break close,
            }
        };
        (frames, close)
    };
    let (posted, (frames, close)) = tokio::join!(flood, stuck_side);
    assert!(
        posted < FLOOD,
        "the stuck client held out through {posted} messages"
    );
    assert_eq!(
        close,
        Some((1008, "too slow: reconnect with since".to_owned())),
        "the stuck client's end"
    );
    for n in 0..AFTER_CUT {
        server
            .say(&partner, conversation, "ann", &format!("after the cut {n}"))
            .await;
    }
    server.say(&partner, conversation, "ann", "the end").await;

    // The reader got everything, in id order.
    let history = server.history(&partner, conversation).await;
    assert_eq!(history.len(), posted + AFTER_CUT + 1);
    let payloads = reading.await.unwrap_or_else(|e| panic!("reader: {e}"));
    assert_eq!(ids(&payloads), ids(&history));
    assert!(
        payloads == history,
        "the reader's messages differ from the history"
    );

    // The stuck one got `ready`, then the history from its start without a gap, then the cut.
    assert_eq!(
        frames.first().map(|f| f["type"].clone()),
        Some(json!("ready"))
    );
    let got: Vec<Value> = frames[1..].iter().map(|f| f["payload"].clone()).collect();
    assert!(
        frames[1..].iter().all(|f| f["type"] == "message"),
        "{frames:?}"
    );
    eprintln!(
        "the stuck client got {} of {posted} messages before the cut",
        got.len()
    );
    assert!(
        got.len() < posted,
        "cut off after all {} messages",
        got.len()
    );
    assert!(
        !got.is_empty(),
        "the stuck client got nothing before the cut"
    );
    assert_eq!(
        ids(&got),
        ids(&history[..got.len()]),
        "not a gap-free prefix of the history"
    );
    assert!(
        got[..] == history[..got.len()],
        "the stuck client's messages differ"
    );

    // Reconnecting with its last cursor delivers the rest, each once, in order, then `ready`.
    let cursor = stuck.cursor;
    let mut again = WsClient::connect(
        &server,
        &format!("{query}&since={cursor}"),
        Some(&partner.key),
    )
    .await
    .unwrap_or_else(|status| panic!("reconnect refused: {status}"));
    again.cursor = cursor;
    let mut replayed: Vec<Value> = Vec::new();
    let mut last = None;
    let ready = loop {
        let frame = again.next().await;
        if frame["type"] == "ready" {
            break frame;
        }
        assert_eq!(frame["type"], "message", "{frame}");
        last = frame["cursor"].as_i64();
        replayed.push(frame["payload"].clone());
    };
    assert_eq!(
        ids(&replayed),
        ids(&history[got.len()..]),
        "the rest, exactly once"
    );
    assert!(
        replayed[..] == history[got.len()..],
        "replayed messages differ"
    );
    assert_eq!(
        ready["cursor"].as_i64(),
        last,
        "ready says where the replay ended"
    );
    again.expect_quiet().await;
    server.assert_no_panics();
}

/// The silent client's settings: a ping every 0.5 s, dropped after 3 s without a frame (long
/// enough that a stall of the loaded test machine does not drop a client that answers). It
/// must be gone within twice the timeout and the ping interval after its last frame, plus
/// slack for a loaded machine.
const PING: Duration = Duration::from_millis(500);
const TIMEOUT: Duration = Duration::from_secs(3);
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

async fn silent_clients_are_dropped(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start_with(
        &db,
        &[
            ("FRONTDESK_WS_PING_SECS", "0.5"),
            ("FRONTDESK_WS_TIMEOUT_SECS", "3"),
        ],
    )
    .await;
    let partner = server.register("Acme").await;
    // A hand-made client, so that nothing answers the server's pings but this test.
    let (mut silent, mut silent_tx) =
        raw_ws::upgrade(&server, "clientId=ann", Some(&partner.key)).await;
    let mut alive = WsClient::ready(&server, "clientId=bob", Some(&partner.key)).await;

    // For twice the timeout it answers every ping: answering keeps it connected.
    let answering = Instant::now();
    let mut pings = 0;
    let mut last_pong = Instant::now();
    while answering.elapsed() < 2 * TIMEOUT {
        let frame = tokio::select! {
            frame = silent.next_within(TIMEOUT) => frame
                .unwrap_or_else(|| panic!("no ping within {TIMEOUT:?}, or dropped while answering")),
            // `alive` answers pings as it reads.
            _ = alive.next_within(Duration::from_millis(100)) => continue,
        };
        assert_ne!(
            frame.opcode, OP_CLOSE,
            "closed while answering pings: {frame:?}"
        );
        if frame.opcode == OP_PING {
            pings += 1;
            silent_tx
                .write_all(&raw_ws::frame(true, OP_PONG, &frame.payload))
                .await
                .unwrap_or_else(|e| panic!("pong: {e}"));
            last_pong = Instant::now();
        }
    }
    assert!(
        pings >= 2,
        "the server pinged {pings} times in {:?}",
        2 * TIMEOUT
    );

    // Then it stops answering, and is closed with 1001 in time, while `alive` stays.
    let gone_within = 2 * (TIMEOUT + PING) + Duration::from_secs(3);
    let close = loop {
        let left = gone_within.saturating_sub(last_pong.elapsed());
        tokio::select! {
            frame = silent.next_within(left) => {
                let frame = frame.unwrap_or_else(|| {
                    panic!("not closed {gone_within:?} after its last pong, or dropped without a close frame")
                });
                if frame.opcode == OP_CLOSE {
                    break frame;
                }
            }
            _ = alive.next_within(Duration::from_millis(100)) => {}
        }
    };
    let after = last_pong.elapsed();
    let (code, reason) = (
        close.close_code(),
        close.payload.get(2..).map(String::from_utf8_lossy),
    );
    assert_eq!(code, Some(1001), "the silent client's close code");
    assert_eq!(reason.as_deref(), Some("no heartbeat"));
    assert!(after <= gone_within, "closed {after:?} after its last pong");
    alive.expect_quiet().await;
    // The log names the client it dropped, and only that one.
    let log = server
        .log_once_it_has("no heartbeat; dropping connection", Duration::from_secs(5))
        .await;
    let dropped: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("no heartbeat; dropping connection"))
        .collect();
    assert_eq!(dropped.len(), 1, "{log}");
    assert!(dropped[0].contains("client=ann"), "{log}");
    server.assert_no_panics();
}
