use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// `GET /healthz`: 200 once the database answers and writes are not failing for lack of
/// space; 503 otherwise (`storage_full` from the last write that failed for lack of space
/// until one succeeds: the database still answers reads then).
pub async fn healthz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.store.storage_full() {
        return Err(ApiError::storage_full());
    }
    state
        .store
        .ping()
        .await
        .map_err(|_| ApiError::unavailable("the database is not answering"))?;
    Ok(HttpResponse::Ok().json(json!({ "status": "ok" })))
}
