//! Whether this instance can serve: the database answers, and writes are not failing for
//! lack of space.

use crate::error::ApiError;
use crate::state::AppState;

/// `storage_full` from the last write that failed for lack of space until one succeeds (the
/// database still answers reads then); `unavailable` when the database does not answer.
pub(crate) async fn check(state: &AppState) -> Result<(), ApiError> {
    if state.store.storage_full() {
        return Err(ApiError::storage_full());
    }
    state
        .store
        .ping()
        .await
        .map_err(|_| ApiError::unavailable("the database is not answering"))
}
