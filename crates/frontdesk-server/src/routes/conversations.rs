use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::app;
use crate::auth::CallerAuth;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewConversation {
    customer_id: String,
}

/// `POST /api/partner/conversations`: a new waiting conversation.
pub async fn create(
    caller: CallerAuth,
    state: web::Data<AppState>,
    body: web::Json<NewConversation>,
) -> Result<HttpResponse, ApiError> {
    let conversation = app::conversations::open(&state, &caller.0, &body.customer_id).await?;
    Ok(HttpResponse::Created().json(conversation))
}

/// `GET /api/partner/conversations/:customerId`: oldest first.
pub async fn list_for_customer(
    caller: CallerAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let conversations = app::conversations::of_customer(&state, &caller.0, &path).await?;
    Ok(HttpResponse::Ok().json(conversations))
}
