use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::app;
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /healthz`: 200 when this instance can serve, 503 otherwise.
pub async fn healthz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    app::health::check(&state).await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "ok" })))
}
