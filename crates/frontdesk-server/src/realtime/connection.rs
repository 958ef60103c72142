//! One task per WebSocket connection: it replays what the client missed, relays live events,
//! hands the client's frames to `dispatch`, keeps the heartbeat and says goodbye.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web::{self, Bytes};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, Session};
use bytestring::ByteString;
use frontdesk_domain::event::event_frame;
use frontdesk_domain::{Cursor, Recipient, Viewer};
use futures_util::StreamExt;
use serde_json::json;

use super::frame_guard::is_too_large;
use super::hub::{Outbound, Subscription};
use super::inbound_limit::{InboundLimit, Verdict};
use super::log_throttle::LogThrottle;
use super::teardown::TcpHandle;
use super::typing_coalescer::TypingCoalescer;
use super::watch::{Due, Watch};
use crate::app;
use crate::error::ErrorCode;
use crate::state::AppState;

/// Incoming frames (after continuations are joined) are at most this large.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// A warning repeated on one connection is logged at most this often.
pub(super) const WARN_EVERY: Duration = Duration::from_secs(10);

/// Heartbeat timings; tests shorten them.
#[derive(Debug, Clone, Copy)]
pub struct Heartbeat {
    pub interval: Duration,
    pub timeout: Duration,
}

/// One client's connection, from the handshake to the goodbye.
pub(super) struct Connection {
    pub(super) subscription: Subscription,
    /// Closes the socket when its credential stops speaking.
    pub(super) watch: Watch,
    pub(super) recipient: Recipient,
    pub(super) viewer: Viewer,
    pub(super) client_id: String,
    pub(super) state: web::Data<AppState>,
    pub(super) session: Session,
    /// The cursor of the last event sent.
    pub(super) last: Cursor,
    /// The client's frames: their rate, and their typing coalesced.
    pub(super) inbound: InboundLimit,
    pub(super) typing: TypingCoalescer,
    /// Frames refused for the rate, for the log.
    pub(super) refused: LogThrottle,
    /// The TCP connection, to end it once the goodbye is written (none off plain TCP).
    pub(super) tcp: Option<TcpHandle>,
    /// Resolves once actix-http dropped the response body: the close frame is out.
    pub(super) body_dropped: tokio::sync::oneshot::Receiver<()>,
}

/// Why the loop ended, and how to say goodbye.
pub(super) enum End {
    /// The client's close frame, to echo.
    ClientClosed(Option<CloseReason>),
    /// The connection is gone already.
    Gone,
    /// A write waited past its deadline: the peer does not read and cannot take a close frame.
    Stuck,
    Close(CloseCode, &'static str),
}

/// Where a connection's stream begins.
pub(super) enum Start {
    /// After the client's `since`: what it missed is replayed first.
    Replay(Cursor),
    /// After the newest event when it connected.
    After(Cursor),
}

/// What the server writes.
enum Out {
    Text(ByteString),
    Ping,
    Pong(Bytes),
}

impl Connection {
    pub(super) async fn run(mut self, mut stream: AggregatedMessageStream, start: Start) {
        // The task's future is as large as its largest state, and an idle connection spends
        // its life waiting in `serve`: the one-off catch-up, the handling of a client frame
        // (which holds a whole store call), a write (with its deadline's timer) and the
        // goodbye live on the heap only while they run (this future went from 4,952 to about
        // 1,200 bytes; the flow limits' state brought it to about 2,000).
        let end = match Box::pin(self.catch_up(start)).await {
            Ok(()) => self.serve(&mut stream).await,
            Err(end) => end,
        };
        let reason = match end {
            End::Gone | End::Stuck => {
                if let Some(tcp) = &self.tcp {
                    tcp.abort();
                }
                return;
            }
            // RFC 6455, 5.5.1: the reply echoes the client's status code, at once.
            End::ClientClosed(reason) => reason.map(|reason| CloseReason {
                code: reason.code,
                description: None,
            }),
            End::Close(code, why) => Some(CloseReason {
                code,
                description: Some(why.to_owned()),
            }),
        };
        Box::pin(self.goodbye(reason)).await;
    }

