//! A real WebSocket client (tokio-tungstenite) for the tests.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::api::Agent;
use crate::server::Server;

/// How long a test waits for a frame it expects.
pub const PATIENCE: Duration = Duration::from_secs(15);

pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The cursor of the last event frame received (or of `ready`).
    pub cursor: i64,
}

/// How a connection ended, as the client saw it.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    Closed(Option<u16>),
    Dropped,
}

/// The upgrade request for `url`, with the bearer header when given.
fn upgrade_request(url: String, bearer: Option<&str>) -> Request {
    let mut request = url
        .into_client_request()
        .unwrap_or_else(|e| panic!("bad url: {e}"));
    if let Some(token) = bearer {
        let value = format!("Bearer {token}")
            .parse()
            .unwrap_or_else(|e| panic!("bad header: {e}"));
        request.headers_mut().insert("authorization", value);
    }
    request
}

impl WsClient {
    /// Connects to `/ws?{query}`, optionally with a bearer header; `Err(status)` when the
    /// server refuses the upgrade.
    pub async fn connect(server: &Server, query: &str, bearer: Option<&str>) -> Result<Self, u16> {
        let url = format!("{}/ws?{query}", server.base.replacen("http", "ws", 1));
        match tokio_tungstenite::connect_async(upgrade_request(url, bearer)).await {
            Ok((stream, _)) => Ok(Self { stream, cursor: 0 }),
            Err(Error::Http(response)) => Err(response.status().as_u16()),
            Err(other) => panic!("websocket connect failed: {other}"),
        }
    }

    /// Like `connect`, with a tiny socket receive buffer: for playing a client that stops
    /// reading, so the server's queue for it fills quickly.
    pub async fn connect_small_buffer(server: &Server, query: &str, bearer: Option<&str>) -> Self {
        let addr: std::net::SocketAddr = server
            .base
            .trim_start_matches("http://")
            .parse()
            .unwrap_or_else(|e| panic!("server address: {e}"));
        let socket = tokio::net::TcpSocket::new_v4().unwrap_or_else(|e| panic!("socket: {e}"));
        let _ = socket.set_recv_buffer_size(4096);
        let tcp = socket
            .connect(addr)
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        let request = upgrade_request(format!("ws://{addr}/ws?{query}"), bearer);
        let (stream, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(tcp))
            .await
            .unwrap_or_else(|e| panic!("websocket connect failed: {e}"));
        Self { stream, cursor: 0 }
    }

    /// Connects and waits for `ready`; returns the client positioned after it.
    pub async fn ready(server: &Server, query: &str, bearer: Option<&str>) -> Self {
        let mut client = Self::connect(server, query, bearer)
            .await
            .unwrap_or_else(|status| panic!("upgrade refused with {status} for {query}"));
        client.expect("ready").await;
        client
    }

    /// An agent signed in with its token in the query, after `ready`.
    pub async fn agent(server: &Server, agent: &Agent) -> Self {
        Self::ready(server, &agent.ws_query(), None).await
    }

    /// A customer signed in with a session token in the query, after `ready`.
    pub async fn customer(server: &Server, customer: &str, token: &str) -> Self {
        Self::ready(server, &format!("clientId={customer}&token={token}"), None).await
    }

    pub async fn send(&mut self, frame: &Value) {
        self.stream
            .send(Message::text(frame.to_string()))
            .await
            .unwrap_or_else(|e| panic!("send: {e}"));
    }

    pub async fn send_text(&mut self, text: String) {
        self.stream
            .send(Message::text(text))
            .await
            .unwrap_or_else(|e| panic!("send: {e}"));
    }

    /// Sends without panicking when the server has already closed: whether it went out.
    pub async fn try_send(&mut self, frame: &Value) -> bool {
        self.stream
            .send(Message::text(frame.to_string()))
            .await
            .is_ok()
    }

    /// Reads until the server ends the connection; its close code and reason, if it sent them.
    /// The patience is for the whole wait: the server's pings do not extend it.
    pub async fn close_reason(&mut self) -> Option<(u16, String)> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => panic!("the server did not end the connection"),
                Ok(None) | Ok(Some(Err(_))) => return None,
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return frame.map(|f| (u16::from(f.code), f.reason.to_string()))
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// The next JSON frame, or `None` if the connection ended or `wait` passed.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        // One deadline for the whole wait: the server's pings must not restart it.
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()??;
            match message {
                Ok(Message::Text(text)) => {
                    let frame: Value = serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("non-JSON frame {text}: {e}"));
                    if let Some(cursor) = frame["cursor"].as_i64() {
                        assert!(
                            cursor > self.cursor || frame["type"] == "ready",
                            "cursor went backwards: {} after {}",
                            cursor,
                            self.cursor
                        );
                        self.cursor = cursor;
                    }
                    return Some(frame);
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    /// The next frame, which must come.
    pub async fn next(&mut self) -> Value {
        self.next_within(PATIENCE)
            .await
            .unwrap_or_else(|| panic!("no frame arrived"))
    }

    /// The next frame, which must be of type `kind`.
    pub async fn expect(&mut self, kind: &str) -> Value {
        let frame = self.next().await;
        assert_eq!(frame["type"], kind, "expected a {kind} frame, got {frame}");
        frame
    }

    /// Skips frames until one of type `kind`.
    pub async fn until(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// Proves nothing else is queued: a ping's pong must be the very next frame.
    pub async fn expect_quiet(&mut self) {
        self.send(&serde_json::json!({"type": "ping"})).await;
        let frame = self.next().await;
        assert_eq!(frame["type"], "pong", "unexpected frame {frame}");
    }

    /// Reads until the server ends the connection; how it ended.
    pub async fn ended(&mut self) -> Ended {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => panic!("the server did not end the connection"),
                Ok(None) | Ok(Some(Err(_))) => return Ended::Dropped,
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return Ended::Closed(frame.map(|f| u16::from(f.code)))
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self
            .stream
            .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            }))
            .await;
    }
}

impl WsClient {
    /// The next JSON frame, or `Err` with the close code and reason once the connection ends
    /// (`None`: it ended without a close frame). Panics if `wait` passes first.
    pub async fn frame_or_close(&mut self, wait: Duration) -> Result<Value, Option<(u16, String)>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .unwrap_or_else(|_| panic!("neither a frame nor the end within {wait:?}"));
            match message {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("non-JSON frame {text}: {e}"));
                    if let Some(cursor) = frame["cursor"].as_i64() {
                        self.cursor = cursor;
                    }
                    return Ok(frame);
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(frame.map(|f| (u16::from(f.code), f.reason.to_string())))
                }
                None | Some(Err(_)) => return Err(None),
                Some(Ok(_)) => continue,
            }
        }
    }
}
