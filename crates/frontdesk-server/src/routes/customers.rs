use actix_web::{web, HttpResponse};
use frontdesk_domain::CustomerPatch;

use crate::app;
use crate::auth::CallerAuth;
use crate::error::ApiError;
use crate::state::AppState;

/// `PATCH /api/customers/:customerId`: partner API keys only.
pub async fn update(
    caller: CallerAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<CustomerPatch>,
) -> Result<HttpResponse, ApiError> {
    let customer = app::customers::update(&state, &caller.0, &path, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(customer))
}
