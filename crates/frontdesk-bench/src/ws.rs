//! WebSocket clients (tokio-tungstenite) bound to chosen loopback source addresses, and the
//! frames the scenarios read.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{anyhow, Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

pub type Ws = WebSocketStream<TcpStream>;

/// Source addresses 127.0.0.2 ..= 127.0.0.250: each has its own ~28,000 ephemeral ports, so
/// 50,000 connections to one server port never run out (127.0.0.1 is left to the server).
pub fn source_ip(index: usize) -> IpAddr {
    let last = 2 + (index % 249) as u8;
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// Connects to `ws://addr{path_and_query}` from `source` (any port), with an optional bearer
/// header. `lean` shrinks the read buffer from 128 KiB to 4 KiB: idle clients by the ten
/// thousand would otherwise cost the load generator gigabytes.
pub async fn connect(
    addr: SocketAddr,
    source: Option<IpAddr>,
    path_and_query: &str,
    bearer: Option<&str>,
    lean: bool,
) -> Result<Ws> {
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = source {
        socket
            .bind(SocketAddr::new(ip, 0))
            .with_context(|| format!("binding {ip}"))?;
    }
    let tcp = socket
        .connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    tcp.set_nodelay(true)?;
    let mut request = format!("ws://{addr}{path_and_query}").into_client_request()?;
    if let Some(token) = bearer {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
    }
    let config = if lean {
        WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0)
    } else {
        WebSocketConfig::default().write_buffer_size(0)
    };
    let (stream, _) = tokio_tungstenite::client_async_with_config(request, tcp, Some(config))
        .await
        .map_err(|error| match error {
            tungstenite::Error::Http(response) => {
                anyhow!("upgrade refused with {}", response.status())
            }
            other => anyhow!(other).context("WebSocket handshake"),
        })?;
    Ok(stream)
}

/// A server frame, parsed.
pub struct Frame {
    pub kind: String,
    pub cursor: Option<i64>,
    pub payload: Value,
}

impl Frame {
    pub fn parse(text: &str) -> Result<Self> {
        let mut value: Value = serde_json::from_str(text).context("non-JSON frame")?;
        Ok(Self {
            kind: value["type"].as_str().unwrap_or_default().to_owned(),
            cursor: value["cursor"].as_i64(),
            payload: value["payload"].take(),
        })
    }
}

/// What the next read gave.
pub enum Read {
    Frame(Frame),
    /// A heartbeat from the server (tungstenite queues the pong itself and sends it on the
    /// next read or write).
    Ping,
    /// Closed by the server (with its code) or dropped.
    Ended(String),
}

/// Reads until a text frame, a ping or the end.
pub async fn read(ws: &mut (impl StreamExt<Item = tungstenite::Result<Message>> + Unpin)) -> Read {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                return match Frame::parse(&text) {
                    Ok(frame) => Read::Frame(frame),
                    Err(error) => Read::Ended(format!("{error:#}")),
                }
            }
            Some(Ok(Message::Ping(_))) => return Read::Ping,
            Some(Ok(Message::Close(frame))) => {
                return Read::Ended(format!(
                    "closed by the server: {}",
                    frame.map(|f| f.to_string()).unwrap_or_default()
                ))
            }
            Some(Ok(_)) => continue,
            Some(Err(error)) => return Read::Ended(error.to_string()),
            None => return Read::Ended("connection dropped".to_owned()),
        }
    }
}

/// Reads until a frame of type `kind` (skipping others); an error if the connection ends.
pub async fn until(ws: &mut Ws, kind: &str) -> Result<Frame> {
    loop {
        match read(ws).await {
            Read::Frame(frame) if frame.kind == kind => return Ok(frame),
            Read::Frame(frame) if frame.kind == "error" => {
                return Err(anyhow!(
                    "error frame while waiting for {kind}: {}",
                    frame.payload
                ))
            }
            Read::Frame(_) | Read::Ping => continue,
            Read::Ended(why) => return Err(anyhow!("while waiting for {kind}: {why}")),
        }
    }
}

/// Sends one text frame.
pub async fn send(
    sink: &mut (impl SinkExt<Message, Error = tungstenite::Error> + Unpin),
    text: String,
) -> Result<()> {
    sink.send(Message::text(text))
        .await
        .context("sending a frame")
}

/// A customer's `message` frame carrying a timing stamp.
pub fn message_frame(conversation: i64, content: &str, client_message_id: &str) -> String {
    serde_json::json!({
        "type": "message",
        "payload": {
            "conversationId": conversation,
            "content": content,
            "clientMessageId": client_message_id,
        }
    })
    .to_string()
}
