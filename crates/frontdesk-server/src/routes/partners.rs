use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_domain::credentials::prefix;
use frontdesk_domain::{PartnerRegistration, Secret};
use serde::Serialize;

use crate::auth::is_admin;
use crate::client_ip::client_ip;
use crate::config::Registration;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Registered {
    message: &'static str,
    partner_id: String,
    api_key: String,
    name: String,
    domain: String,
}

/// `POST /api/partner/register`: the API key is shown here once and stored only as a digest.
pub async fn register(
    request: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<PartnerRegistration>,
) -> Result<HttpResponse, ApiError> {
    match state.registration {
        Registration::Admin => {
            if !is_admin(&request, &state).await? {
                return Err(ApiError::new(
                    ErrorCode::AdminTokenRequired,
                    "partner registration on this server needs the admin token",
                ));
            }
        }
        Registration::Open => {
            let ip = client_ip(&request, &state.trusted_proxies);
            state.registrations.check(ip).map_err(|wait| {
                ApiError::too_many_requests(
                    "too many registrations from this address; try again later",
                    wait,
                )
            })?;
        }
    }
    let registration = body.into_inner().validate()?;
    let api_key = Secret::generate(prefix::PARTNER_API_KEY, &mut rand::rng());
    let partner = state
        .store
        .create_partner(&registration, &api_key.hash())
        .await?;
    tracing::info!(partner = %partner.id, domain = %partner.domain, "partner registered");
    Ok(HttpResponse::Created().json(Registered {
        message: "Partner successfully registered",
        partner_id: partner.id.to_string(),
        api_key: api_key.expose().to_owned(),
        name: partner.name,
        domain: partner.domain,
    }))
}

/// Logged at start: open registration lets anyone on the network create partners.
pub fn warn_if_open(registration: Registration) {
    if registration == Registration::Open {
        tracing::warn!(
            "partner registration is open to anyone who can reach this server (rate-limited per \
             address); set FRONTDESK_REGISTRATION=admin in production"
        );
    }
}
