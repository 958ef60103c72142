//! The HTTP side of authentication: the bearer token, and extractors that ask
//! `app::identity::authenticate` what it speaks for and keep the kinds each route takes.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use frontdesk_domain::{Agent, Partner, Secret, Viewer};

use crate::app::identity::{authenticate, check_page, Accepts, Authenticated, Identity};
use crate::browser::foreign_page;
use crate::client_ip::client_ip;
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

/// The bearer token (`missing` says how to send one when there is none), authenticated among
/// the kinds `accepts` takes.
async fn identify(
    request: &HttpRequest,
    accepts: Accepts,
    missing: &'static str,
) -> Result<(Secret, Option<Authenticated>), ApiError> {
    let token =
        bearer(request)?.ok_or_else(|| ApiError::new(ErrorCode::MissingCredentials, missing))?;
    let state = state(request)?;
    let client = client_ip(request, &state.trusted_proxies);
    let page = foreign_page(request, &state.trusted_proxies);
    let found = authenticate(&state, &token, accepts, client).await?;
    if let Some(found) = &found {
        check_page(&state, &found.identity, page.as_deref()).await?;
    }
    Ok((token, found))
}

const SEND_API_KEY: &str = "send `Authorization: Bearer <your API key>`";
const SEND_AGENT_TOKEN: &str =
    "send `Authorization: Bearer <agent token>` from POST /api/agent/login";

/// A partner's server, authenticated by its API key.
pub struct PartnerAuth(pub Partner);

impl FromRequest for PartnerAuth {
    type Error = ApiError;
    type Future = Pending<Self>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            match identify(&request, Accepts::PARTNER, SEND_API_KEY).await?.1 {
                Some(Authenticated {
                    identity: Identity::Partner(partner),
                    ..
                }) => Ok(PartnerAuth(partner)),
                _ => Err(invalid()),
            }
        })
    }
}

/// A partner's server (API key) or a customer's browser (session token).
pub struct CallerAuth(pub Viewer);

impl FromRequest for CallerAuth {
    type Error = ApiError;
    type Future = Pending<Self>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            let found = identify(&request, Accepts::CALLER, SEND_API_KEY).await?.1;
            match found.map(|found| found.identity) {
                Some(Identity::Partner(partner)) => Ok(CallerAuth(Viewer::Partner(partner.id))),
                Some(Identity::Customer(session)) => Ok(CallerAuth(Viewer::Customer(
                    session.partner,
                    session.customer,
                ))),
                _ => Err(invalid()),
            }
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
            let (token, found) = identify(&request, Accepts::AGENT, SEND_AGENT_TOKEN).await?;
            match found.map(|found| found.identity) {
                Some(Identity::Agent(agent)) => Ok(AgentAuth { agent, token }),
                _ => Err(invalid()),
            }
        })
    }
}

/// An agent with `isAdmin`, or the configured admin token.
pub struct AdminAuth;

impl FromRequest for AdminAuth {
    type Error = ApiError;
    type Future = Pending<Self>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            let found = identify(&request, Accepts::ADMIN, SEND_AGENT_TOKEN)
                .await?
                .1;
            match found.map(|found| found.identity) {
                Some(Identity::Admin) => Ok(AdminAuth),
                Some(Identity::Agent(agent)) if agent.is_admin => Ok(AdminAuth),
                Some(Identity::Agent(_)) => {
                    Err(ApiError::forbidden("only administrators may do this"))
                }
                _ => Err(invalid()),
            }
        })
    }
}
