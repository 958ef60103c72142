//! Hostile WebSocket clients against the real server (issue 12): oversized frames are refused
//! from their header with 1009 and memory stays flat; a client's close frame is answered at
//! once with its own code.

mod support;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use support::raw_ws::{self, RawReader, OP_CLOSE, OP_CONTINUATION, OP_TEXT};
use support::{Backend, Server, TestDb};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// What an attacker streams at most: more than enough to show unbounded buffering.
const ATTACK_BYTES: usize = 200 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;
/// The server's growth allowed while under attack: the allocator's noise and a few buffers,
/// far below the 200 MB an unguarded server buffers.
const RSS_BOUND_KIB: u64 = 30 * 1024;
/// "It ended at all": an attack that the server ignores would run into this.
const GUARD: Duration = Duration::from_secs(60);

/// How a streamed attack ended, as the attacker saw it.
#[derive(Debug, Default)]
struct Outcome {
    close_code: Option<u16>,
    error_codes: Vec<String>,
    sent: usize,
    rss_growth_kib: u64,
}

/// A server, a registered partner, and a raw socket for customer "ann" after `ready`.
async fn attacked_server() -> (TestDb, Server, RawReader, OwnedWriteHalf) {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db).await;
    let partner = server.register("Acme").await;
    let (mut reader, writer) = raw_ws::upgrade(&server, "clientId=ann", Some(&partner.key)).await;
    let ready = reader
        .next_within(Duration::from_secs(15))
        .await
        .unwrap_or_else(|| panic!("no ready frame"));
    assert!(ready.text().contains("\"ready\""), "{}", ready.text());
    (db, server, reader, writer)
}

