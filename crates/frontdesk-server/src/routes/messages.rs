use actix_web::{web, HttpResponse};
use frontdesk_domain::{ConversationId, MessageId, Page, PartnerMessageRequest};
use serde::Deserialize;

use crate::app;
use crate::auth::CallerAuth;
use crate::error::ApiError;
use crate::state::AppState;

/// `POST /api/partner/messages`: 201 with the stored message; 200 with the same message when
/// a `clientMessageId` is sent again.
pub async fn send(
    caller: CallerAuth,
    state: web::Data<AppState>,
    body: web::Json<PartnerMessageRequest>,
) -> Result<HttpResponse, ApiError> {
    let appended = app::messages::send(&state, &caller.0, body.into_inner()).await?;
    Ok(stored(appended))
}

/// 201 with a new message; 200 with the one stored earlier under the same `clientMessageId`.
pub(crate) fn stored(appended: frontdesk_store::Appended) -> HttpResponse {
    let mut response = if appended.created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    response.json(appended.message)
}

/// `?after=<message id>&limit=<n>`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    after: Option<MessageId>,
    limit: Option<i64>,
}

impl HistoryQuery {
    pub fn page(&self) -> Result<Page, ApiError> {
        Ok(Page::new(self.after, self.limit)?)
    }
}

/// `GET /api/partner/messages/:conversationId?after=&limit=`: oldest first.
pub async fn history(
    caller: CallerAuth,
    state: web::Data<AppState>,
    path: web::Path<ConversationId>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let messages = app::messages::history(&state, &caller.0, *path, query.page()?).await?;
    Ok(HttpResponse::Ok().json(messages))
}
