//! `POST /api/admin/partners/{partnerId}/rotate-key`: a new API key for a partner whose key
//! leaked.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::app;
use crate::auth::AdminAuth;
use crate::error::ApiError;
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
    let (id, api_key) = app::partners::rotate_key(&state, &path).await?;
    Ok(HttpResponse::Ok().json(Rotated {
        message: "API key rotated; the old key no longer works",
        partner_id: id.to_string(),
        api_key: api_key.expose().to_owned(),
    }))
}
