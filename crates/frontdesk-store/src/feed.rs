//! Each instance's tail of the event log. Whatever wakes it (its own commits, another
//! instance's, a slow safety tick; see `broker.rs` for how signals arrive), the feed reads the
//! log after the last id it returned, so nothing is skipped or repeated, including across a lost
//! listener connection.

use std::collections::VecDeque;
use std::time::Duration;

use frontdesk_domain::{Cursor, SecretHash};
use tokio::sync::broadcast;

use crate::broker::{DeltaSignal, Signal, TypingSignal};
use crate::error::StoreError;
use crate::events::StoredEvent;
use crate::Store;

/// Events read per query when catching up.
const PAGE: i64 = 500;
/// Even with no signal at all, the log is looked at this often.
const SAFETY_TICK: Duration = Duration::from_secs(1);

/// What the feed yields.
#[derive(Debug, Clone)]
pub enum FeedItem {
    /// New events, in cursor order, each exactly once.
    Events(Vec<StoredEvent>),
    Typing(TypingSignal),
    /// A piece of an automated reply being written.
    Delta(DeltaSignal),
    /// A credential was revoked (logout, key rotation) on some instance.
    Revoked(SecretHash),
}

/// One instance's tail of the event log.
pub struct EventFeed {
    store: Store,
    last_seen: Cursor,
    signals: broadcast::Receiver<Signal>,
    /// Typing and revocation signals (never logged), in the order they came.
    ephemeral: VecDeque<FeedItem>,
    /// The last read filled a page: read again without waiting.
    more: bool,
}

impl Store {
    /// Starts tailing the log from its current end. On PostgreSQL this also starts (once per
    /// store) the LISTEN connection that hears other instances.
    pub async fn feed(&self) -> Result<EventFeed, StoreError> {
        // Subscribed before the end is read, so a commit in between is not missed.
        let signals = self.broker.subscribe();
        Ok(EventFeed {
            last_seen: self.latest_event_id().await?,
            store: self.clone(),
            signals,
            ephemeral: VecDeque::new(),
            more: false,
        })
    }

    /// Sends a typing indicator to every instance's feed (never stored).
    pub async fn publish_typing(&self, signal: TypingSignal) -> Result<(), StoreError> {
        self.broker.publish(Signal::Typing(signal)).await
    }

    /// Sends a piece of an automated reply to every instance's feed (never stored).
    pub async fn publish_delta(&self, signal: DeltaSignal) -> Result<(), StoreError> {
        self.broker.publish(Signal::Delta(signal)).await
    }

    /// Tells every instance's feed that `credential` no longer speaks (never stored: a lost
    /// signal is made up for by each socket's periodic re-check of its credential).
    pub async fn publish_revocation(&self, credential: &SecretHash) -> Result<(), StoreError> {
        self.broker
            .publish(Signal::Revoked(credential.clone()))
            .await
    }
}

impl EventFeed {
    /// The next batch of events or typing signal. Waits for one; database errors are logged
    /// and retried, never returned, so the caller's loop is simple.
    pub async fn next(&mut self) -> FeedItem {
        let mut backoff = Duration::from_millis(50);
        loop {
            if let Some(item) = self.ephemeral.pop_front() {
                return item;
            }
            if !self.more && !self.wait_for_signal().await {
                continue;
            }
            match self.store.events_after(self.last_seen, PAGE).await {
                Ok(batch) => {
                    self.more = batch.len() as i64 == PAGE;
                    if let Some(last) = batch.last() {
                        self.last_seen = last.id;
                        return FeedItem::Events(batch);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "reading the event log failed; retrying");
                    self.more = true;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Waits for a signal; true when the log should be read. Typing signals are queued.
    async fn wait_for_signal(&mut self) -> bool {
        let first = tokio::select! {
            signal = self.signals.recv() => signal,
            _ = tokio::time::sleep(SAFETY_TICK) => Ok(Signal::Events),
        };
        let mut read_log = self.take(first);
        // Many commits in a burst need one read, not one each.
        loop {
            match self.signals.try_recv() {
                Ok(signal) => read_log |= self.take(Ok(signal)),
                Err(broadcast::error::TryRecvError::Lagged(_)) => read_log = true,
                Err(_) => break,
            }
        }
        read_log
    }

    fn take(&mut self, signal: Result<Signal, broadcast::error::RecvError>) -> bool {
        match signal {
            Ok(Signal::Typing(typing)) => {
                self.ephemeral.push_back(FeedItem::Typing(typing));
                false
            }
            Ok(Signal::Delta(delta)) => {
                self.ephemeral.push_back(FeedItem::Delta(delta));
                false
            }
            Ok(Signal::Revoked(credential)) => {
                self.ephemeral.push_back(FeedItem::Revoked(credential));
                false
            }
            // A lagging receiver lost signals, not events: the log has them all.
            Ok(Signal::Events) | Err(broadcast::error::RecvError::Lagged(_)) => true,
            Err(broadcast::error::RecvError::Closed) => false,
        }
    }
}
