//! Who is calling: one authentication for every credential (partner API key, customer session
//! token, agent session token, admin token), used by the HTTP extractors and the WebSocket
//! handshake alike; the customer sessions partners mint; revocation.

use std::net::IpAddr;

use frontdesk_domain::credentials::prefix;
use frontdesk_domain::inbound::{parse_client_id, ClientId};
use frontdesk_domain::Recipient;
use frontdesk_domain::{Agent, CustomerId, Partner, PartnerId, Secret, SecretHash, Timestamp};
use frontdesk_store::{CustomerSession, StoreError};

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// What a credential turned out to be.
#[derive(Debug, Clone)]
pub(crate) enum Identity {
    Partner(Partner),
    Customer(CustomerSession),
    Agent(Agent),
    /// The configured admin token.
    Admin,
}

/// The kinds of credential there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    PartnerKey,
    CustomerSession,
    AgentSession,
    AdminToken,
}

/// The credential a caller presented, as kept by a WebSocket to re-check it later.
#[derive(Debug, Clone)]
pub(crate) struct Credential {
    pub kind: Kind,
    pub hash: SecretHash,
    /// `None` for an API key or the admin token, which last until they are changed.
    pub expires_at: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub(crate) struct Authenticated {
    pub identity: Identity,
    pub credential: Credential,
}

/// The credentials an endpoint takes. A session token of a kind not taken is not looked up
/// (its prefix says what it is); any other token is tried as an API key where keys are taken,
/// and as the admin token where that is. Either way the caller sees `None`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Accepts {
    pub partner_key: bool,
    pub customer_session: bool,
    /// Also looked up when only the admin token is accepted: a signed-in agent's own session
    /// is no guess at the admin token and is never counted as one.
    pub agent_session: bool,
    /// Throttled per address: counted before it is compared, only a wrong one stays counted.
    pub admin_token: bool,
}

impl Accepts {
    pub const PARTNER: Self = Self::none().with_partner_key();
    /// A partner's server or a customer's browser.
    pub const CALLER: Self = Self::PARTNER.with_customer_session();
    pub const AGENT: Self = Self::none().with_agent_session();
    /// A WebSocket: a customer (session or partner key) or an agent.
    pub const SOCKET: Self = Self::CALLER.with_agent_session();
    /// An admin agent or the admin token.
    pub const ADMIN: Self = Self::AGENT.with_admin_token();
    /// The admin token alone (partner registration when it is closed).
    pub const ADMIN_TOKEN: Self = Self::none().with_admin_token();

    const fn none() -> Self {
        Self {
            partner_key: false,
            customer_session: false,
            agent_session: false,
            admin_token: false,
        }
    }
    const fn with_partner_key(mut self) -> Self {
        self.partner_key = true;
        self
    }
    const fn with_customer_session(mut self) -> Self {
        self.customer_session = true;
        self
    }
    const fn with_agent_session(mut self) -> Self {
        self.agent_session = true;
        self
    }
    const fn with_admin_token(mut self) -> Self {
        self.admin_token = true;
        self
    }
}

/// What `token` speaks for among the kinds `accepts` takes; `None` when it is unknown,
/// expired or of another kind. `client` is the address the admin-token throttle counts.
pub(crate) async fn authenticate(
    state: &AppState,
    token: &Secret,
    accepts: Accepts,
    client: Option<IpAddr>,
) -> Result<Option<Authenticated>, ApiError> {
    let hash = token.hash();
    let found = |identity, kind, expires_at| {
        Some(Authenticated {
            identity,
            credential: Credential {
                kind,
                hash: hash.clone(),
                expires_at,
            },
        })
    };
    let text = token.expose();
    if text.starts_with(prefix::CUSTOMER_SESSION) && accepts.customer_session {
        if let Some(session) = state.store.customer_session(&hash).await? {
            let expires_at = session.expires_at;
            return Ok(found(
                Identity::Customer(session),
                Kind::CustomerSession,
                Some(expires_at),
            ));
        }
    } else if text.starts_with(prefix::AGENT_SESSION)
        && (accepts.agent_session || accepts.admin_token)
    {
        if let Some((agent, expires_at)) = state.store.agent_session(&hash).await? {
            return Ok(found(
                Identity::Agent(agent),
                Kind::AgentSession,
                Some(expires_at),
            ));
        }
    } else if accepts.partner_key {
        if let Some(partner) = partner_by_key(state, &hash).await? {
            return Ok(found(Identity::Partner(partner), Kind::PartnerKey, None));
        }
    }
    if accepts.admin_token && is_admin_token(state, &hash, client).await? {
        return Ok(found(Identity::Admin, Kind::AdminToken, None));
    }
    Ok(None)
}

