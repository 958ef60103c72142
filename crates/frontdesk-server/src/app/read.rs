//! Read receipts: the reader has seen the other side's messages up to one of them.

use frontdesk_domain::Viewer;
use serde::Serialize;

use crate::error::ApiError;
use crate::state::AppState;

/// `POST /api/agent/conversations/:id/read`'s answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Marked {
    pub conversation_id: i64,
    pub message_id: i64,
    /// The highest id newly marked; `null` when nothing was unread (then no event is sent).
    pub last_marked: Option<i64>,
}

pub(crate) async fn mark(
    state: &AppState,
    reader: &Viewer,
    conversation_id: i64,
    message_id: i64,
) -> Result<Marked, ApiError> {
    let last_marked = state
        .store
        .mark_read(reader, conversation_id, message_id)
        .await?;
    Ok(Marked {
        conversation_id,
        message_id,
        last_marked,
    })
}
