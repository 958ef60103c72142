use actix_web::{web, HttpResponse};
use frontdesk_domain::credentials::prefix;
use frontdesk_domain::{CustomerId, Secret, Timestamp};
use serde::{Deserialize, Serialize};

use crate::auth::PartnerAuth;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewSession {
    customer_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Session {
    token: String,
    customer_id: CustomerId,
    expires_at: Timestamp,
}

/// `POST /api/partner/sessions`: a short-lived token a partner hands to its customer's browser
/// so its own API key never leaves its server.
pub async fn create(
    PartnerAuth(partner): PartnerAuth,
    state: web::Data<AppState>,
    body: web::Json<NewSession>,
) -> Result<HttpResponse, ApiError> {
    let customer = CustomerId::parse(&body.customer_id)?;
    let token = Secret::generate(prefix::CUSTOMER_SESSION, &mut rand::rng());
    let session = state
        .store
        .create_customer_session(partner.id, &customer, &token.hash(), state.customer_session)
        .await?;
    Ok(HttpResponse::Created().json(Session {
        token: token.expose().to_owned(),
        customer_id: session.customer,
        expires_at: session.expires_at,
    }))
}
