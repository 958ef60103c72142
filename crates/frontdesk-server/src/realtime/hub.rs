//! This instance's connections, indexed by who they are, and delivery to them.
//!
//! Delivery never waits: each connection has a bounded queue, and a connection whose queue is
//! full of events is told to close (it reconnects with `since` and loses nothing). A slow
//! client can therefore never slow the others down. Typing is ephemeral: it only takes a slot
//! while at least half the queue is free, and is dropped otherwise, so no amount of typing
//! can fill a queue and get its connection closed.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytestring::ByteString;
use frontdesk_domain::event::{customers_hear, event_frame, plain_frame};
use frontdesk_domain::{AgentId, Audience, Cursor, CustomerId, PartnerId, Recipient, SecretHash};
use frontdesk_store::{DeltaSignal, Origin, StoredEvent, TypingSignal};
use rand::Rng;
use tokio::sync::{mpsc, Notify};

use super::admission::{Caps, Counts, Refused};

/// What the hub hands a connection. One pointer wide: every connection's queue holds a block
/// of these from the start, so their size is paid per idle connection.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A frame, shared by all its recipients.
    Frame(Arc<Frame>),
    /// The server is stopping: close with 1001.
    Shutdown,
}

#[derive(Debug)]
pub struct Frame {
    /// The event's cursor; `None` for frames outside the log (typing).
    pub cursor: Option<Cursor>,
    pub text: ByteString,
}

/// One registered connection, as the hub routes to it.
struct Member {
    recipient: Recipient,
    /// The digest of the credential it authenticated with.
    credential: SecretHash,
    tx: mpsc::Sender<Outbound>,
    kill: Arc<Notify>,
    revoked: Arc<Notify>,
    /// Told to close already: said once in the log, not once per frame that followed.
    killed: bool,
}

#[derive(Default)]
struct Registry {
    connections: HashMap<u64, Member>,
    customers: HashMap<(PartnerId, CustomerId), HashSet<u64>>,
    /// Customer connections per partner, for its cap.
    partners: HashMap<PartnerId, usize>,
    agents: HashMap<AgentId, HashSet<u64>>,
    every_agent: HashSet<u64>,
    /// Connections by the credential they used, so a revocation finds them.
    credentials: HashMap<SecretHash, HashSet<u64>>,
    /// Credentials revoked lately, and when: a handshake that checked its credential just
    /// before the revocation registers just after it, and must be refused then.
    revoked_lately: HashMap<SecretHash, Instant>,
}

/// How long a revoked credential is refused at registration: far longer than a handshake
/// takes between checking its credential and registering.
const REVOKED_LATELY: Duration = Duration::from_secs(60);
/// Revocations remembered at most (logouts and rotations are rare; a flood of them must not
/// grow memory).
const REVOKED_LATELY_MAX: usize = 10_000;

pub struct Hub {
    /// `<instance>/`, the start of this instance's typing origins: tells them from other
    /// instances'.
    origin_prefix: String,
    next_id: AtomicU64,
    queue: usize,
    caps: Caps,
    registry: Mutex<Registry>,
    /// Raised once, when the server stops: ends writes waiting on peers that do not read.
    stopping: Notify,
    stopped: AtomicBool,
}

/// A registered connection; dropping it unregisters.
pub struct Subscription {
    pub id: u64,
    pub rx: mpsc::Receiver<Outbound>,
    /// Notified when the queue overflowed: the connection must close.
    pub kill: Arc<Notify>,
    /// Notified when its credential was revoked (logout, key rotation): it must close.
    pub revoked: Arc<Notify>,
    hub: Arc<Hub>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.remove(self.id);
    }
}

impl Hub {
    /// `queue`: frames a connection may have waiting before it counts as too slow. At least
    /// one commit's worth: a burst from a single batch is not slowness.
    pub fn new(queue: usize, caps: Caps) -> Self {
        Self {
            origin_prefix: format!("{:016x}/", rand::rng().random::<u64>()),
            next_id: AtomicU64::new(1),
            queue: queue.max(frontdesk_store::MAX_APPEND_BATCH),
            caps,
            registry: Mutex::new(Registry::default()),
            stopping: Notify::new(),
            stopped: AtomicBool::new(false),
        }
    }