/// Streams `frames` (then filler bytes) until the server closes, stops reading, or
/// `ATTACK_BYTES` went out; meanwhile reads what the server says and samples its RSS.
async fn stream_attack(
    server: &Server,
    reader: &mut RawReader,
    mut writer: OwnedWriteHalf,
    mut next_chunk: impl FnMut(usize) -> Vec<u8> + Send + 'static,
) -> Outcome {
    let before = server.rss_kib();
    let sending = tokio::spawn(async move {
        let mut sent = 0;
        while sent < ATTACK_BYTES {
            let chunk = next_chunk(sent);
            // A server that stopped reading leaves the write pending: that ends the attack too.
            match tokio::time::timeout(Duration::from_secs(5), writer.write_all(&chunk)).await {
                Ok(Ok(())) => sent += chunk.len(),
                _ => break,
            }
        }
        sent
    });
    let mut outcome = Outcome::default();
    let mut peak = before;
    let started = Instant::now();
    let mut sample = tokio::time::interval(Duration::from_millis(50));
    loop {
        assert!(started.elapsed() < GUARD, "the attack never ended");
        tokio::select! {
            frame = reader.next_within(GUARD) => match frame {
                None => break,
                Some(frame) if frame.opcode == OP_CLOSE => {
                    outcome.close_code = frame.close_code();
                    break;
                }
                Some(frame) => {
                    let value: Value = serde_json::from_str(&frame.text()).unwrap_or_default();
                    if value["type"] == "error" {
                        outcome.error_codes.push(value["payload"]["code"].as_str().unwrap_or_default().to_owned());
                    }
                }
            },
            _ = sample.tick() => peak = peak.max(server.rss_kib()),
        }
    }
    // After the close the server must not take in the rest: the sender stops soon.
    outcome.sent = tokio::time::timeout(GUARD, sending)
        .await
        .unwrap_or_else(|_| panic!("the server kept reading after it closed"))
        .unwrap_or_else(|e| panic!("sender: {e}"));
    peak = peak.max(server.rss_kib());
    outcome.rss_growth_kib = peak.saturating_sub(before);
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_declaring_2_pow_40_bytes_is_refused_from_its_header() {
    let (_db, server, mut reader, mut writer) = attacked_server().await;
    writer
        .write_all(&raw_ws::header(true, OP_TEXT, 1 << 40))
        .await
        .unwrap_or_else(|e| panic!("header: {e}"));
    let outcome = stream_attack(&server, &mut reader, writer, |_| vec![b'a'; CHUNK]).await;
    println!("{outcome:?}");
    assert_eq!(outcome.close_code, Some(1009), "{outcome:?}");
    assert_eq!(outcome.error_codes, ["frame_too_large"], "{outcome:?}");
    assert!(
        outcome.rss_growth_kib < RSS_BOUND_KIB,
        "the server grew by {} KiB while {} bytes were streamed",
        outcome.rss_growth_kib,
        outcome.sent
    );
    server.assert_no_panics();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragments_adding_up_past_the_limit_are_refused_with_1009() {
    let (_db, server, mut reader, writer) = attacked_server().await;
    // Legal fragments of 16 KiB each, never finished.
    let fragment = vec![b'a'; 16 * 1024];
    let outcome = stream_attack(&server, &mut reader, writer, move |sent| {
        let opcode = if sent == 0 { OP_TEXT } else { OP_CONTINUATION };
        raw_ws::frame(false, opcode, &fragment)
    })
    .await;
    println!("{outcome:?}");
    assert_eq!(outcome.close_code, Some(1009), "{outcome:?}");
    assert_eq!(outcome.error_codes, ["frame_too_large"], "{outcome:?}");
    assert!(
        outcome.rss_growth_kib < RSS_BOUND_KIB,
        "the server grew by {} KiB",
        outcome.rss_growth_kib
    );
    server.assert_no_panics();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_within_the_limit_still_work() {
    let (_db, server, mut reader, mut writer) = attacked_server().await;
    // A ping in two fragments (JSON split anywhere), then one just under the limit.
    let first = raw_ws::frame(false, OP_TEXT, br#"{"type":"#);
    let second = raw_ws::frame(true, OP_CONTINUATION, br#""ping"}"#);
    writer
        .write_all(&[first, second].concat())
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    let pong = reader.next_within(Duration::from_secs(15)).await;
    assert!(pong.is_some_and(|f| f.text().contains("pong")));
    let padded = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(60_000));
    writer
        .write_all(&raw_ws::frame(true, OP_TEXT, padded.as_bytes()))
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    let answer = reader.next_within(Duration::from_secs(15)).await;
    assert!(
        answer.is_some_and(|f| f.opcode == OP_TEXT),
        "a legal frame closed the socket"
    );
    server.assert_no_panics();
}

/// The other body path: a chunked JSON body streamed without end gets 413 JSON, and the
/// server does not buffer it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_chunked_json_body_gets_413_and_memory_stays_flat() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db).await;
    let partner = server.register("Acme").await;
    let tcp = tokio::net::TcpStream::connect(server.addr())
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let (mut read, mut write) = tcp.into_split();
    let head = format!(
        "POST /api/partner/messages HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        server.addr(),
        partner.key
    );
    let before = server.rss_kib();
    let sending = tokio::spawn(async move {
        let mut chunk = format!("{CHUNK:x}\r\n").into_bytes();
        chunk.extend(std::iter::repeat_n(b' ', CHUNK));
        chunk.extend_from_slice(b"\r\n");
        let mut sent = 0;
        let mut first = head.into_bytes();
        first.extend_from_slice(b"6\r\n{\"a\":\"\r\n");
        if write.write_all(&first).await.is_err() {
            return sent;
        }
        while sent < ATTACK_BYTES {
            match tokio::time::timeout(Duration::from_secs(5), write.write_all(&chunk)).await {
                Ok(Ok(())) => sent += CHUNK,
                _ => break,
            }
        }
        sent
    });
    let mut response = Vec::new();
    let mut peak = before;
    let started = Instant::now();
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        assert!(started.elapsed() < GUARD, "no answer");
        tokio::select! {
            read = read.read(&mut buffer) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => response.extend_from_slice(&buffer[..n]),
            },
            _ = tokio::time::sleep(Duration::from_millis(50)) => peak = peak.max(server.rss_kib()),
        }
        if complete_response(&response) {
            break;
        }
    }
    let sent = tokio::time::timeout(GUARD, sending)
        .await
        .unwrap_or_else(|_| panic!("the server kept reading the body"))
        .unwrap_or_else(|e| panic!("sender: {e}"));
    let growth = peak.max(server.rss_kib()).saturating_sub(before);
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    let body: Value = text
        .split("\r\n\r\n")
        .nth(1)
        .and_then(|body| serde_json::from_str(body).ok())
        .unwrap_or_else(|| panic!("no JSON body in {text}"));
    assert_eq!(support::error_code(&body), "payload_too_large");
    assert!(
        growth < RSS_BOUND_KIB,
        "the server grew by {growth} KiB while {sent} bytes were streamed"
    );
    server.assert_no_panics();
}

/// Whether `bytes` hold a whole HTTP response with a Content-Length body.
fn complete_response(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    head.lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .is_some_and(|length| body.len() >= length)
}

/// The close handshake: the server's reply echoes the client's code and the server then ends
/// the connection itself, as RFC 6455 asks, instead of waiting for the client to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_frame_is_answered_at_once_with_the_clients_code() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db).await;
    let partner = server.register("Acme").await;
    for code in [4001u16, 1000, 3000] {
        let url = format!("{}/ws?clientId=ann", server.base.replacen("http", "ws", 1));
        let mut request =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
                .unwrap_or_else(|e| panic!("url: {e}"));
        let bearer = format!("Bearer {}", partner.key)
            .parse()
            .unwrap_or_else(|e| panic!("header: {e}"));
        request.headers_mut().insert("authorization", bearer);
        let (mut ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        let ready = ws.next().await;
        assert!(matches!(ready, Some(Ok(Message::Text(_)))), "{ready:?}");
        ws.send(Message::Close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: "bye".into(),
        })))
        .await
        .unwrap_or_else(|e| panic!("close: {e}"));
        // The old server replied without a code and then waited out a 1 s linger for the
        // client to drop the connection first. 500 ms is generous for a reply on loopback,
        // and still half that wait: the reply and the end must both come before it.
        let wait = Duration::from_millis(500);
        let reply = tokio::time::timeout(wait, ws.next()).await;
        match reply {
            Ok(Some(Ok(Message::Close(Some(frame))))) => {
                assert_eq!(u16::from(frame.code), code, "the reply must echo the code")
            }
            other => panic!("expected a close reply with {code}, got {other:?}"),
        }
        let end = tokio::time::timeout(wait, ws.next()).await;
        assert!(
            matches!(end, Ok(None) | Ok(Some(Err(_)))),
            "the server did not end the connection after its close reply: {end:?}"
        );
    }
    server.assert_no_panics();
}
