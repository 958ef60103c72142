use actix_web::{web, HttpResponse};
use frontdesk_domain::limits::PAGE_MAX_MESSAGES;
use frontdesk_domain::message::PartnerMessageRequest;
use frontdesk_domain::ValidationError;
use serde::Deserialize;

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
    let draft = body.into_inner().into_draft()?;
    let appended = state.store.append_message(&caller.0, &draft).await?;
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    after: Option<i64>,
    limit: Option<i64>,
}

impl HistoryQuery {
    /// `after` defaults to the start; `limit` to the cap, and larger values are capped.
    pub fn resolve(&self) -> Result<(i64, i64), ValidationError> {
        let after = self.after.unwrap_or(0);
        if after < 0 {
            return Err(ValidationError::new(
                "after",
                "must be a message id, 0 or more",
            ));
        }
        let limit = self.limit.unwrap_or(PAGE_MAX_MESSAGES);
        if limit < 1 {
            return Err(ValidationError::new("limit", "must be at least 1"));
        }
        Ok((after, limit.min(PAGE_MAX_MESSAGES)))
    }
}

/// `GET /api/partner/messages/:conversationId?after=&limit=`: oldest first.
pub async fn history(
    caller: CallerAuth,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let (after, limit) = query.resolve()?;
    let messages = state
        .store
        .messages(&caller.0, path.into_inner(), after, limit)
        .await?;
    Ok(HttpResponse::Ok().json(messages))
}
