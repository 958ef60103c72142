//! The support side's API (contract.md, "Agents").

use actix_web::{web, HttpRequest, HttpResponse};
use frontdesk_domain::{AgentMessageRequest, ConversationId, MessageId, NewAgent, Timestamp};
use serde::{Deserialize, Serialize};

use crate::app;
use crate::auth::{AdminAuth, AgentAuth};
use crate::client_ip::client_ip;
use crate::error::ApiError;
use crate::routes::messages::{stored, HistoryQuery};
use crate::state::AppState;

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

/// `POST /api/agent/login`.
pub async fn login(
    request: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<Login>,
) -> Result<HttpResponse, ApiError> {
    let Login { email, password } = body.into_inner();
    let client = client_ip(&request, &state.trusted_proxies);
    let signed_in = app::agents::login(&state, client, email, password).await?;
    Ok(HttpResponse::Ok().json(Session {
        token: signed_in.token.expose().to_owned(),
        agent: signed_in.agent,
        expires_at: signed_in.expires_at,
    }))
}

/// `POST /api/agent/logout`: the token and the WebSockets opened with it stop at once.
pub async fn logout(auth: AgentAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    app::agents::logout(&state, &auth.token.hash()).await?;
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
    let mine = query.mine.unwrap_or(false);
    let conversations =
        app::conversations::queue(&state, &auth.agent, query.status.as_deref(), mine).await?;
    Ok(HttpResponse::Ok().json(conversations))
}

/// `GET /api/agent/conversations/:id`: the conversation with its customer and Flashback.
pub async fn detail(
    auth: AgentAuth,
    state: web::Data<AppState>,
    path: web::Path<ConversationId>,
) -> Result<HttpResponse, ApiError> {
    let detail = app::conversations::detail(&state, &auth.agent, *path).await?;
    Ok(HttpResponse::Ok().json(detail))
}

/// `GET /api/agent/conversations/:id/messages?after=&limit=`.
pub async fn messages(
    auth: AgentAuth,
    state: web::Data<AppState>,
    path: web::Path<ConversationId>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let messages = app::messages::history(&state, &auth.viewer(), *path, query.page()?).await?;
    Ok(HttpResponse::Ok().json(messages))
}

/// `POST /api/agent/conversations/:id/assign`: 409 if another agent holds it.
pub async fn assign(
    auth: AgentAuth,
    state: web::Data<AppState>,
    path: web::Path<ConversationId>,
) -> Result<HttpResponse, ApiError> {
    let conversation = app::conversations::assign(&state, &auth.agent, *path).await?;
    Ok(HttpResponse::Ok().json(conversation))
}

/// `POST /api/agent/conversations/:id/close`.
pub async fn close(
    auth: AgentAuth,
    state: web::Data<AppState>,
    path: web::Path<ConversationId>,
) -> Result<HttpResponse, ApiError> {
    let conversation = app::conversations::close(&state, &auth.agent, *path).await?;
    Ok(HttpResponse::Ok().json(conversation))
}

/// `POST /api/agent/conversations/:id/messages`: sent as `agent-<id>`.
pub async fn send(
    auth: AgentAuth,
    state: web::Data<AppState>,
    path: web::Path<ConversationId>,
    body: web::Json<AgentMessageRequest>,
) -> Result<HttpResponse, ApiError> {
    let appended =
        app::messages::send_as_agent(&state, &auth.agent, *path, body.into_inner()).await?;
    Ok(stored(appended))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadBody {
    message_id: MessageId,
}

/// `POST /api/agent/conversations/:id/read`: the customer's messages up to `messageId` are read.
pub async fn read(
    auth: AgentAuth,
    state: web::Data<AppState>,
    path: web::Path<ConversationId>,
    body: web::Json<ReadBody>,
) -> Result<HttpResponse, ApiError> {
    let marked = app::read::mark(&state, &auth.viewer(), *path, body.message_id).await?;
    Ok(HttpResponse::Ok().json(marked))
}

/// `POST /api/admin/agents` (admin token, or an admin agent).
pub async fn create_agent(
    _: AdminAuth,
    state: web::Data<AppState>,
    body: web::Json<NewAgent>,
) -> Result<HttpResponse, ApiError> {
    let agent = app::agents::create(&state, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(agent))
}
