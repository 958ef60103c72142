//! The support side's API (contract.md, "Agents").

use std::sync::OnceLock;

use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_domain::agent::PasswordMemory;
use frontdesk_domain::credentials::prefix;
use frontdesk_domain::customer::format_birthdate;
use frontdesk_domain::{
    ConversationStatus, MessageDraft, Metadata, NewAgent, Secret, Sender, Timestamp,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::{AdminAuth, AgentAuth};
use crate::client_ip::client_ip;
use crate::error::{ApiError, ErrorCode};
use crate::routes::messages::HistoryQuery;
use crate::state::AppState;

/// Agent sessions last a working day.
const AGENT_SESSION_HOURS: i64 = 12;
/// The most conversations one list returns.
const LIST_LIMIT: i64 = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    email: String,
    password: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Session {
    token: String,
    agent: frontdesk_domain::Agent,
    expires_at: Timestamp,
}

/// `POST /api/agent/login`: throttled per account and address (see `limiter`), the attempt
/// counted before the argon2id check, which runs through the hashing gate.
pub async fn login(
    request: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<Login>,
) -> Result<HttpResponse, ApiError> {
    let Login { email, password } = body.into_inner();
    let ip = client_ip(&request, &state.trusted_proxies);
    if state.hashing.is_full() {
        // Saturated: answer before counting anything, so a flood costs no database writes.
        return Err(crate::password_gate::HashingBusy.into());
    }
    let reservation = state
        .logins
        .reserve(&state.store, &email, ip)
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
            time::Duration::hours(AGENT_SESSION_HOURS),
        )
        .await?;
    Ok(HttpResponse::Ok().json(Session {
        token: token.expose().to_owned(),
        agent,
        expires_at,
    }))
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

/// `POST /api/agent/logout`: the token stops working at once, and the WebSockets opened with
/// it close (on every instance).
pub async fn logout(auth: AgentAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let token = auth.token.hash();
    state.store.end_agent_session(&token).await?;
    crate::routes::revoke(&state, &token).await;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/agent/me`.
pub async fn me(auth: AgentAuth) -> HttpResponse {
    HttpResponse::Ok().json(auth.agent)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    mine: Option<bool>,
}

/// `GET /api/agent/conversations?status=waiting|active|closed&mine=true`.
pub async fn list(
    auth: AgentAuth,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let status = match query.status.as_deref() {
        None => None,
        Some(text) => Some(ConversationStatus::parse(text).ok_or_else(|| {
            frontdesk_domain::ValidationError::new("status", "must be waiting, active or closed")
        })?),
    };
    let holder = query.mine.unwrap_or(false).then_some(auth.agent.id);
    let conversations = state
        .store
        .conversation_summaries(status, holder, LIST_LIMIT)
        .await?;
    Ok(HttpResponse::Ok().json(conversations))
}

/// `GET /api/agent/conversations/:id`: the conversation with its customer and Flashback.
pub async fn detail(
    auth: AgentAuth,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let conversation = state.store.conversation(&auth.viewer(), *path).await?;
    let customer = state
        .store
        .customer(conversation.partner_id, &conversation.customer_id)
        .await?;
    let partner = state.store.partner(conversation.partner_id).await?;
    let mut body = serde_json::to_value(&conversation).unwrap_or_default();
    body["customer"] = json!({
        "id": customer.id,
        "email": customer.email,
        "name": customer.name,
        "birthdate": customer.birthdate.map(format_birthdate),
        "partner": {"id": partner.id.to_string(), "name": partner.name, "domain": partner.domain},
        "flashback": customer.flashback.map(|f| f.into_profile()),
        "createdAt": customer.created_at,
        "updatedAt": customer.updated_at,
    });
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /api/agent/conversations/:id/messages?after=&limit=`.
pub async fn messages(
    auth: AgentAuth,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let (after, limit) = query.resolve()?;
    let messages = state
        .store
        .messages(&auth.viewer(), *path, after, limit)
        .await?;
    Ok(HttpResponse::Ok().json(messages))
}

/// `POST /api/agent/conversations/:id/assign`: 409 if another agent holds it.
pub async fn assign(
    auth: AgentAuth,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let conversation = state.store.assign(auth.agent.id, *path).await?;
    Ok(HttpResponse::Ok().json(conversation))
}

/// `POST /api/agent/conversations/:id/close`.
pub async fn close(
    auth: AgentAuth,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let conversation = state
        .store
        .close(auth.agent.id, auth.agent.is_admin, *path)
        .await?;
    Ok(HttpResponse::Ok().json(conversation))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentMessage {
    content: String,
    #[serde(default)]
    metadata: Option<Metadata>,
    #[serde(default)]
    client_message_id: Option<String>,
}

/// `POST /api/agent/conversations/:id/messages`: sent as `agent-<id>`.
pub async fn send(
    auth: AgentAuth,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    body: web::Json<AgentMessage>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let draft = MessageDraft::new(
        *path,
        Sender::Agent(auth.agent.id),
        body.content,
        body.metadata,
        body.client_message_id,
    )?;
    let appended = state.store.append_message(&auth.viewer(), &draft).await?;
    Ok(crate::routes::messages::stored(appended))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadBody {
    message_id: i64,
}

/// `POST /api/agent/conversations/:id/read`: the customer's messages up to `messageId` are read.
pub async fn read(
    auth: AgentAuth,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    body: web::Json<ReadBody>,
) -> Result<HttpResponse, ApiError> {
    let marked = state
        .store
        .mark_read(&auth.viewer(), *path, body.message_id)
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "conversationId": *path,
        "messageId": body.message_id,
        "lastMarked": marked,
    })))
}

/// `POST /api/admin/agents` (admin token, or an admin agent).
pub async fn create_agent(
    _: AdminAuth,
    state: web::Data<AppState>,
    body: web::Json<NewAgent>,
) -> Result<HttpResponse, ApiError> {
    let new_agent = body.into_inner();
    // argon2 takes tens of milliseconds and 19 MiB: through the hashing gate.
    let signup = state
        .hashing
        .run(move |memory| new_agent.validate_with(&mut rand::rng(), memory))
        .await??;
    let agent = state.store.create_agent(&signup).await?;
    Ok(HttpResponse::Created().json(agent))
}
