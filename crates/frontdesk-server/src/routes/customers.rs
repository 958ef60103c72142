use actix_web::{web, HttpResponse};
use frontdesk_domain::{CustomerId, CustomerPatch, Viewer};
use time::OffsetDateTime;

use crate::auth::CallerAuth;
use crate::error::ApiError;
use crate::state::AppState;

/// `PATCH /api/customers/:customerId`: creates the customer if new; a birthdate computes its
/// Flashback profile. Partner API keys only: a valid customer session token is recognised (so
/// it gets 403, not a misleading 401 "unknown or expired") and refused.
pub async fn update(
    CallerAuth(caller): CallerAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<CustomerPatch>,
) -> Result<HttpResponse, ApiError> {
    let partner = match caller {
        Viewer::Partner(partner) => partner,
        _ => {
            return Err(ApiError::forbidden(
                "customer data is changed by the partner's server, with its API key",
            ))
        }
    };
    let customer = CustomerId::parse(&path)?;
    let today = OffsetDateTime::now_utc().date();
    let changes = body.into_inner().validate(today)?;
    let customer = state
        .store
        .upsert_customer(partner, &customer, changes)
        .await?;
    Ok(HttpResponse::Ok().json(customer))
}
