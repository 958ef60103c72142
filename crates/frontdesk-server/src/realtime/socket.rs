//! `GET /ws?clientId=…[&token=…][&since=<cursor>]`: authentication at the handshake, then one
//! task per connection that replays what the client missed, relays live events, answers the
//! client's frames and keeps the heartbeat.

use std::sync::Arc;
use std::time::{Duration, Instant};

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
use super::hub::{Hub, Outbound, Subscription};
use crate::auth::bearer;
use crate::error::ApiError;
use crate::state::AppState;

/// Incoming frames (after continuations are joined) are at most this large.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Events replayed per query while catching up.
const REPLAY_PAGE: i64 = 500;

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
        .ok_or_else(|| ApiError::bad_request("invalid_query", "clientId is required"))?;
    if query.since.is_some_and(|since| since < 0) {
        return Err(ApiError::bad_request(
            "invalid_query",
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
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("since is beyond the newest cursor ({newest}); reconnect without since"),
            ));
        }
    }
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
        .map_err(|e| ApiError::bad_request("not_a_websocket", e.to_string()))?;
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
        session,
        last: 0,
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
    let unauthorized = |message: &str| ApiError::unauthorized("invalid_credentials", message);
    let header_token = bearer(request)?;
    let token = match (query_token, &header_token) {
        (Some(token), _) => token.to_owned(),
        (None, Some(token)) => token.expose().to_owned(),
        (None, None) => {
            return Err(ApiError::unauthorized(
                "missing_credentials",
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
    session: Session,
    /// The cursor of the last event sent.
    last: i64,
}

/// Why the loop ended, and how to say goodbye.
enum End {
    ClientClosed,
    Gone,
    Close(CloseCode, &'static str),
}

impl Connection {
    async fn run(mut self, mut stream: AggregatedMessageStream, since: Option<i64>) {
        // The task's future is as large as its largest state, and an idle connection spends
        // its life waiting in `serve`: the one-off catch-up and the handling of a client frame
        // (which holds a whole store call) live on the heap only while they run (this future
        // went from 4,952 to about 1,200 bytes).
        let end = match Box::pin(self.catch_up(since)).await {
            Ok(()) => self.serve(&mut stream).await,
            Err(end) => end,
        };
        let reason = match end {
            End::Gone => return,
            End::ClientClosed => None,
            End::Close(code, why) => Some(CloseReason {
                code,
                description: Some(why.to_owned()),
            }),
        };
        // A client that stopped reading cannot take a close frame either: do not wait on it.
        let close = tokio::time::timeout(Duration::from_secs(1), self.session.close(reason));
        let _ = Box::pin(close).await;
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
                        self.session.ping(b"").await.map_err(|_| End::Gone)
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
        match incoming {
            None => Err(End::Gone),
            Some(Ok(AggregatedMessage::Text(text))) => Box::pin(self.handle(&text)).await,
            Some(Ok(AggregatedMessage::Binary(_))) => {
                self.error("malformed_frame", "frames are JSON text", None)
                    .await
            }
            Some(Ok(AggregatedMessage::Ping(bytes))) => {
                self.session.pong(&bytes).await.map_err(|_| End::Gone)
            }
            Some(Ok(AggregatedMessage::Pong(_))) => Ok(()),
            Some(Ok(AggregatedMessage::Close(_))) => Err(End::ClientClosed),
            Some(Err(actix_ws::ProtocolError::Overflow)) => {
                let _ = self
                    .error("frame_too_large", "frames are limited to 64 KiB", None)
                    .await;
                Err(End::Close(CloseCode::Size, "frame too large"))
            }
            Some(Err(_)) => Err(End::Close(CloseCode::Protocol, "protocol error")),
        }
    }

    /// One client frame. Rejections become `error` frames; the socket stays open.
    async fn handle(&mut self, text: &str) -> Result<(), End> {
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => frame,
            Err(error) => {
                return self
                    .error("malformed_frame", &error.to_string(), None)
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
        code: &str,
        message: &str,
        client_message_id: Option<String>,
    ) -> Result<(), End> {
        let payload = ErrorPayload {
            code,
            message,
            client_message_id,
        };
        self.send(plain_frame("error", &payload)).await
    }

    /// Writes one frame. A client that stops reading blocks this; the hub's kill signal, raised
    /// when the queue behind it fills, ends the wait.
    async fn send(&mut self, frame: impl Into<ByteString>) -> Result<(), End> {
        let kill = Arc::clone(&self.subscription.kill);
        tokio::select! {
            sent = self.session.text(frame) => sent.map_err(|_| End::Gone),
            _ = kill.notified() => Err(End::Close(CloseCode::Policy, "too slow: reconnect with since")),
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