    /// Writes the close frame and ends the TCP connection right after it (an RFC 6455 client
    /// waits for the server to close first). A client that stopped reading cannot take a
    /// close frame either: past a short deadline its connection is reset instead.
    async fn goodbye(self, reason: Option<CloseReason>) {
        let deadline = self.state.flow.goodbye();
        let closed = tokio::time::timeout(deadline, self.session.close(reason)).await;
        let written = matches!(closed, Ok(Ok(())))
            && tokio::time::timeout(deadline, self.body_dropped)
                .await
                .is_ok();
        match &self.tcp {
            Some(tcp) if written => tcp.finish(),
            Some(tcp) => tcp.abort(),
            None => {}
        }
    }

    /// Replays events after `since` (the hub is already queueing live ones), then `ready`.
    async fn catch_up(&mut self, start: Start) -> Result<(), End> {
        let unavailable = |_| End::Close(CloseCode::Error, "event log unavailable");
        match start {
            Start::Replay(since) => {
                self.last = since;
                loop {
                    let (page, more) = app::events::replay(&self.state, &self.recipient, self.last)
                        .await
                        .map_err(unavailable)?;
                    for event in &page {
                        self.send(event_frame(&event.kind, &event.payload, event.id))
                            .await?;
                        self.last = event.id;
                    }
                    if !more {
                        break;
                    }
                }
            }
            // Queued events up to it are from before the client connected.
            Start::After(now) => self.last = now,
        }
        let ready =
            json!({"type": "ready", "payload": {"clientId": self.client_id}, "cursor": self.last});
        self.send(ready.to_string()).await
    }

