//! `GET /ws?clientId=…[&token=…][&since=<cursor>]`: authentication at the handshake, then one
//! task per connection that replays what the client missed, relays live events, answers the
//! client's frames and keeps the heartbeat.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, Session};
use bytestring::ByteString;
use frontdesk_domain::credentials::prefix;
use frontdesk_domain::event::{event_frame, plain_frame};
use frontdesk_domain::inbound::{parse_client_id, ClientFrame, ClientId};
use frontdesk_domain::{Recipient, Viewer};
use frontdesk_store::{Store, TypingSignal};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::credential::{Credential, Due, Kind, Watch};
use super::flow::Flow;
use super::frame_guard::{self, is_too_large};
use super::hub::{Hub, Outbound, Subscription};
use super::inbound_limit::{InboundLimit, Verdict};
use super::log_throttle::LogThrottle;
use super::teardown::{BodyWatch, TcpHandle};
use super::typing_coalescer::TypingCoalescer;
use crate::auth::bearer;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// Incoming frames (after continuations are joined) are at most this large.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Events replayed per query while catching up.
const REPLAY_PAGE: i64 = 500;
/// A warning repeated on one connection is logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Heartbeat timings; tests shorten them.
#[derive(Debug, Clone, Copy)]
pub struct Heartbeat {
    pub interval: Duration,
    pub timeout: Duration,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WsQuery {
    client_id: Option<String>,
    token: Option<String>,
    since: Option<i64>,
}

/// The handshake: 401 without an upgrade unless the credentials speak for `clientId`, 400 for
/// a `since` the log has not reached, 429 when a connection cap is met.
pub async fn connect(
    request: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    query: web::Query<WsQuery>,
) -> Result<HttpResponse, ApiError> {
    let client_id = query
        .client_id
        .as_deref()
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidQuery, "clientId is required"))?;
    if query.since.is_some_and(|since| since < 0) {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            "since must be a cursor, 0 or more",
        ));
    }
    let (recipient, credential) =
        authenticate(&request, &state.store, client_id, query.token.as_deref()).await?;
    if let Some(since) = query.since {
        // A cursor from the future (another database, a typo) would silently skip every live
        // event up to it: refuse it while the client can still be told.
        let newest = state.store.latest_event_id().await?;
        if since > newest {
            return Err(ApiError::new(
                ErrorCode::InvalidQuery,
                format!("since is beyond the newest cursor ({newest}); reconnect without since"),
            ));
        }
    }
    // Oversized frames are refused from their header, before anything is buffered.
    let body = frame_guard::guarded(&request, body, MAX_FRAME_BYTES)
        .await
        .map_err(|e| ApiError::new(ErrorCode::NotAWebsocket, e.to_string()))?;
    // Registered before the upgrade, so a refusal is a plain 429 and the cap holds at once.
    let subscription = state
        .hub
        .subscribe(recipient.clone(), credential.hash.clone())?;
    let watch = Watch::new(
        credential,
        Arc::clone(&subscription.revoked),
        state.ws_recheck,
    );
    let (response, session, stream) = actix_ws::handle(&request, body)
        .map_err(|e| ApiError::new(ErrorCode::NotAWebsocket, e.to_string()))?;
    let (response, body_dropped) = BodyWatch::wrap(response);
    let now = Instant::now();
    let stream = stream
        .max_frame_size(MAX_FRAME_BYTES)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME_BYTES);
    let connection = Connection {
        subscription,
        watch,
        viewer: match &recipient {
            Recipient::Customer(partner, customer) => Viewer::Customer(*partner, customer.clone()),
            Recipient::Agent(agent) => Viewer::Agent(*agent),
        },
        recipient,
        client_id: client_id.to_owned(),
        store: state.store.clone(),
        hub: Arc::clone(&state.hub),
        heartbeat: state.heartbeat,
        flow: state.flow,
        session,
        last: 0,
        inbound: InboundLimit::new(state.flow.rate, state.flow.burst, now),
        typing: TypingCoalescer::new(state.flow.typing_interval),
        refused: LogThrottle::new(WARN_EVERY),
        tcp: request.conn_data::<TcpHandle>().cloned(),
        body_dropped,
    };
    actix_web::rt::spawn(connection.run(stream, query.since));
    Ok(response)
}

