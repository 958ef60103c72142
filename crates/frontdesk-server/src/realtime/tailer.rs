//! Feeds the hub from the event log, for as long as the server runs.

use std::sync::Arc;

use frontdesk_store::{FeedItem, Store, StoreError};

use super::Hub;
use crate::app::replies::Replies;
use crate::key_cache::KeyCache;

/// Starts tailing at the log's current end; connections catch up on older events themselves.
/// A revoked credential is forgotten by the key cache and closes the sockets that used it.
/// Every event also reaches the automated responder, whose running jobs react to a newer
/// customer message or an agent taking the conversation.
pub async fn start(
    store: &Store,
    hub: Arc<Hub>,
    keys: Arc<KeyCache>,
    replies: Arc<Replies>,
) -> Result<(), StoreError> {
    let mut feed = store.feed().await?;
    actix_web::rt::spawn(async move {
        loop {
            match feed.next().await {
                FeedItem::Events(events) => {
                    hub.dispatch_events(&events);
                    replies.observe(&events);
                }
                FeedItem::Typing(signal) => hub.dispatch_typing(&signal),
                FeedItem::Delta(signal) => hub.dispatch_delta(&signal),
                FeedItem::Revoked(credential) => {
                    keys.forget(&credential);
                    let closed = hub.revoke(&credential);
                    if closed > 0 {
                        tracing::info!(sockets = closed, "credential revoked; closing its sockets");
                    }
                }
            }
        }
    });
    Ok(())
}
