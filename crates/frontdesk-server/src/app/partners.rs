//! Partners: registration and API key rotation.

use std::net::IpAddr;

use frontdesk_domain::credentials::prefix;
use frontdesk_domain::{Partner, PartnerId, PartnerRegistration, Secret};

use crate::app::identity::{authenticate, revoke, Accepts, Identity};
use crate::config::Registration;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// A partner and the API key shown to it once (only its digest is stored).
pub(crate) struct WithKey {
    pub partner: Partner,
    pub api_key: Secret,
}

/// Open registration is rate-limited per address; closed registration needs the admin token.
/// `presented` is the Authorization header as parsed: it is read only when the admin token is
/// configured, so neither open registration nor a server without an admin token refuses a
/// header it has no use for.
pub(crate) async fn register(
    state: &AppState,
    presented: Result<Option<Secret>, ApiError>,
    client: Option<IpAddr>,
    registration: PartnerRegistration,
) -> Result<WithKey, ApiError> {
    match state.registration {
        Registration::Admin => {
            let presented = match state.admin_token {
                Some(_) => presented?,
                None => None,
            };
            let admin = match presented {
                Some(token) => authenticate(state, &token, Accepts::ADMIN_TOKEN, client)
                    .await?
                    .map(|found| found.identity),
                None => None,
            };
            if !matches!(admin, Some(Identity::Admin)) {
                return Err(ApiError::new(
                    ErrorCode::AdminTokenRequired,
                    "partner registration on this server needs the admin token",
                ));
            }
        }
        Registration::Open => {
            state.registrations.check(client).map_err(|wait| {
                ApiError::too_many_requests(
                    "too many registrations from this address; try again later",
                    wait,
                )
            })?;
        }
    }
    let registration = registration.validate()?;
    let api_key = Secret::generate(prefix::PARTNER_API_KEY, &mut rand::rng());
    let partner = state
        .store
        .create_partner(&registration, &api_key.hash())
        .await?;
    tracing::info!(partner = %partner.id, domain = %partner.domain, "partner registered");
    state.origins.note(partner.id, partner.domain.clone());
    Ok(WithKey { partner, api_key })
}

/// A new API key for a partner whose key leaked (the caller is an administrator). The old key
/// is refused at once on every instance, and the sockets opened with it close.
pub(crate) async fn rotate_key(
    state: &AppState,
    partner: &str,
) -> Result<(PartnerId, Secret), ApiError> {
    let id = PartnerId::parse(partner)
        .ok_or_else(|| ApiError::new(ErrorCode::PartnerNotFound, "partner not found"))?;
    let api_key = Secret::generate(prefix::PARTNER_API_KEY, &mut rand::rng());
    let old = state.store.rotate_partner_key(id, &api_key.hash()).await?;
    revoke(state, &old).await;
    tracing::info!(partner = %id, "partner API key rotated");
    Ok((id, api_key))
}