/// The partner owning an API key, from the cache when it was seen recently.
async fn partner_by_key(state: &AppState, key: &SecretHash) -> Result<Option<Partner>, ApiError> {
    if let Some(partner) = state.keys.get(key) {
        return Ok(Some(partner));
    }
    let generation = state.keys.generation();
    let found = state.store.partner_by_key(key).await?;
    if let Some(partner) = &found {
        state.keys.put(key.clone(), partner.clone(), generation);
    }
    Ok(found)
}

/// Whether `hash` is the admin token (when one is configured). Counted against `client`
/// before it is compared, so past the limit the answer is 429 whatever the token.
async fn is_admin_token(
    state: &AppState,
    hash: &SecretHash,
    client: Option<IpAddr>,
) -> Result<bool, ApiError> {
    let Some(expected) = &state.admin_token else {
        return Ok(false);
    };
    let attempt = state
        .logins
        .reserve_admin(&state.store, client)
        .await?
        .map_err(|wait| {
            ApiError::too_many_requests("too many wrong admin tokens; try again later", wait)
        })?;
    let matches = hash == expected;
    if matches {
        state
            .logins
            .admin_not_failed(&state.store, &attempt)
            .await?;
    } else {
        tracing::warn!(client = ?client, "wrong admin token");
    }
    Ok(matches)
}

/// Whether a credential still speaks: not expired, logged out or rotated. Asks the database,
/// never the key cache: this is the check that holds when a revocation signal was lost.
pub(crate) async fn still_valid(
    state: &AppState,
    credential: &Credential,
) -> Result<bool, StoreError> {
    let store = &state.store;
    let hash = &credential.hash;
    Ok(match credential.kind {
        Kind::CustomerSession => store.customer_session(hash).await?.is_some(),
        Kind::AgentSession => store.agent_session(hash).await?.is_some(),
        Kind::PartnerKey => store.partner_by_key(hash).await?.is_some(),
        // Not taken by sockets (`Accepts::SOCKET`); it changes only with a restart.
        Kind::AdminToken => true,
    })
}

/// Who a WebSocket hears as, if `token` speaks for `client_id`: a customer session for its
/// own customer, an agent session for `agent-<its id>`, a partner API key for any of the
/// partner's customers. `in_url`: the token came in the URL, where an API key must never
/// travel (a URL ends up in logs and browser history), so only session tokens are taken.
pub(crate) async fn listener(
    state: &AppState,
    token: &Secret,
    in_url: bool,
    client_id: &str,
    client: Option<IpAddr>,
    page: Option<&str>,
) -> Result<(Recipient, Credential), ApiError> {
    let unauthorized = |message: &str| ApiError::new(ErrorCode::InvalidCredentials, message);
    let text = token.expose();
    let kind = if text.starts_with(prefix::CUSTOMER_SESSION) {
        Kind::CustomerSession
    } else if text.starts_with(prefix::AGENT_SESSION) {
        Kind::AgentSession
    } else {
        Kind::PartnerKey
    };
    if in_url && kind == Kind::PartnerKey {
        return Err(unauthorized(
            "send a partner API key in the Authorization header, not in the URL",
        ));
    }
    let Some(Authenticated {
        identity,
        credential,
    }) = authenticate(state, token, Accepts::SOCKET, client).await?
    else {
        return Err(unauthorized(match kind {
            Kind::CustomerSession => "the session token is unknown or expired",
            Kind::AgentSession => "the agent token is unknown or expired",
            _ => "the API key is unknown",
        }));
    };
    check_page(state, &identity, page).await?;
    let recipient = match (identity, parse_client_id(client_id)) {
        (Identity::Customer(session), ClientId::Customer(customer))
            if customer == session.customer =>
        {
            Recipient::Customer(session.partner, customer)
        }
        (Identity::Agent(agent), ClientId::Agent(id)) if id == agent.id => Recipient::Agent(id),
        (Identity::Partner(partner), ClientId::Customer(customer)) => {
            Recipient::Customer(partner.id, customer)
        }
        (Identity::Partner(_), _) => {
            return Err(unauthorized(
                "with an API key, clientId is one of your customer ids",
            ))
        }
        _ => return Err(unauthorized("this token is for another clientId")),
    };
    Ok((recipient, credential))
}

