//! Bearer authentication: partner API keys, customer session tokens and the admin token.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use frontdesk_domain::credentials::prefix;
use frontdesk_domain::{Agent, Partner, PartnerId, Secret, Viewer};

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// The token of `Authorization: Bearer <token>`, if the header is there.
pub fn bearer(request: &HttpRequest) -> Result<Option<Secret>, ApiError> {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    match text.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(Secret::presented(token.trim())))
        }
        _ => Err(ApiError::new(
            ErrorCode::InvalidCredentials,
            "the Authorization header must be `Bearer <token>`",
        )),
    }
}

fn missing() -> ApiError {
    ApiError::new(
        ErrorCode::MissingCredentials,
        "send `Authorization: Bearer <your API key>`",
    )
}

fn invalid() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidCredentials,
        "the token is unknown or expired",
    )
}

pub(crate) fn state(request: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    request
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::unavailable("server state missing"))
}

type Pending<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

/// A partner's server, authenticated by its API key.
pub struct PartnerAuth(pub Partner);

impl FromRequest for PartnerAuth {
    type Error = ApiError;
    type Future = Pending<Self>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            let token = bearer(&request)?.ok_or_else(missing)?;
            let state = state(&request)?;
            let partner = state.partner_by_key(&token.hash()).await?;
            partner.map(PartnerAuth).ok_or_else(invalid)
        })
    }
}

/// A partner's server (API key) or a customer's browser (session token).
pub struct CallerAuth(pub Viewer);

impl CallerAuth {
    pub fn partner(&self) -> Option<PartnerId> {
        self.0.partner()
    }
}

impl FromRequest for CallerAuth {
    type Error = ApiError;
    type Future = Pending<Self>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            let token = bearer(&request)?.ok_or_else(missing)?;
            let state = state(&request)?;
            let viewer = if token.expose().starts_with(prefix::CUSTOMER_SESSION) {
                state
                    .store
                    .customer_session(&token.hash())
                    .await?
                    .map(|session| Viewer::Customer(session.partner, session.customer))
            } else {
                state
                    .partner_by_key(&token.hash())
                    .await?
                    .map(|partner| Viewer::Partner(partner.id))
            };
            viewer.map(CallerAuth).ok_or_else(invalid)
        })
    }
}

/// A support agent, authenticated by a session token from `POST /api/agent/login`.
pub struct AgentAuth {
    pub agent: Agent,
    pub token: Secret,
}

impl AgentAuth {
    pub fn viewer(&self) -> Viewer {
        Viewer::Agent(self.agent.id)
    }
}

impl FromRequest for AgentAuth {
    type Error = ApiError;
    type Future = Pending<Self>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            let token = bearer(&request)?.ok_or_else(|| {
                ApiError::new(
                    ErrorCode::MissingCredentials,
                    "send `Authorization: Bearer <agent token>` from POST /api/agent/login",
                )
            })?;
            let state = state(&request)?;
            let agent = state.store.agent_by_session(&token.hash()).await?;
            agent
                .map(|agent| AgentAuth { agent, token })
                .ok_or_else(invalid)
        })
    }
}

/// An agent with `isAdmin`, or the configured admin token.
pub struct AdminAuth;

impl FromRequest for AdminAuth {
    type Error = ApiError;
    type Future = Pending<Self>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = request.clone();
        let agent = AgentAuth::from_request(&request, payload);
        Box::pin(async move {
            // An agent session first: a valid one is no guess at the admin token, so it is
            // never throttled as one.
            let not_an_agent = match agent.await {
                Ok(auth) if auth.agent.is_admin => return Ok(AdminAuth),
                Ok(_) => return Err(ApiError::forbidden("only administrators may do this")),
                Err(error) => error,
            };
            let state = state(&request)?;
            if is_admin(&request, &state).await? {
                return Ok(AdminAuth);
            }
            Err(not_an_agent)
        })
    }
}

/// Whether the request carries the admin token (when one is configured). Every presented
/// token is counted against its address before it is compared, and only a wrong one stays
/// counted: past the limit the answer is 429, whatever the token.
pub async fn is_admin(request: &HttpRequest, state: &AppState) -> Result<bool, ApiError> {
    let Some(expected) = &state.admin_token else {
        return Ok(false);
    };
    let Some(token) = bearer(request)? else {
        return Ok(false);
    };
    // A signed-in agent's own session is not a guess at the admin token: never counted.
    if token.expose().starts_with(prefix::AGENT_SESSION)
        && state.store.agent_by_session(&token.hash()).await?.is_some()
    {
        return Ok(false);
    }
    let ip = crate::client_ip::client_ip(request, &state.trusted_proxies);
    let attempt = state
        .logins
        .reserve_admin(&state.store, ip)
        .await?
        .map_err(|wait| {
            ApiError::too_many_requests("too many wrong admin tokens; try again later", wait)
        })?;
    let matches = token.hash() == *expected;
    if matches {
        state
            .logins
            .admin_not_failed(&state.store, &attempt)
            .await?;
    } else {
        tracing::warn!(client = ?ip, "wrong admin token");
    }
    Ok(matches)
}
