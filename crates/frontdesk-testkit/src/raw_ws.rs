//! A WebSocket client over a bare TCP stream, with the upgrade done by hand: for sending what
//! no well-behaved client library would (a header declaring 2^40 bytes, endless fragments).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::server::Server;

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_CLOSE: u8 = 0x8;

/// Upgrades a fresh connection to `/ws?{query}` (with a bearer header when given) and
/// returns its halves, positioned after the 101 response.
pub async fn upgrade(
    server: &Server,
    query: &str,
    bearer: Option<&str>,
) -> (RawReader, OwnedWriteHalf) {
    let mut tcp = TcpStream::connect(server.addr())
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let auth = bearer
        .map(|token| format!("Authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "GET /ws?{query} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{auth}\r\n",
        server.addr()
    );
    tcp.write_all(request.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("upgrade request: {e}"));
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let read = tcp
            .read(&mut byte)
            .await
            .unwrap_or_else(|e| panic!("upgrade response: {e}"));
        assert!(read == 1, "connection closed during the upgrade");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "no upgrade: {head}");
    let (read, write) = tcp.into_split();
    (
        RawReader {
            read,
            buffer: Vec::new(),
        },
        write,
    )
}

/// A masked client frame header; the mask is all zeros, so the payload goes as it is.
pub fn header(fin: bool, opcode: u8, length: u64) -> Vec<u8> {
    let mut frame = vec![if fin { 0x80 } else { 0 } | opcode];
    match length {
        0..=125 => frame.push(0x80 | length as u8),
        126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(length as u16).to_be_bytes());
        }
        _ => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&length.to_be_bytes());
        }
    }
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame
}

/// A whole masked frame.
pub fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = header(fin, opcode, payload.len() as u64);
    frame.extend_from_slice(payload);
    frame
}

/// A server frame.
#[derive(Debug)]
pub struct ServerFrame {
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl ServerFrame {
    /// A close frame's status code.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == OP_CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

pub struct RawReader {
    read: OwnedReadHalf,
    buffer: Vec<u8>,
}

impl RawReader {
    /// The next server frame; `None` when the connection ends (or fails) or `wait` passes.
    pub async fn next_within(&mut self, wait: Duration) -> Option<ServerFrame> {
        tokio::time::timeout(wait, self.next()).await.ok()?
    }

    async fn next(&mut self) -> Option<ServerFrame> {
        loop {
            if let Some((frame, used)) = parse(&self.buffer) {
                self.buffer.drain(..used);
                return Some(frame);
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.read.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// An unmasked server frame at the start of `bytes`, and its size.
fn parse(bytes: &[u8]) -> Option<(ServerFrame, usize)> {
    let second = *bytes.get(1)?;
    let (length, start) = match second & 0x7f {
        126 => (
            u64::from(u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?])),
            4,
        ),
        127 => {
            let raw: [u8; 8] = bytes.get(2..10)?.try_into().ok()?;
            (u64::from_be_bytes(raw), 10)
        }
        short => (u64::from(short), 2),
    };
    let end = start + usize::try_from(length).ok()?;
    let payload = bytes.get(start..end)?.to_vec();
    Some((
        ServerFrame {
            opcode: bytes[0] & 0x0f,
            payload,
        },
        end,
    ))
}
