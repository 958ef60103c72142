use actix_web::{web, HttpResponse};
use frontdesk_domain::{CustomerId, Timestamp};
use serde::{Deserialize, Serialize};

use crate::app;
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

/// `POST /api/partner/sessions`: a short-lived token for the partner's customer's browser.
pub async fn create(
    PartnerAuth(partner): PartnerAuth,
    state: web::Data<AppState>,
    body: web::Json<NewSession>,
) -> Result<HttpResponse, ApiError> {
    let opened =
        app::identity::open_customer_session(&state, partner.id, &body.customer_id).await?;
    Ok(HttpResponse::Created().json(Session {
        token: opened.token.expose().to_owned(),
        customer_id: opened.session.customer,
        expires_at: opened.session.expires_at,
    }))
}