    /// Resolves once the server is stopping (at once if it already is).
    pub async fn stopping(&self) {
        // Created before the check, so a `notify_waiters` in between is not missed.
        let notified = self.stopping.notified();
        if self.stopped.load(Ordering::Acquire) {
            return;
        }
        notified.await;
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding the lock leaves plain maps behind; they are still usable.
        self.registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a connection unless that would exceed a cap: the check and the registration
    /// happen under one lock, so concurrent handshakes cannot overshoot.
    pub fn subscribe(
        self: &Arc<Self>,
        recipient: Recipient,
        credential: SecretHash,
    ) -> Result<Subscription, Refused> {
        let mut registry = self.registry();
        if registry
            .revoked_lately
            .get(&credential)
            .is_some_and(|at| at.elapsed() < REVOKED_LATELY)
        {
            return Err(Refused::Revoked);
        }
        let (own, partner) = match &recipient {
            Recipient::Customer(partner, customer) => (
                registry
                    .customers
                    .get(&(*partner, customer.clone()))
                    .map_or(0, HashSet::len),
                Some(registry.partners.get(partner).copied().unwrap_or(0)),
            ),
            Recipient::Agent(agent) => (registry.agents.get(agent).map_or(0, HashSet::len), None),
        };
        let counts = Counts {
            own,
            partner,
            total: registry.connections.len(),
        };
        self.caps
            .admit(counts, matches!(recipient, Recipient::Agent(_)))?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.queue);
        let kill = Arc::new(Notify::new());
        let revoked = Arc::new(Notify::new());
        match &recipient {
            Recipient::Customer(partner, customer) => {
                registry
                    .customers
                    .entry((*partner, customer.clone()))
                    .or_default()
                    .insert(id);
                *registry.partners.entry(*partner).or_default() += 1;
            }
            Recipient::Agent(agent) => {
                registry.agents.entry(*agent).or_default().insert(id);
                registry.every_agent.insert(id);
            }
        }
        registry
            .credentials
            .entry(credential.clone())
            .or_default()
            .insert(id);
        registry.connections.insert(
            id,
            Member {
                recipient,
                credential,
                tx,
                kill: Arc::clone(&kill),
                revoked: Arc::clone(&revoked),
                killed: false,
            },
        );
        Ok(Subscription {
            id,
            rx,
            kill,
            revoked,
            hub: Arc::clone(self),
        })
    }

    fn remove(&self, id: u64) {
        let mut registry = self.registry();
        let Some(connection) = registry.connections.remove(&id) else {
            return;
        };
        if let Some(set) = registry.credentials.get_mut(&connection.credential) {
            set.remove(&id);
            if set.is_empty() {
                registry.credentials.remove(&connection.credential);
            }
        }
        match connection.recipient {
            Recipient::Customer(partner, customer) => {
                let key = (partner, customer);
                if let Some(set) = registry.customers.get_mut(&key) {
                    set.remove(&id);
                    if set.is_empty() {
                        registry.customers.remove(&key);
                    }
                }
                if let Some(count) = registry.partners.get_mut(&partner) {
                    *count = count.saturating_sub(1);
                    if *count == 0 {
                        registry.partners.remove(&partner);
                    }
                }
            }
            Recipient::Agent(agent) => {
                if let Some(set) = registry.agents.get_mut(&agent) {
                    set.remove(&id);
                    if set.is_empty() {
                        registry.agents.remove(&agent);
                    }
                }
                registry.every_agent.remove(&id);
            }
        }
    }

    /// Tells every local connection that used `credential` to close; returns how many.
    pub fn revoke(&self, credential: &SecretHash) -> usize {
        let mut registry = self.registry();
        let now = Instant::now();
        registry
            .revoked_lately
            .retain(|_, at| now.saturating_duration_since(*at) < REVOKED_LATELY);
        if registry.revoked_lately.len() < REVOKED_LATELY_MAX {
            registry.revoked_lately.insert(credential.clone(), now);
        }
        let Some(ids) = registry.credentials.get(credential) else {
            return 0;
        };
        for id in ids {
            if let Some(connection) = registry.connections.get(id) {
                connection.revoked.notify_one();
            }
        }
        ids.len()
    }

