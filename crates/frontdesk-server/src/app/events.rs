//! The event log as a WebSocket client reads it: from a cursor, or from now.

use frontdesk_domain::{Cursor, Recipient};
use frontdesk_store::StoredEvent;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// Events replayed per query while catching up.
const REPLAY_PAGE: i64 = 500;

/// Refuses a cursor from the future (another database, a typo), which would silently skip
/// every live event up to it, while the client can still be told.
pub(crate) async fn check_since(state: &AppState, since: Cursor) -> Result<(), ApiError> {
    let newest = state.store.latest_event_id().await?;
    if since > newest {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            format!("since is beyond the newest cursor ({newest}); reconnect without since"),
        ));
    }
    Ok(())
}

/// The next page of what `recipient` hears after cursor `after`, and whether more may follow.
pub(crate) async fn replay(
    state: &AppState,
    recipient: &Recipient,
    after: Cursor,
) -> Result<(Vec<StoredEvent>, bool), ApiError> {
    let page = state
        .store
        .events_for(recipient, after, REPLAY_PAGE)
        .await?;
    let full = page.len() as i64 >= REPLAY_PAGE;
    Ok((page, full))
}

/// The newest cursor: a client connecting without `since` hears what comes after it.
pub(crate) async fn newest(state: &AppState) -> Result<Cursor, ApiError> {
    Ok(state.store.latest_event_id().await?)
}
