//! Finding 8 of issue 12: clients that trickle their request (one byte a second) cannot hold
//! the server's sockets. Bodies have a deadline (408 JSON, connection closed), heads have one
//! (actix's client_request_timeout), and one address may have only so many requests in
//! progress (429, connection closed); another address is served all along.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{Backend, Server, TestDb};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Tricklers of a body, and of a head.
const BODY_TRICKLERS: usize = 250;
const HEAD_TRICKLERS: usize = 50;
/// "It ended at all": every trickler must have been answered or closed by then (the deadlines
/// in this test are 2 s; a trickler that is never cut off would last 1,000 s).
const GUARD: Duration = Duration::from_secs(40);

#[derive(Debug, PartialEq, Eq)]
enum Ending {
    /// The server answered with this status (and its body, as text).
    Answered(u16, String),
    /// The server closed the connection without an answer.
    Closed,
    /// Still open when the guard ran out.
    StillOpen,
}

/// Sends `head`, then `trickle` one byte a second, until the server answers or closes.
async fn trickle(addr: std::net::SocketAddr, head: Vec<u8>, trickle: Vec<u8>) -> Ending {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return Ending::Closed;
    };
    if stream.write_all(&head).await.is_err() {
        return Ending::Closed;
    }
    let (mut reader, mut writer) = stream.split();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let mut bytes = trickle.into_iter();
    let deadline = tokio::time::sleep(GUARD);
    tokio::pin!(deadline);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            read = reader.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            },
            _ = tick.tick() => {
                if let Some(byte) = bytes.next() {
                    if writer.write_all(&[byte]).await.is_err() {
                        break;
                    }
                }
            },
            _ = &mut deadline => return Ending::StillOpen,
        }
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    match text.split_whitespace().nth(1).and_then(|s| s.parse().ok()) {
        Some(status) => Ending::Answered(status, text),
        None => Ending::Closed,
    }
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count())
}

/// The server's open sockets (its database files aside, whose number grows with its pool).
fn open_sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| {
        dir.filter_map(Result::ok)
            .filter_map(|entry| std::fs::read_link(entry.path()).ok())
            .filter(|target| target.to_string_lossy().starts_with("socket:"))
            .count()
    })
}

