//! Agents: signing in and out, and creating accounts.

use std::net::IpAddr;
use std::sync::OnceLock;

use frontdesk_domain::agent::PasswordMemory;
use frontdesk_domain::credentials::prefix;
use frontdesk_domain::limits::AGENT_SESSION_SECONDS;
use frontdesk_domain::{Agent, NewAgent, Secret, SecretHash, Timestamp};

use crate::app::identity::revoke;
use crate::error::{ApiError, ErrorCode};
use crate::password_gate::HashingBusy;
use crate::state::AppState;

/// A new agent session.
pub(crate) struct SignedIn {
    pub token: Secret,
    pub agent: Agent,
    pub expires_at: Timestamp,
}

/// Throttled per account and address (see `limiter`), the attempt counted before the
/// argon2id check, which runs through the hashing gate.
pub(crate) async fn login(
    state: &AppState,
    client: Option<IpAddr>,
    email: String,
    password: String,
) -> Result<SignedIn, ApiError> {
    if state.hashing.is_full() {
        // Saturated: answer before counting anything, so a flood costs no database writes.
        return Err(HashingBusy.into());
    }
    let reservation = state
        .logins
        .reserve(&state.store, &email, client)
        .await?
        .map_err(|wait| {
            ApiError::too_many_requests("too many failed sign-ins; try again later", wait)
        })?;
    if !reservation.delay.is_zero() {
        // The account is being guessed from many addresses: slow every attempt on it down
        // (without holding a hashing slot) rather than refuse its real owner.
        actix_web::rt::time::sleep(reservation.delay).await;
    }
    let found = state.store.agent_credentials(&email).await?;
    // Verify even for unknown emails, so timing does not reveal which accounts exist.
    let stored = found.as_ref().map(|(_, hash)| hash.clone());
    let checked = state
        .hashing
        .run(move |memory| {
            let stored = stored.unwrap_or_else(|| dummy_hash(memory));
            memory.verify(&password, &stored)
        })
        .await;
    let matches = match checked {
        Ok(matches) => matches,
        Err(busy) => {
            state
                .logins
                .not_attempted(&state.store, &reservation)
                .await?;
            return Err(busy.into());
        }
    };
    let agent = match (found, matches) {
        (Some((agent, _)), true) => agent,
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidCredentials,
                "wrong email or password",
            ));
        }
    };
    state.logins.succeeded(&state.store, &reservation).await?;
    let token = Secret::generate(prefix::AGENT_SESSION, &mut rand::rng());
    let expires_at = state
        .store
        .create_agent_session(
            agent.id,
            &token.hash(),
            time::Duration::seconds(AGENT_SESSION_SECONDS),
        )
        .await?;
    Ok(SignedIn {
        token,
        agent,
        expires_at,
    })
}

/// A real argon2id hash of a random password nobody knows, so a login for an unknown email
/// costs the same as one for a known email.
fn dummy_hash(memory: &mut PasswordMemory) -> String {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY
        .get_or_init(|| {
            let password = Secret::generate("", &mut rand::rng());
            memory
                .hash(password.expose(), &mut rand::rng())
                .unwrap_or_default()
        })
        .clone()
}

/// The token stops working at once, and the WebSockets opened with it close (on every
/// instance).
pub(crate) async fn logout(state: &AppState, token: &SecretHash) -> Result<(), ApiError> {
    state.store.end_agent_session(token).await?;
    revoke(state, token).await;
    Ok(())
}

/// A new account (the caller is an administrator).
pub(crate) async fn create(state: &AppState, new_agent: NewAgent) -> Result<Agent, ApiError> {
    // argon2 takes tens of milliseconds and 19 MiB: through the hashing gate.
    let signup = state
        .hashing
        .run(move |memory| new_agent.validate_with(&mut rand::rng(), memory))
        .await??;
    Ok(state.store.create_agent(&signup).await?)
}