/// A browser page on another site (`page`: its host, from `browser::foreign_page`) may use a
/// partner's or its customers' credentials only from the partner's registered domain or its
/// subdomains (loopback hosts too under the development flag); agents and administrators work
/// from this server's own pages only. No page (a server, an app, our own pages): no rule.
pub(crate) async fn check_page(
    state: &AppState,
    identity: &Identity,
    page: Option<&str>,
) -> Result<(), ApiError> {
    let Some(host) = page else {
        return Ok(());
    };
    let partner = match identity {
        Identity::Partner(partner) => {
            state.origins.note(partner.id, partner.domain.clone());
            partner.id
        }
        Identity::Customer(session) => session.partner,
        Identity::Agent(_) | Identity::Admin => {
            return Err(ApiError::new(
                ErrorCode::OriginNotAllowed,
                "the agent and admin API answer this server's own pages only",
            ))
        }
    };
    let allowed = match state.origins.allows(partner, host) {
        Some(allowed) => allowed,
        None => {
            // Registered on another instance since the last refresh.
            let found = state.store.partner(partner).await?;
            state.origins.note(found.id, found.domain);
            state.origins.allows(partner, host).unwrap_or(false)
        }
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::OriginNotAllowed,
            "this page is not on the partner's registered domain",
        ))
    }
}

/// A customer token speaks only for its own customer id.
pub(crate) fn ensure_speaks_for(
    caller: &frontdesk_domain::Viewer,
    customer: &CustomerId,
) -> Result<(), ApiError> {
    match caller {
        frontdesk_domain::Viewer::Customer(_, own) if own != customer => Err(ApiError::forbidden(
            "a customer token speaks only for its own customer",
        )),
        _ => Ok(()),
    }
}

/// A new customer session token, and the session it opens.
pub(crate) struct NewCustomerSession {
    pub token: Secret,
    pub session: CustomerSession,
}

/// A short-lived token a partner hands to its customer's browser, so its own API key never
/// leaves its server.
pub(crate) async fn open_customer_session(
    state: &AppState,
    partner: PartnerId,
    customer: &str,
) -> Result<NewCustomerSession, ApiError> {
    let customer = CustomerId::parse(customer)?;
    let token = Secret::generate(prefix::CUSTOMER_SESSION, &mut rand::rng());
    let session = state
        .store
        .create_customer_session(partner, &customer, &token.hash(), state.customer_session)
        .await?;
    Ok(NewCustomerSession { token, session })
}

/// Tells every instance that `credential` no longer speaks. Already refused by the database;
/// this instance's sockets are told before the response goes (so a frame the client sends
/// after it is never handled), the others' through the event feed; should that signal fail,
/// each socket's periodic re-check still closes it.
pub(crate) async fn revoke(state: &AppState, credential: &SecretHash) {
    state.keys.forget(credential);
    state.hub.revoke(credential);
    if let Err(error) = state.store.publish_revocation(credential).await {
        tracing::warn!(%error, "revocation signal not sent; sockets close at their re-check");
    }
}
