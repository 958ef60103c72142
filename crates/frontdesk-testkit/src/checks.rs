//! Small checks on what the API answers, and clients that play several addresses.

use serde_json::Value;

use crate::db::{Backend, TestDb};
use crate::server::{Partner, Server};

/// A fresh database and server on `backend`, with partner "Acme" and one conversation for `customer`.
pub async fn start_with_conversation(
    backend: Backend,
    customer: &str,
) -> (TestDb, Server, Partner, i64) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let partner = server.register("Acme").await;
    let conversation = server.conversation(&partner, customer).await;
    (db, server, partner, conversation)
}

/// `2023-01-01T00:00:00.000Z`: ISO-8601, UTC, milliseconds.
pub fn assert_timestamp(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"));
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 24
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            10 => *b == b'T',
            13 | 16 => *b == b':',
            19 => *b == b'.',
            23 => *b == b'Z',
            _ => b.is_ascii_digit(),
        });
    assert!(
        shape_ok,
        "timestamp not in 2023-01-01T00:00:00.000Z form: {text}"
    );
}

/// The keys of a JSON object, sorted.
pub fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

/// A client whose connections come from `ip`, a new connection per request: how tests play
/// several client addresses (the whole of 127.0.0.0/8 reaches a server on 127.0.0.1).
pub fn client_from(ip: &str) -> reqwest::Client {
    let ip: std::net::IpAddr = ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}"));
    reqwest::Client::builder()
        .local_address(ip)
        .pool_max_idle_per_host(0)
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap_or_else(|e| panic!("client from {ip}: {e}"))
}

/// A response's `Retry-After`, in seconds.
pub fn retry_after(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Asserts the JSON error shape and returns its code.
/// A response header as text, empty when missing or not text.
pub fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

pub fn error_code(body: &Value) -> String {
    let error = &body["error"];
    assert!(error["message"].is_string(), "no error.message in {body}");
    error["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.code in {body}"))
        .to_owned()
}

/// The server's own shutdown lines, in order: it began stopping, then it stopped (actix's
/// "accept thread stopped" is not the server saying it is done).
pub fn assert_stopped_in_order(log: &str) {
    let lines: Vec<&str> = log.lines().collect();
    let stopping = lines
        .iter()
        .position(|l| l.ends_with(": stopping: closing WebSockets, finishing in-flight requests"))
        .unwrap_or_else(|| panic!("no shutdown line in the log:\n{log}"));
    let stopped = lines
        .iter()
        .rposition(|l| l.trim_end().ends_with(": stopped"))
        .unwrap_or_else(|| panic!("no \"stopped\" line in the log:\n{log}"));
    assert!(stopped > stopping, "\"stopped\" before stopping:\n{log}");
}
