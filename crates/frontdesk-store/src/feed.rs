//! How an instance learns of new events: a local signal after each commit, PostgreSQL
//! LISTEN/NOTIFY for the other instances' commits, and a slow safety tick. Whatever wakes it,
//! the feed reads the log after the last id it returned, so nothing is skipped or repeated,
//! including across a lost listener connection.

use std::collections::VecDeque;
use std::time::Duration;

use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use frontdesk_domain::{AgentId, Audience, Cursor, CustomerId, PartnerId, SecretHash, Typing};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::error::StoreError;
use crate::events::{StoredEvent, CHANNEL};
use crate::pool::{with_conn, Backend};
use crate::Store;

/// Events read per query when catching up.
const PAGE: i64 = 500;
/// Even with no signal at all, the log is looked at this often.
const SAFETY_TICK: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub(crate) enum Signal {
    /// Something was appended to the log.
    Events,
    Typing(TypingSignal),
    /// A credential (by digest) stopped speaking: sockets that used it must close.
    Revoked(SecretHash),
}

/// A typing indicator on its way to every instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypingSignal {
    /// `<instance>/<connection>` of the sender, which does not hear its own typing.
    pub origin: String,
    partner: i64,
    customer: String,
    agent: Option<i64>,
    all_agents: bool,
    pub typing: Typing,
}

impl TypingSignal {
    pub fn new(origin: String, audience: &Audience, typing: Typing) -> Self {
        Self {
            origin,
            partner: audience.partner.0,
            customer: audience.customer.as_str().to_owned(),
            agent: audience.agent.map(|agent| agent.0),
            all_agents: audience.all_agents,
            typing,
        }
    }

    pub fn audience(&self) -> Audience {
        Audience {
            partner: PartnerId(self.partner),
            customer: CustomerId::from_stored(self.customer.clone()),
            agent: self.agent.map(AgentId),
            all_agents: self.all_agents,
        }
    }
}

/// What the feed yields.
#[derive(Debug, Clone)]
pub enum FeedItem {
    /// New events, in cursor order, each exactly once.
    Events(Vec<StoredEvent>),
    Typing(TypingSignal),
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
        let signals = self.signals.subscribe();
        if self.backend() == Backend::Postgres && self.listener_started.set(()).is_ok() {
            tokio::spawn(listen(self.database_url.clone(), self.signals.clone()));
        }
        Ok(EventFeed {
            last_seen: self.latest_event_id().await?,
            store: self.clone(),
            signals,
            ephemeral: VecDeque::new(),
            more: false,
        })
    }

    /// Tells this instance's feed that events were committed.
    pub(crate) fn events_committed(&self) {
        // No receiver just means nobody is tailing (a CLI command): nothing to wake.
        let _ = self.signals.send(Signal::Events);
    }

    /// Sends a typing indicator to every instance's feed (never stored).
    pub async fn publish_typing(&self, signal: TypingSignal) -> Result<(), StoreError> {
        if self.backend() == Backend::Sqlite {
            let _ = self.signals.send(Signal::Typing(signal));
            return Ok(());
        }
        let payload = format!(
            "t{}",
            serde_json::to_string(&signal).map_err(|e| StoreError::Corrupt(e.to_string()))?
        );
        self.notify(payload).await
    }

    /// Tells every instance's feed that `credential` no longer speaks (never stored: a lost
    /// signal is made up for by each socket's periodic re-check of its credential).
    pub async fn publish_revocation(&self, credential: &SecretHash) -> Result<(), StoreError> {
        if self.backend() == Backend::Sqlite {
            let _ = self.signals.send(Signal::Revoked(credential.clone()));
            return Ok(());
        }
        self.notify(format!("r{}", credential.as_str())).await
    }

    /// A `pg_notify` on the feed's channel, which every instance (this one too) hears.
    async fn notify(&self, payload: String) -> Result<(), StoreError> {
        let mut db = self.pool.get().await?;
        with_conn!(db, |conn| {
            diesel::sql_query("SELECT pg_notify($1, $2)")
                .bind::<Text, _>(CHANNEL)
                .bind::<Text, _>(payload)
                .execute(conn)
                .await?;
        });
        Ok(())
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

/// Holds a dedicated LISTEN connection (not from the pool: notifications need their own), and
/// re-establishes it with backoff. After every (re)connection it signals `Events`, so the
/// feed reads whatever was committed while it was away.
async fn listen(url: String, signals: broadcast::Sender<Signal>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match AsyncPgConnection::establish(&url).await {
            Ok(mut conn) => {
                let listening = diesel::sql_query(format!("LISTEN {CHANNEL}"))
                    .execute(&mut conn)
                    .await;
                match listening {
                    Ok(_) => {
                        tracing::info!("listening for other instances' events");
                        backoff = Duration::from_millis(100);
                        let _ = signals.send(Signal::Events);
                        let mut stream = std::pin::pin!(conn.notifications_stream());
                        while let Some(notification) = stream.next().await {
                            match notification {
                                Ok(n) => {
                                    let _ = signals.send(parse(&n.payload));
                                }
                                Err(error) => {
                                    tracing::warn!(%error, "event listener failed");
                                    break;
                                }
                            }
                        }
                        tracing::warn!("event listener disconnected; reconnecting");
                    }
                    Err(error) => tracing::warn!(%error, "LISTEN failed"),
                }
            }
            Err(error) => tracing::warn!(%error, "event listener cannot connect"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// `t<json>` is typing, `r<hex digest>` a revocation, anything else (the log trigger's empty
/// payload) new events.
fn parse(payload: &str) -> Signal {
    if let Some(digest) = payload.strip_prefix('r') {
        return Signal::Revoked(SecretHash::from_stored(digest.to_owned()));
    }
    payload
        .strip_prefix('t')
        .and_then(|json| serde_json::from_str(json).ok())
        .map_or(Signal::Events, Signal::Typing)
}
