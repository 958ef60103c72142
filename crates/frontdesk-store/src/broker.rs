//! Signalling between instances, apart from the tables: who is woken when events commit, and
//! how the signals that are never stored (typing, revocations) reach every instance.
//!
//! Two implementations behind one `Broker`: in-process (SQLite: one instance, so a tokio
//! broadcast is all there is) and PostgreSQL (`NOTIFY` on one channel, heard through a
//! dedicated `LISTEN` connection, for several instances on one database). Either way a store's
//! feeds hear one local broadcast; only how signals get into it differs.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use frontdesk_domain::event::MessageDelta;
use frontdesk_domain::{AgentId, Audience, CustomerId, PartnerId, SecretHash, Typing};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::error::StoreError;
use crate::pool::{with_conn, Pool};

/// The channel instances LISTEN on. Payload: empty (new events, sent by the trigger of
/// migrations/postgres/…_event_log_triggers, which also takes the event-log lock), `t` + typing
/// JSON, `d` + a reply delta's JSON, or `r` + a revoked credential's digest.
const CHANNEL: &str = "frontdesk_events";

/// Signals a feed may be waiting for at once (a lagging feed reads the log anyway).
const LOCAL_QUEUE: usize = 1024;

#[derive(Debug, Clone)]
pub(crate) enum Signal {
    /// Something was appended to the log.
    Events,
    Typing(TypingSignal),
    Delta(DeltaSignal),
    /// A credential (by digest) stopped speaking: sockets that used it must close.
    Revoked(SecretHash),
}

/// Which connection sent a typing signal, so that it does not hear its own typing. The server
/// builds it and compares it; the store only carries it, never reads it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
// Serialised as the bare string, as before it had a type of its own: instances of both
// versions understand each other's signals during a rolling update.
#[serde(transparent)]
pub struct Origin(String);

impl Origin {
    pub fn new(origin: impl Into<String>) -> Self {
        Self(origin.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who hears a signal that is never stored: an `Audience` as it travels between instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Route {
    partner: i64,
    customer: String,
    agent: Option<i64>,
    all_agents: bool,
}

impl Route {
    fn of(audience: &Audience) -> Self {
        Self {
            partner: audience.partner.0,
            customer: audience.customer.as_str().to_owned(),
            agent: audience.agent.map(|agent| agent.0),
            all_agents: audience.all_agents,
        }
    }

    fn audience(&self) -> Audience {
        Audience {
            partner: PartnerId(self.partner),
            customer: CustomerId::from_stored(self.customer.clone()),
            agent: self.agent.map(AgentId),
            all_agents: self.all_agents,
        }
    }
}

/// A typing indicator on its way to every instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypingSignal {
    /// The sender, which does not hear its own typing.
    pub origin: Origin,
    #[serde(flatten)]
    route: Route,
    pub typing: Typing,
}

impl TypingSignal {
    pub fn new(origin: Origin, audience: &Audience, typing: Typing) -> Self {
        Self {
            origin,
            route: Route::of(audience),
            typing,
        }
    }

    pub fn audience(&self) -> Audience {
        self.route.audience()
    }
}

/// A piece of an automated reply on its way to every instance (never stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaSignal {
    #[serde(flatten)]
    route: Route,
    pub delta: MessageDelta,
}

impl DeltaSignal {
    pub fn new(audience: &Audience, delta: MessageDelta) -> Self {
        Self {
            route: Route::of(audience),
            delta,
        }
    }

    pub fn audience(&self) -> Audience {
        self.route.audience()
    }
}

/// Where signals are sent and heard; cheap to clone (every clone is the same broker).
#[derive(Clone)]
pub(crate) enum Broker {
    InProcess(InProcess),
    Postgres(PgNotify),
}

impl Broker {
    /// The broker `pool`'s backend calls for: in-process on SQLite, `NOTIFY` on PostgreSQL.
    pub(crate) fn for_pool(pool: &Pool, database_url: &str) -> Self {
        let local = broadcast::channel(LOCAL_QUEUE).0;
        match pool {
            Pool::Sqlite(..) => Broker::InProcess(InProcess { local }),
            Pool::Pg(..) => Broker::Postgres(PgNotify {
                local,
                pool: pool.clone(),
                url: database_url.to_owned(),
                listener_started: Arc::new(OnceLock::new()),
            }),
        }
    }

    /// The same broker, publishing through `pool` (a worker's own; see `Store::with_own_pool`).
    pub(crate) fn with_pool(&self, pool: &Pool) -> Self {
        match self {
            Broker::InProcess(_) => self.clone(),
            Broker::Postgres(pg) => Broker::Postgres(PgNotify {
                pool: pool.clone(),
                ..pg.clone()
            }),
        }
    }

