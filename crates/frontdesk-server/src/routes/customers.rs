use actix_web::{web, HttpResponse};
use frontdesk_domain::{CustomerId, CustomerPatch};
use time::OffsetDateTime;

use crate::auth::PartnerAuth;
use crate::error::ApiError;
use crate::state::AppState;

/// `PATCH /api/customers/:customerId`: creates the customer if new; a birthdate computes its
/// Flashback profile.
pub async fn update(
    PartnerAuth(partner): PartnerAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<CustomerPatch>,
) -> Result<HttpResponse, ApiError> {
    let customer = CustomerId::parse(&path)?;
    let today = OffsetDateTime::now_utc().date();
    let changes = body.into_inner().validate(today)?;
    let customer = state
        .store
        .upsert_customer(partner.id, &customer, changes)
        .await?;
    Ok(HttpResponse::Ok().json(customer))
}