    /// `<instance>/<connection>`: the origin of a typing signal. The store carries it to
    /// every instance without reading it; `own_connection` reads it back.
    pub fn origin(&self, connection: u64) -> Origin {
        Origin::new(format!("{}{connection}", self.origin_prefix))
    }

    /// The local connection an origin names, `None` for another instance's.
    fn own_connection(&self, origin: &Origin) -> Option<u64> {
        origin
            .as_str()
            .strip_prefix(&self.origin_prefix)
            .and_then(|id| id.parse::<u64>().ok())
    }

    /// Delivers log events, in order, to every local connection that hears them.
    pub fn dispatch_events(&self, events: &[StoredEvent]) {
        let mut registry = self.registry();
        for event in events {
            let outbound = Outbound::Frame(Arc::new(Frame {
                cursor: Some(event.id),
                text: ByteString::from(event_frame(&event.kind, &event.payload, event.id)),
            }));
            let mut audience = registry.audience(&event.audience, None);
            if !customers_hear(&event.kind) {
                registry.drop_customers(&mut audience, &event.audience);
            }
            for id in audience {
                registry.offer(id, outbound.clone());
            }
        }
    }

    /// A piece of an automated reply, to the conversation's sockets; dropped for a socket
    /// whose queue is half full, like typing (the stored message follows anyway).
    pub fn dispatch_delta(&self, signal: &DeltaSignal) {
        let outbound = Outbound::Frame(Arc::new(Frame {
            cursor: None,
            text: ByteString::from(plain_frame("messageDelta", &signal.delta)),
        }));
        let mut registry = self.registry();
        let reserve = self.queue / 2;
        for id in registry.audience(&signal.audience(), None) {
            registry.offer_ephemeral(id, outbound.clone(), reserve);
        }
    }

    pub fn dispatch_typing(&self, signal: &TypingSignal) {
        let outbound = Outbound::Frame(Arc::new(Frame {
            cursor: None,
            text: ByteString::from(plain_frame("typing", &signal.typing)),
        }));
        let mut registry = self.registry();
        let origin = self.own_connection(&signal.origin);
        // Typing only takes a slot while half the queue is free: events keep their room.
        let reserve = self.queue / 2;
        for id in registry.audience(&signal.audience(), origin) {
            registry.offer_ephemeral(id, outbound.clone(), reserve);
        }
    }

    /// Asks every connection to close with 1001 (going away).
    pub fn shutdown(&self) {
        self.stopped.store(true, Ordering::Release);
        self.stopping.notify_waiters();
        let mut registry = self.registry();
        let ids: Vec<u64> = registry.connections.keys().copied().collect();
        for id in ids {
            registry.offer(id, Outbound::Shutdown);
        }
    }
}

impl Registry {
    /// Removes from `ids` the connections of `audience`'s customer.
    fn drop_customers(&self, ids: &mut Vec<u64>, audience: &Audience) {
        if let Some(set) = self
            .customers
            .get(&(audience.partner, audience.customer.clone()))
        {
            ids.retain(|id| !set.contains(id));
        }
    }

    /// The local connections that hear `audience`, each once, except `skip`.
    fn audience(&self, audience: &Audience, skip: Option<u64>) -> Vec<u64> {
        let mut ids: Vec<u64> = Vec::new();
        if let Some(set) = self
            .customers
            .get(&(audience.partner, audience.customer.clone()))
        {
            ids.extend(set);
        }
        if audience.all_agents {
            ids.extend(&self.every_agent);
        } else if let Some(set) = audience.agent.and_then(|agent| self.agents.get(&agent)) {
            ids.extend(set);
        }
        ids.sort_unstable();
        ids.dedup();
        ids.retain(|id| Some(*id) != skip);
        ids
    }