async fn authenticate(
    request: &HttpRequest,
    store: &Store,
    client_id: &str,
    query_token: Option<&str>,
) -> Result<(Recipient, Credential), ApiError> {
    let unauthorized = |message: &str| ApiError::new(ErrorCode::InvalidCredentials, message);
    let header_token = bearer(request)?;
    let token = match (query_token, &header_token) {
        (Some(token), _) => token.to_owned(),
        (None, Some(token)) => token.expose().to_owned(),
        (None, None) => {
            return Err(ApiError::new(
                ErrorCode::MissingCredentials,
                "add ?token=<session token> or send Authorization: Bearer <API key>",
            ))
        }
    };
    let hash = frontdesk_domain::Secret::presented(&token).hash();
    let credential = |kind, expires_at| Credential {
        kind,
        hash: hash.clone(),
        expires_at,
    };
    let wanted = parse_client_id(client_id);
    if token.starts_with(prefix::CUSTOMER_SESSION) {
        let session = store
            .customer_session(&hash)
            .await?
            .ok_or_else(|| unauthorized("the session token is unknown or expired"))?;
        return match wanted {
            ClientId::Customer(customer) if customer == session.customer => Ok((
                Recipient::Customer(session.partner, customer),
                credential(Kind::CustomerSession, Some(session.expires_at)),
            )),
            _ => Err(unauthorized("this token is for another clientId")),
        };
    }
    if token.starts_with(prefix::AGENT_SESSION) {
        let (agent, expires_at) = store
            .agent_session(&hash)
            .await?
            .ok_or_else(|| unauthorized("the agent token is unknown or expired"))?;
        return match wanted {
            ClientId::Agent(id) if id == agent.id => Ok((
                Recipient::Agent(id),
                credential(Kind::AgentSession, Some(expires_at)),
            )),
            _ => Err(unauthorized("this token is for another clientId")),
        };
    }
    if query_token.is_some() {
        // A URL ends up in logs and browser history; an API key must never travel in one.
        return Err(unauthorized(
            "send a partner API key in the Authorization header, not in the URL",
        ));
    }
    let partner = store
        .partner_by_key(&hash)
        .await?
        .ok_or_else(|| unauthorized("the API key is unknown"))?;
    match wanted {
        ClientId::Customer(customer) => Ok((
            Recipient::Customer(partner.id, customer),
            credential(Kind::PartnerKey, None),
        )),
        _ => Err(unauthorized(
            "with an API key, clientId is one of your customer ids",
        )),
    }
}

struct Connection {
    subscription: Subscription,
    /// Closes the socket when its credential stops speaking.
    watch: Watch,
    recipient: Recipient,
    viewer: Viewer,
    client_id: String,
    store: Store,
    hub: Arc<Hub>,
    heartbeat: Heartbeat,
    flow: Flow,
    session: Session,
    /// The cursor of the last event sent.
    last: i64,
    /// The client's frames: their rate, and their typing coalesced.
    inbound: InboundLimit,
    typing: TypingCoalescer,
    /// Frames refused for the rate, for the log.
    refused: LogThrottle,
    /// The TCP connection, to end it once the goodbye is written (none off plain TCP).
    tcp: Option<TcpHandle>,
    /// Resolves once actix-http dropped the response body: the close frame is out.
    body_dropped: tokio::sync::oneshot::Receiver<()>,
}

