//! Feeds the hub from the event log, for as long as the server runs.

use std::sync::Arc;

use frontdesk_store::{FeedItem, Store, StoreError};

use super::Hub;

/// Starts tailing at the log's current end; connections catch up on older events themselves.
pub async fn start(store: &Store, hub: Arc<Hub>) -> Result<(), StoreError> {
    let mut feed = store.feed().await?;
    actix_web::rt::spawn(async move {
        loop {
            match feed.next().await {
                FeedItem::Events(events) => hub.dispatch_events(&events),
                FeedItem::Typing(signal) => hub.dispatch_typing(&signal),
            }
        }
    });
    Ok(())
}
