//! `GET /ws?clientId=…[&token=…][&since=<cursor>]`: the handshake. The credential is
//! authenticated (by `app::identity`, as for HTTP) and must speak for `clientId`; then the
//! connection is registered with the hub and its task started.

use std::sync::Arc;
use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_domain::{Cursor, Recipient, Secret};
use serde::Deserialize;

use super::connection::{Connection, Start, MAX_FRAME_BYTES};
use super::frame_guard;
use super::inbound_limit::InboundLimit;
use super::log_throttle::LogThrottle;
use super::teardown::{BodyWatch, TcpHandle};
use super::typing_coalescer::TypingCoalescer;
use super::watch::Watch;
use crate::app;
use crate::app::identity::Credential;
use crate::auth::bearer;
use crate::browser::foreign_page;
use crate::client_ip::client_ip;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WsQuery {
    client_id: Option<String>,
    token: Option<String>,
    since: Option<Cursor>,
}

/// 401 without an upgrade unless the credentials speak for `clientId`, 400 for a `since` the
/// log has not reached, 429 when a connection cap is met.
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
    if query.since.is_some_and(|since| since.0 < 0) {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            "since must be a cursor, 0 or more",
        ));
    }
    let (recipient, credential) =
        authenticate(&request, &state, client_id, query.token.as_deref()).await?;
    if let Some(since) = query.since {
        app::events::check_since(&state, since).await?;
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
    // Without `since` the client hears what commits from now on. "Now" is read before the
    // upgrade is answered (and after the registration, so nothing later is missed): an event
    // that commits after the client saw its 101 is never mistaken for one from before.
    let start = match query.since {
        Some(since) => Start::Replay(since),
        None => Start::After(app::events::newest(&state).await?),
    };
    let (response, session, stream) = actix_ws::handle_with_protocols(&request, body, &[PROTOCOL])
        .map_err(|e| ApiError::new(ErrorCode::NotAWebsocket, e.to_string()))?;
    let (response, body_dropped) = BodyWatch::wrap(response);
    let stream = stream
        .max_frame_size(MAX_FRAME_BYTES)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME_BYTES);
    let flow = state.flow;
    let connection = Connection {
        subscription,
        watch,
        viewer: recipient.viewer(),
        recipient,
        client_id: client_id.to_owned(),
        state: state.clone(),
        session,
        last: Cursor::START,
        inbound: InboundLimit::new(flow.rate, flow.burst, Instant::now()),
        typing: TypingCoalescer::new(flow.typing_interval),
        refused: LogThrottle::new(super::connection::WARN_EVERY),
        tcp: request.conn_data::<TcpHandle>().cloned(),
        body_dropped,
    };
    actix_web::rt::spawn(connection.run(stream, start));
    Ok(response)
}

/// The subprotocol a browser offers with its token; the server answers with it.
const PROTOCOL: &str = "frontdesk.v1";
/// A browser cannot set headers on a WebSocket: it offers its token as a subprotocol,
/// `bearer.<token>`, beside `frontdesk.v1`, so the token stays out of the URL.
const BEARER_PROTOCOL: &str = "bearer.";

/// The token a browser offered in `Sec-WebSocket-Protocol`, if any.
fn protocol_token(request: &HttpRequest) -> Option<Secret> {
    request
        .headers()
        .get_all(actix_web::http::header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|list| list.split(','))
        .find_map(|protocol| protocol.trim().strip_prefix(BEARER_PROTOCOL))
        .filter(|token| !token.is_empty())
        .map(Secret::presented)
}

/// The token from `?token=` (session tokens only), the `bearer.<token>` subprotocol or the
/// Bearer header, in that order.
async fn authenticate(
    request: &HttpRequest,
    state: &AppState,
    client_id: &str,
    query_token: Option<&str>,
) -> Result<(Recipient, Credential), ApiError> {
    let token = match (query_token, protocol_token(request), bearer(request)?) {
        (Some(token), _, _) => Secret::presented(token),
        (None, Some(token), _) | (None, None, Some(token)) => token,
        (None, None, None) => {
            return Err(ApiError::new(
                ErrorCode::MissingCredentials,
                "add ?token=<session token> or send Authorization: Bearer <API key>",
            ))
        }
    };
    let client = client_ip(request, &state.trusted_proxies);
    let page = foreign_page(request, &state.trusted_proxies);
    app::identity::listener(
        state,
        &token,
        query_token.is_some(),
        client_id,
        client,
        page.as_deref(),
    )
    .await
}