/// Why the loop ended, and how to say goodbye.
enum End {
    /// The client's close frame, to echo.
    ClientClosed(Option<CloseReason>),
    /// The connection is gone already.
    Gone,
    /// A write waited past its deadline: the peer does not read and cannot take a close frame.
    Stuck,
    Close(CloseCode, &'static str),
}

/// What the server writes.
enum Out {
    Text(ByteString),
    Ping,
    Pong(Bytes),
}

impl Connection {
    async fn run(mut self, mut stream: AggregatedMessageStream, since: Option<i64>) {
        // The task's future is as large as its largest state, and an idle connection spends
        // its life waiting in `serve`: the one-off catch-up, the handling of a client frame
        // (which holds a whole store call), a write (with its deadline's timer) and the
        // goodbye live on the heap only while they run (this future went from 4,952 to about
        // 1,200 bytes; the flow limits' state brought it to about 2,000).
        let end = match Box::pin(self.catch_up(since)).await {
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
        let deadline = self.flow.goodbye();
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
    async fn catch_up(&mut self, since: Option<i64>) -> Result<(), End> {
        match since {
            Some(since) => {
                self.last = since;
                loop {
                    let page = self
                        .store
                        .events_for(&self.recipient, self.last, REPLAY_PAGE)
                        .await
                        .map_err(|_| End::Close(CloseCode::Error, "event log unavailable"))?;
                    for event in &page {
                        self.send(event_frame(&event.kind, &event.payload, event.id))
                            .await?;
                        self.last = event.id;
                    }
                    if (page.len() as i64) < REPLAY_PAGE {
                        break;
                    }
                }
            }
            None => {
                self.last = self
                    .store
                    .latest_event_id()
                    .await
                    .map_err(|_| End::Close(CloseCode::Error, "event log unavailable"))?;
            }
        }
        let ready =
            json!({"type": "ready", "payload": {"clientId": self.client_id}, "cursor": self.last});
        self.send(ready.to_string()).await
    }

    async fn serve(&mut self, stream: &mut AggregatedMessageStream) -> End {
        let mut heartbeat = tokio::time::interval(self.heartbeat.interval);
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
                    if last_heard.elapsed() > self.heartbeat.timeout {
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
            .settle(due, &self.store)
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

    /// One client frame. Rejections become `error` frames; the socket stays open.
    async fn handle(&mut self, text: &str) -> Result<(), End> {
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => frame,
            Err(error) => {
                return self
                    .error(ErrorCode::MalformedFrame, &error.to_string(), None)
                    .await
            }
        };
        match frame {
            ClientFrame::Ping => self.send(plain_frame("pong", &json!({}))).await,
            ClientFrame::Message(message) => {
                let client_message_id = message.client_message_id.clone();
                let outcome = match message.into_draft(&self.recipient) {
                    Ok(draft) => self
                        .store
                        .append_message(&self.viewer, &draft)
                        .await
                        .map_err(ApiError::from),
                    Err(rule) => Err(ApiError::from(rule)),
                };
                match outcome {
                    Ok(appended) => {
                        self.typing.message_sent(appended.message.conversation_id);
                        let ack = Ack {
                            client_message_id,
                            message: &appended.message,
                        };
                        self.send(plain_frame("ack", &ack)).await
                    }
                    Err(error) => self.api_error(&error, client_message_id).await,
                }
            }
            ClientFrame::Typing(mut typing) => {
                // Repeats are dropped silently: the peer's indicator already shows them.
                if !self
                    .typing
                    .admit(typing.conversation_id, typing.is_typing, Instant::now())
                {
                    return Ok(());
                }
                typing.is_agent = matches!(self.recipient, Recipient::Agent(_));
                let origin = self.hub.origin(self.subscription.id);
                let outcome = match self
                    .store
                    .conversation(&self.viewer, typing.conversation_id)
                    .await
                {
                    Ok(conversation) => match self.viewer.check_activity(&conversation) {
                        Ok(()) => {
                            let audience = frontdesk_domain::Audience::conversation(&conversation);
                            self.store
                                .publish_typing(TypingSignal::new(origin, &audience, typing))
                                .await
                        }
                        Err(rule) => Err(rule.into()),
                    },
                    Err(error) => Err(error),
                };
                match outcome {
                    Ok(()) => Ok(()),
                    Err(error) => self.api_error(&error.into(), None).await,
                }
            }
            ClientFrame::Read(read) => {
                match self
                    .store
                    .mark_read(&self.viewer, read.conversation_id, read.message_id)
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(error) => self.api_error(&error.into(), None).await,
                }
            }
        }
    }

    async fn api_error(
        &mut self,
        error: &ApiError,
        client_message_id: Option<String>,
    ) -> Result<(), End> {
        self.error(error.code, &error.message, client_message_id)
            .await
    }

    async fn error(
        &mut self,
        code: ErrorCode,
        message: &str,
        client_message_id: Option<String>,
    ) -> Result<(), End> {
        let payload = ErrorPayload {
            code: code.as_str(),
            message,
            client_message_id,
        };
        self.send(plain_frame("error", &payload)).await
    }

    async fn send(&mut self, frame: impl Into<ByteString>) -> Result<(), End> {
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
        let hub = Arc::clone(&self.hub);
        let deadline = self.flow.write_timeout;
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Ack<'a> {
    client_message_id: Option<String>,
    message: &'a frontdesk_domain::Message,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorPayload<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_message_id: Option<String>,
}
