//! Read receipts: the reader has seen the other side's messages up to one of them.

use frontdesk_domain::{ConversationId, MessageId, Viewer};
use serde::Serialize;

use crate::error::ApiError;
use crate::state::AppState;

/// `POST /api/agent/conversations/:id/read`'s answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Marked {
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    /// The highest id newly marked; `null` when nothing was unread (then no event is sent).
    pub last_marked: Option<MessageId>,
}

pub(crate) async fn mark(
    state: &AppState,
    reader: &Viewer,
    conversation_id: ConversationId,
    message_id: MessageId,
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