/// `count()` once it is at most `bound`, or after 5 s: closing takes the server a moment.
async fn settled(count: impl Fn() -> usize, bound: usize) -> usize {
    let mut now = count();
    for _ in 0..50 {
        if now <= bound {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        now = count();
    }
    now
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_clients_are_cut_off_and_others_are_served() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start_with(
        &db,
        &[
            ("FRONTDESK_BODY_TIMEOUT_MS", "2000"),
            ("FRONTDESK_HEAD_TIMEOUT_MS", "2000"),
            ("FRONTDESK_MAX_REQUESTS_PER_ADDRESS", "50"),
        ],
    )
    .await;
    let addr = server.addr();
    let baseline = open_fds(server.pid());

    let body = br#"{"name":"Slow Shop","domain":"slow.example.com"}"#.to_vec();
    let body_head = format!(
        "POST /api/partner/register HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut attack = tokio::task::JoinSet::new();
    for _ in 0..BODY_TRICKLERS {
        attack.spawn(trickle(addr, body_head.clone().into_bytes(), body.clone()));
    }
    let head = format!("POST /api/partner/register HTTP/1.1\r\nHost: {addr}\r\n");
    for _ in 0..HEAD_TRICKLERS {
        attack.spawn(trickle(addr, b"P".to_vec(), head.clone().into_bytes()));
    }

    // Meanwhile another address is served normally.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let innocent = support::client_from("127.0.0.2");
    let during = open_fds(server.pid());
    for i in 0..3 {
        let response = innocent
            .post(server.url("/api/partner/register"))
            .json(&json!({"name": format!("Shop {i}"), "domain": "shop.example.com"}))
            .send()
            .await
            .unwrap_or_else(|e| panic!("the innocent client was not served: {e}"));
        assert_eq!(response.status(), StatusCode::CREATED);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let mut endings = Vec::new();
    while let Some(ending) = attack.join_next().await {
        endings.push(ending.unwrap_or_else(|e| panic!("trickler: {e}")));
    }
    let still_open = endings.iter().filter(|e| **e == Ending::StillOpen).count();
    assert_eq!(still_open, 0, "tricklers still open after {GUARD:?}");
    let mut by_status = std::collections::BTreeMap::new();
    for ending in &endings {
        if let Ending::Answered(status, text) = ending {
            *by_status.entry(*status).or_insert(0) += 1;
            assert!(
                *status == 408 || *status == 429,
                "unexpected answer to a trickler: {text}"
            );
            // The answers we write ourselves are JSON like every error.
            if let Some((_, json)) = text.split_once("\r\n\r\n") {
                if !json.is_empty() {
                    let parsed: Value = serde_json::from_str(json)
                        .unwrap_or_else(|e| panic!("not JSON: {json}: {e}"));
                    assert!(parsed["error"]["code"].is_string(), "{json}");
                }
            }
        }
    }
    assert!(
        by_status.get(&408).is_some_and(|n| *n > 0),
        "no body deadline answered: {by_status:?}"
    );
    assert!(
        by_status.get(&429).is_some_and(|n| *n > 0),
        "the per-address limit never applied: {by_status:?}"
    );
    // The sockets are released, not just answered.
    let after = settled(|| open_fds(server.pid()), baseline + 10).await;
    assert!(
        after <= baseline + 10,
        "the server holds {after} fds after the attack, {baseline} before ({during} during)"
    );
    eprintln!("fds: {baseline} before, {during} during, {after} after; answers {by_status:?}");
    server.assert_no_panics();
}

/// A chunked body has no length to bound it: once the server has answered (or refused), it
/// must stop reading rather than drain a trickle for ever. Likewise a request that merely says
/// `Upgrade` gets the body deadline like any other (only a real WebSocket handshake is exempt).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_chunked_bodies_are_cut_off_too() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start_with(
        &db,
        &[
            ("FRONTDESK_BODY_TIMEOUT_MS", "2000"),
            ("FRONTDESK_HEAD_TIMEOUT_MS", "2000"),
        ],
    )
    .await;
    let addr = server.addr();
    let baseline = open_sockets(server.pid());
    // Ten minutes of one-byte chunks at a byte a second: far past the guard.
    let chunks = b"1\r\nx\r\n".repeat(100);
    let heads = [
        // Answered at once without reading the body, which then trickles on.
        format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\n\r\n"),
        // Read, and cut off by the body deadline.
        format!("POST /api/partner/register HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\n\r\n"),
        format!("POST /api/partner/register HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nContent-Length: 500\r\n\r\n"),
    ];
    let mut attack = tokio::task::JoinSet::new();
    for head in &heads {
        for _ in 0..20 {
            attack.spawn(trickle(addr, head.clone().into_bytes(), chunks.clone()));
        }
    }
    let mut endings = Vec::new();
    while let Some(ending) = attack.join_next().await {
        endings.push(ending.unwrap_or_else(|e| panic!("trickler: {e}")));
    }
    let still_open = endings.iter().filter(|e| **e == Ending::StillOpen).count();
    assert_eq!(still_open, 0, "tricklers still open after {GUARD:?}");
    let statuses: std::collections::BTreeSet<u16> = endings
        .iter()
        .filter_map(|e| match e {
            Ending::Answered(status, _) => Some(*status),
            _ => None,
        })
        .collect();
    assert!(
        statuses.contains(&200),
        "healthz was not answered: {endings:?}"
    );
    assert!(
        statuses.contains(&408),
        "no body deadline answered: {endings:?}"
    );
    let after = settled(|| open_sockets(server.pid()), baseline + 4).await;
    assert!(
        after <= baseline + 4,
        "the server holds {after} sockets after the attack, {baseline} before"
    );
    server.assert_no_panics();
}
