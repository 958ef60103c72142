//! `POST /api/admin/partners/{partnerId}/rotate-key`: a new API key for a partner whose key
//! leaked. The old key is refused at once on every instance, and the sockets opened with it
//! close.

use actix_web::{web, HttpResponse};
use frontdesk_domain::credentials::prefix;
use frontdesk_domain::{PartnerId, Secret};
use serde::Serialize;

use crate::auth::AdminAuth;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rotated {
    message: &'static str,
    partner_id: String,
    api_key: String,
}

/// Admin token or admin agent. The new key is shown here once and stored only as a digest.
pub async fn rotate(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = PartnerId::parse(&path)
        .ok_or_else(|| ApiError::new(ErrorCode::PartnerNotFound, "partner not found"))?;
    let api_key = Secret::generate(prefix::PARTNER_API_KEY, &mut rand::rng());
    let old = state.store.rotate_partner_key(id, &api_key.hash()).await?;
    crate::routes::revoke(&state, &old).await;
    tracing::info!(partner = %id, "partner API key rotated");
    Ok(HttpResponse::Ok().json(Rotated {
        message: "API key rotated; the old key no longer works",
        partner_id: id.to_string(),
        api_key: api_key.expose().to_owned(),
    }))
}