    /// Every signal from now on. On PostgreSQL this also starts (once per broker) the `LISTEN`
    /// connection that hears the other instances.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Signal> {
        match self {
            Broker::InProcess(local) => local.local.subscribe(),
            Broker::Postgres(pg) => {
                let signals = pg.local.subscribe();
                if pg.listener_started.set(()).is_ok() {
                    tokio::spawn(listen(pg.url.clone(), pg.local.clone()));
                }
                signals
            }
        }
    }

    /// This instance's signals only, without starting a listener: what this process sent.
    #[cfg(test)]
    pub(crate) fn local_signals(&self) -> broadcast::Receiver<Signal> {
        match self {
            Broker::InProcess(local) => local.local.subscribe(),
            Broker::Postgres(pg) => pg.local.subscribe(),
        }
    }

    /// Wakes this instance's feeds: events were committed. Other instances hear of them
    /// otherwise (on PostgreSQL, the event table's trigger notifies at commit).
    pub(crate) fn events_committed(&self) {
        let local = match self {
            Broker::InProcess(local) => &local.local,
            Broker::Postgres(pg) => &pg.local,
        };
        // No receiver just means nobody is tailing (a CLI command): nothing to wake.
        let _ = local.send(Signal::Events);
    }

    /// Sends a signal that is never stored to every instance's feeds, this one's too.
    pub(crate) async fn publish(&self, signal: Signal) -> Result<(), StoreError> {
        match self {
            Broker::InProcess(local) => {
                let _ = local.local.send(signal);
                Ok(())
            }
            Broker::Postgres(pg) => pg.notify(encode(&signal)?).await,
        }
    }
}

/// One instance: signals go round this process only.
#[derive(Clone)]
pub(crate) struct InProcess {
    local: broadcast::Sender<Signal>,
}

/// Several instances: `pg_notify` on the shared channel, which every instance (this one too)
/// hears through its listener, which feeds `local`.
#[derive(Clone)]
pub(crate) struct PgNotify {
    local: broadcast::Sender<Signal>,
    /// Where `NOTIFY` is sent from.
    pool: Pool,
    /// Where the listener connects.
    url: String,
    listener_started: Arc<OnceLock<()>>,
}

impl PgNotify {
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
                                    let _ = signals.send(decode(&n.payload));
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

/// A signal as a `NOTIFY` payload (see `CHANNEL`).
fn encode(signal: &Signal) -> Result<String, StoreError> {
    Ok(match signal {
        Signal::Events => String::new(),
        Signal::Typing(typing) => format!(
            "t{}",
            serde_json::to_string(typing).map_err(|e| StoreError::Corrupt(e.to_string()))?
        ),
        Signal::Delta(delta) => format!(
            "d{}",
            serde_json::to_string(delta).map_err(|e| StoreError::Corrupt(e.to_string()))?
        ),
        Signal::Revoked(credential) => format!("r{}", credential.as_str()),
    })
}

/// `t<json>` is typing, `d<json>` a reply's delta, `r<hex digest>` a revocation, anything else
/// (the log trigger's empty payload) new events.
fn decode(payload: &str) -> Signal {
    if let Some(digest) = payload.strip_prefix('r') {
        return Signal::Revoked(SecretHash::from_stored(digest.to_owned()));
    }
    if let Some(json) = payload.strip_prefix('d') {
        return serde_json::from_str(json).map_or(Signal::Events, Signal::Delta);
    }
    payload
        .strip_prefix('t')
        .and_then(|json| serde_json::from_str(json).ok())
        .map_or(Signal::Events, Signal::Typing)
}

#[cfg(test)]
mod tests {
    use frontdesk_domain::Secret;

    use super::*;

    fn typing() -> TypingSignal {
        let audience = Audience {
            partner: PartnerId(7),
            customer: CustomerId::from_stored("ann".into()),
            agent: Some(AgentId(3)),
            all_agents: false,
        };
        let typing = Typing {
            conversation_id: frontdesk_domain::ConversationId(11),
            is_typing: true,
            is_agent: false,
        };
        TypingSignal::new(Origin::new("00ab/42"), &audience, typing)
    }

    #[test]
    fn notify_payloads_come_back_as_the_signal_that_was_sent() {
        let Ok(payload) = encode(&Signal::Typing(typing())) else {
            panic!("typing did not encode");
        };
        assert!(
            matches!(decode(&payload), Signal::Typing(back) if back == typing()),
            "{payload}"
        );
        let credential = Secret::presented("fdc_gone").hash();
        let Ok(payload) = encode(&Signal::Revoked(credential.clone())) else {
            panic!("revocation did not encode");
        };
        assert!(matches!(decode(&payload), Signal::Revoked(back) if back == credential));
        // The event-log trigger's payload, and anything unreadable: read the log.
        assert!(matches!(decode(""), Signal::Events));
        assert!(matches!(decode("t{not json"), Signal::Events));
    }

    #[test]
    fn the_origin_travels_as_the_bare_string_it_was_made_of() {
        // What instances of the previous version sent and expect.
        let json = serde_json::to_value(typing()).unwrap_or_default();
        assert_eq!(json["origin"], "00ab/42");
    }
}