    /// Queues a frame without waiting; a full queue marks the connection too slow.
    fn offer(&mut self, id: u64, outbound: Outbound) {
        let Some(connection) = self.connections.get_mut(&id) else {
            return;
        };
        match connection.tx.try_send(outbound) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !connection.killed {
                    connection.killed = true;
                    tracing::info!(
                        connection = id,
                        "outbound queue full; disconnecting slow client"
                    );
                }
                connection.kill.notify_one();
            }
            // The connection is closing; it unregisters itself.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Queues a frame that may be lost (typing) only while more than `reserve` slots are
    /// free; otherwise drops it. Never marks the connection too slow.
    fn offer_ephemeral(&mut self, id: u64, outbound: Outbound, reserve: usize) {
        let Some(connection) = self.connections.get(&id) else {
            return;
        };
        if connection.tx.capacity() > reserve {
            // Full or closed in between: dropped like any surplus typing.
            let _ = connection.tx.try_send(outbound);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn frame() -> Outbound {
        Outbound::Frame(Arc::new(Frame {
            cursor: None,
            text: ByteString::from_static("{}"),
        }))
    }

    /// One connection with a queue of `size`; its receiver and kill signal.
    fn registry(size: usize) -> (Registry, mpsc::Receiver<Outbound>, Arc<Notify>) {
        let (tx, rx) = mpsc::channel(size);
        let kill = Arc::new(Notify::new());
        let mut registry = Registry::default();
        let connection = Member {
            recipient: Recipient::Agent(AgentId(1)),
            credential: frontdesk_domain::Secret::presented("fda_test").hash(),
            tx,
            kill: Arc::clone(&kill),
            revoked: Arc::new(Notify::new()),
            killed: false,
        };
        registry.connections.insert(1, connection);
        (registry, rx, kill)
    }

    #[test]
    fn a_credential_revoked_before_its_socket_registers_is_refused() {
        let caps = Caps {
            per_customer: 8,
            per_agent: 8,
            per_partner: 8,
            total: 8,
        };
        let hub = Arc::new(Hub::new(128, caps));
        let revoked = frontdesk_domain::Secret::presented("fda_gone").hash();
        let other = frontdesk_domain::Secret::presented("fda_kept").hash();
        // The logout ran between the handshake's credential check and its registration.
        assert_eq!(hub.revoke(&revoked), 0);
        assert!(matches!(
            hub.subscribe(Recipient::Agent(AgentId(1)), revoked),
            Err(Refused::Revoked)
        ));
        assert!(hub.subscribe(Recipient::Agent(AgentId(1)), other).is_ok());
    }

    #[test]
    fn a_hub_knows_its_own_typing_origins_only() {
        let caps = Caps {
            per_customer: 8,
            per_agent: 8,
            per_partner: 8,
            total: 8,
        };
        let (here, there) = (Hub::new(128, caps), Hub::new(128, caps));
        assert_eq!(here.own_connection(&here.origin(42)), Some(42));
        assert_eq!(here.own_connection(&there.origin(42)), None);
        assert_eq!(here.own_connection(&Origin::new("garbage")), None);
    }

    #[tokio::test]
    async fn typing_stops_at_half_a_queue_and_never_kills() {
        let (mut registry, rx, kill) = registry(8);
        for _ in 0..1_000 {
            registry.offer_ephemeral(1, frame(), 4);
        }
        assert_eq!(rx.len(), 4, "typing filled more than half the queue");
        // Events still have room.
        registry.offer(1, frame());
        assert_eq!(rx.len(), 5);
        let killed = tokio::time::timeout(Duration::from_millis(10), kill.notified()).await;
        assert!(killed.is_err(), "typing got the connection killed");
    }

    #[tokio::test]
    async fn a_full_queue_kills_once_and_says_so_once() {
        let (mut registry, _rx, kill) = registry(2);
        for _ in 0..100 {
            registry.offer(1, frame());
        }
        assert!(registry.connections[&1].killed);
        let killed = tokio::time::timeout(Duration::from_secs(1), kill.notified()).await;
        assert!(killed.is_ok());
    }
}
