//! Bounds on what one address can make the server hold: requests in progress per address,
//! and a deadline on each request's body. Applied to every route as one middleware.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, ResponseError};

use crate::body_deadline::with_deadline;
use crate::client_ip::client_ip;
use crate::error::ApiError;
use crate::realtime::teardown::TcpHandle;

/// The instance's limits and its count of requests in progress per address (one for all
/// workers, so the limit is per instance).
pub struct RequestGuard {
    body_timeout: Duration,
    /// 0: no limit.
    per_address: usize,
    /// Whose `X-Forwarded-For` names the client (`client_ip`), as for every per-address limit.
    trusted_proxies: Arc<[IpAddr]>,
    in_progress: Mutex<HashMap<IpAddr, usize>>,
}

impl RequestGuard {
    pub fn new(
        body_timeout: Duration,
        per_address: usize,
        trusted_proxies: Arc<[IpAddr]>,
    ) -> Arc<Self> {
        Arc::new(Self {
            body_timeout,
            per_address,
            trusted_proxies,
            in_progress: Mutex::default(),
        })
    }

    /// A slot for one more request from `ip`, or `None` when it has its limit in progress.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        if self.per_address == 0 {
            return Some(Slot(None));
        }
        let mut counts = self.in_progress.lock().unwrap_or_else(|p| p.into_inner());
        let count = counts.entry(ip).or_default();
        if *count >= self.per_address {
            return None;
        }
        *count += 1;
        Some(Slot(Some((Arc::clone(self), ip))))
    }
}

/// One request in progress; counted until the response is ready (a WebSocket's life after its
/// upgrade is not a request in progress: the socket limits cover it).
struct Slot(Option<(Arc<RequestGuard>, IpAddr)>);

impl Drop for Slot {
    fn drop(&mut self) {
        let Some((guard, ip)) = self.0.take() else {
            return;
        };
        let mut counts = guard.in_progress.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                // Addresses seen once do not accumulate.
                counts.remove(&ip);
            }
        }
    }
}

/// The middleware: refuses a request beyond its address's limit with 429 (closing the
/// connection, so a trickled body is not waited for), and puts the body deadline on the rest.
pub async fn guard_requests(
    mut request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(guard) = request
        .app_data::<web::Data<RequestGuard>>()
        .map(|data| data.clone().into_inner())
    else {
        return Ok(next.call(request).await?.map_into_left_body());
    };
    let slot = match client_ip(request.request(), &guard.trusted_proxies) {
        Some(ip) => match guard.admit(ip) {
            Some(slot) => slot,
            None => {
                let mut response = ApiError::too_many_requests(
                    "too many requests in progress from your address",
                    Duration::from_secs(1),
                )
                .error_response();
                response
                    .head_mut()
                    .set_connection_type(actix_web::http::ConnectionType::Close);
                // Nor is the body it may be trickling drained (see `with_deadline`).
                if has_body(&request) {
                    if let Some(tcp) = request.conn_data::<TcpHandle>() {
                        tcp.stop_reading();
                    }
                }
                return Ok(request.into_response(response).map_into_right_body());
            }
        },
        None => Slot(None),
    };
    // A WebSocket's payload is its frames, which flow for the socket's whole life; only a real
    // handshake is exempt, not any request that says `Upgrade`.
    if !is_websocket_handshake(&request) {
        let tcp = has_body(&request)
            .then(|| request.conn_data::<TcpHandle>().cloned())
            .flatten();
        let payload = request.take_payload();
        request.set_payload(with_deadline(payload, guard.body_timeout, tcp));
    }
    let response = next.call(request).await;
    drop(slot);
    Ok(response?.map_into_left_body())
}

/// `GET /ws` asking for `Upgrade: websocket`.
fn is_websocket_handshake(request: &ServiceRequest) -> bool {
    request.method() == actix_web::http::Method::GET
        && request.path() == "/ws"
        && request
            .headers()
            .get(header::UPGRADE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.eq_ignore_ascii_case("websocket"))
}

/// Whether the request declares a body (a length above zero, or a transfer encoding).
fn has_body(request: &ServiceRequest) -> bool {
    let headers = request.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .is_some_and(|length| length > 0)
}
