use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_domain::PartnerRegistration;
use serde::Serialize;

use crate::app;
use crate::app::partners::WithKey;
use crate::auth::bearer;
use crate::client_ip::client_ip;
use crate::config::Registration;
use crate::error::ApiError;
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
    let presented = bearer(&request);
    let client = client_ip(&request, &state.trusted_proxies);
    let WithKey { partner, api_key } =
        app::partners::register(&state, presented, client, body.into_inner()).await?;
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
