//! Customers: their details and birthdate, as the partner's server sets them.

use frontdesk_domain::{Customer, CustomerId, CustomerPatch, Viewer};
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::state::AppState;

/// Creates the customer if new; a birthdate computes its Flashback profile. Partner API keys
/// only: a customer session token is recognised (so it gets 403, not a misleading 401
/// "unknown or expired") and refused.
pub(crate) async fn update(
    state: &AppState,
    caller: &Viewer,
    customer: &str,
    patch: CustomerPatch,
) -> Result<Customer, ApiError> {
    let Viewer::Partner(partner) = caller else {
        return Err(ApiError::forbidden(
            "customer data is changed by the partner's server, with its API key",
        ));
    };
    let customer = CustomerId::parse(customer)?;
    let today = OffsetDateTime::now_utc().date();
    let changes = patch.validate(today)?;
    Ok(state
        .store
        .upsert_customer(*partner, &customer, changes)
        .await?)
}