    async fn serve(&mut self, stream: &mut AggregatedMessageStream) -> End {
        let mut heartbeat = tokio::time::interval(self.state.heartbeat.interval);
        heartbeat.tick().await;
        let mut last_heard = Instant::now();
        let kill = Arc::clone(&self.subscription.kill);
        loop {
            let step = tokio::select! {
                biased;
                _ = kill.notified() => Err(End::Close(CloseCode::Policy, "too slow: reconnect with since")),
                due = self.watch.due() => Box::pin(self.settle(due)).await,
                outbound = self.subscription.rx.recv() => self.deliver(outbound).await,
                incoming = stream.next() => {
                    last_heard = Instant::now();
                    self.receive(incoming).await
                }
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > self.state.heartbeat.timeout {
                        tracing::info!(client = %self.client_id, "no heartbeat; dropping connection");
                        Err(End::Close(CloseCode::Away, "no heartbeat"))
                    } else {
                        self.write(Out::Ping).await
                    }
                }
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    /// Logout, key rotation or expiry ends the socket with 1008.
    async fn settle(&mut self, due: Due) -> Result<(), End> {
        self.watch
            .settle(due, &self.state)
            .await
            .map_err(|why| End::Close(CloseCode::Policy, why))
    }

    async fn deliver(&mut self, outbound: Option<Outbound>) -> Result<(), End> {
        match outbound {
            Some(Outbound::Frame(frame)) => match frame.cursor {
                // Replay may already have sent it.
                Some(cursor) if cursor <= self.last => Ok(()),
                Some(cursor) => {
                    self.send(frame.text.clone()).await?;
                    self.last = cursor;
                    Ok(())
                }
                None => self.send(frame.text.clone()).await,
            },
            Some(Outbound::Shutdown) | None => {
                Err(End::Close(CloseCode::Away, "server shutting down"))
            }
        }
    }

    async fn receive(
        &mut self,
        incoming: Option<Result<AggregatedMessage, actix_ws::ProtocolError>>,
    ) -> Result<(), End> {
        let message = match incoming {
            None => return Err(End::Gone),
            Some(Ok(AggregatedMessage::Close(reason))) => return Err(End::ClientClosed(reason)),
            Some(Ok(message)) => message,
            Some(Err(error)) => return Err(self.refuse_stream(&error).await),
        };
        // Every frame but the close costs a token, pings and pongs included.
        match self.inbound.check(Instant::now()) {
            Verdict::Accept => {}
            Verdict::Refuse { tell } => {
                if let Some(count) = self.refused.hit(Instant::now()) {
                    tracing::info!(client = %self.client_id, refused = count, "inbound frames over the rate limit refused");
                }
                if tell {
                    let why = "too many frames: this one and those until you slow down are dropped";
                    return self.error(ErrorCode::RateLimited, why, None).await;
                }
                return Ok(());
            }
            Verdict::Disconnect => {
                tracing::info!(client = %self.client_id, refused = self.refused.unlogged(), "still flooding after rate_limited; disconnecting");
                return Err(End::Close(CloseCode::Policy, "rate limit exceeded"));
            }
        }
        match message {
            AggregatedMessage::Text(text) => Box::pin(self.handle(&text)).await,
            AggregatedMessage::Binary(_) => {
                self.error(ErrorCode::MalformedFrame, "frames are JSON text", None)
                    .await
            }
            AggregatedMessage::Ping(bytes) => self.write(Out::Pong(bytes)).await,
            AggregatedMessage::Pong(_) | AggregatedMessage::Close(_) => Ok(()),
        }
    }

    /// How a failed stream ends the connection: 1009 for an oversized frame (refused from
    /// its header by the frame guard, or by actix itself), 1002 for anything else. Nothing
    /// more is read either way.
    async fn refuse_stream(&mut self, error: &actix_ws::ProtocolError) -> End {
        let too_large = match error {
            actix_ws::ProtocolError::Overflow => true,
            actix_ws::ProtocolError::Io(error) => is_too_large(error),
            _ => false,
        };
        if !too_large {
            return End::Close(CloseCode::Protocol, "protocol error");
        }
        tracing::info!(client = %self.client_id, "frame over the size limit; closing with 1009");
        let _ = self
            .error(
                ErrorCode::FrameTooLarge,
                "frames are limited to 64 KiB",
                None,
            )
            .await;
        End::Close(CloseCode::Size, "frame too large")
    }

    pub(super) async fn send(&mut self, frame: impl Into<ByteString>) -> Result<(), End> {
        self.write(Out::Text(frame.into())).await
    }

    /// Writes one frame, within the write deadline. A client that stops reading blocks the
    /// write once the buffers before it are full: past the deadline it counts as gone (its
    /// connection is reset). The hub's kill signal (its queue filled) and the server's stop
    /// end the wait sooner.
    async fn write(&mut self, out: Out) -> Result<(), End> {
        // On the heap while it runs: an idle connection's task does not carry its timer.
        Box::pin(self.write_within_deadline(out)).await
    }

    async fn write_within_deadline(&mut self, out: Out) -> Result<(), End> {
        let kill = Arc::clone(&self.subscription.kill);
        let hub = Arc::clone(&self.state.hub);
        let deadline = self.state.flow.write_timeout;
        let session = &mut self.session;
        let write = async move {
            match out {
                Out::Text(text) => session.text(text).await,
                Out::Ping => session.ping(b"").await,
                Out::Pong(bytes) => session.pong(&bytes).await,
            }
        };
        tokio::select! {
            biased;
            _ = kill.notified() => Err(End::Close(CloseCode::Policy, "too slow: reconnect with since")),
            _ = hub.stopping() => Err(End::Close(CloseCode::Away, "server shutting down")),
            written = tokio::time::timeout(deadline, write) => match written {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) => Err(End::Gone),
                Err(_) => {
                    tracing::info!(client = %self.client_id, "a write waited past its deadline; disconnecting");
                    Err(End::Stuck)
                }
            },
        }
    }
}
