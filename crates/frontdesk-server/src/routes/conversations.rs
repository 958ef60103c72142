use actix_web::{web, HttpResponse};
use frontdesk_domain::CustomerId;
use serde::Deserialize;

use crate::auth::CallerAuth;
use crate::error::ApiError;
use crate::routes::ensure_speaks_for;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewConversation {
    customer_id: String,
}

/// `POST /api/partner/conversations`: a new waiting conversation (the customer is created on
/// first mention).
pub async fn create(
    caller: CallerAuth,
    state: web::Data<AppState>,
    body: web::Json<NewConversation>,
) -> Result<HttpResponse, ApiError> {
    let customer = CustomerId::parse(&body.customer_id)?;
    ensure_speaks_for(&caller.0, &customer)?;
    let partner = caller
        .partner()
        .ok_or_else(|| ApiError::forbidden("partners only"))?;
    let conversation = state.store.create_conversation(partner, &customer).await?;
    Ok(HttpResponse::Created().json(conversation))
}

/// `GET /api/partner/conversations/:customerId`: oldest first.
pub async fn list_for_customer(
    caller: CallerAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let customer = CustomerId::parse(&path)?;
    ensure_speaks_for(&caller.0, &customer)?;
    let partner = caller
        .partner()
        .ok_or_else(|| ApiError::forbidden("partners only"))?;
    let conversations = state
        .store
        .customer_conversations(partner, &customer)
        .await?;
    Ok(HttpResponse::Ok().json(conversations))
}
