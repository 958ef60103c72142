//! Automated replies (contract.md, "Automated replies"; docs/automated-replies.md).
//!
//! A customer's message in a conversation no agent holds leaves a durable reply job in the
//! same commit (the store's group commit), held by this instance under a lease. This instance
//! is told at once (`trigger`); every instance's sweep finds jobs whose lease ran out. A job is
//! composed (the model streams `messageDelta` frames, or the offline responder greets) and its
//! reply stored through the group commit, checked in its batch against the job and the locked
//! conversation: an agent who took it meanwhile wins and the half-made reply is dropped.
//! `typing` is switched on while a reply is written and off when the job ends, however it
//! ends. The customer's request never waits for any of it.

mod compose;
mod job;
mod progress;
mod stats;

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use frontdesk_domain::{ConversationId, ConversationStatus, MessageId};
use frontdesk_llm::{LlmClient, OfflineResponder};
use frontdesk_store::{Store, StoredEvent};
use serde::Deserialize;
use tokio::sync::{mpsc, watch};

pub(crate) use stats::ReplyStats;

use crate::reply_config::ReplyConfig;

/// Triggers waiting for the dispatcher; beyond it a trigger is left to the sweep (the job is
/// in the database already).
const TRIGGER_QUEUE: usize = 4096;
/// Jobs one sweep claims at most.
const SWEEP_BATCH: i64 = 64;

/// Why a running job should look again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nudge {
    Quiet,
    /// A newer customer message: the reply must see it too.
    Newer(MessageId),
    /// The conversation left the queue (taken or closed): say nothing.
    Stop,
}

/// The handle the rest of the server holds: cheap to share between threads.
pub(crate) struct Replies {
    triggers: Option<mpsc::Sender<(ConversationId, MessageId)>>,
    /// This instance's running jobs, so the tailer's events can nudge them.
    running: Mutex<HashMap<ConversationId, watch::Sender<Nudge>>>,
    pub stats: ReplyStats,
}

impl Replies {
    /// No automated replies (`--automated-replies off`).
    pub(crate) fn off() -> Arc<Self> {
        Arc::new(Self {
            triggers: None,
            running: Mutex::default(),
            stats: ReplyStats::default(),
        })
    }

    /// Starts the dispatcher and the sweep on a thread of their own, with `store` (a pool of
    /// the responder's own).
    pub(crate) fn start(store: Store, config: &ReplyConfig) -> Result<Arc<Self>, String> {
        config.check()?;
        let composer = match config.llm() {
            Some(llm) => {
                let system = match &config.llm_system_prompt_file {
                    Some(path) => std::fs::read_to_string(path).map_err(|e| {
                        format!("cannot read the system prompt {}: {e}", path.display())
                    })?,
                    None => compose::DEFAULT_SYSTEM_PROMPT.to_owned(),
                };
                let streamed = llm.tools;
                let client = Box::new(LlmClient::new(llm).map_err(|e| e.to_string())?);
                compose::Composer::Model {
                    client,
                    system,
                    history_tokens: config.llm_history_tokens,
                    streamed,
                    partners: Default::default(),
                }
            }
            None => {
                compose::Composer::Offline(OfflineResponder::new(config.offline_greeting.clone()))
            }
        };
        let (tx, rx) = mpsc::channel(TRIGGER_QUEUE);
        let replies = Arc::new(Self {
            triggers: Some(tx),
            running: Mutex::default(),
            stats: ReplyStats::default(),
        });
        // The store claims new jobs for this instance under the same name.
        let owner = store.instance().to_owned();
        let lease = config.lease();
        let max_jobs = config.llm().map_or(usize::MAX, |llm| llm.max_in_flight);
        let policy = job::Policy {
            budget: config.budget(),
            phrases: config.phrases(),
            handoff_notice: config.handoff_notice.clone(),
        };
        let shared = Arc::clone(&replies);
        // A thread of its own: hundreds of replies at once keep a core busy (prompts, the
        // model's HTTP, the database), which on the server's main thread would also slow the
        // tailer that feeds every WebSocket. Its store's connections are opened, and driven,
        // there.
        std::thread::Builder::new()
            .name("frontdesk-replies".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        tracing::error!(%error, "automated replies cannot start");
                        return;
                    }
                };
                let worker = Rc::new(job::Worker {
                    store,
                    owner,
                    lease,
                    max_jobs,
                    composer,
                    policy,
                    replies: shared,
                });
                tokio::task::LocalSet::new().block_on(&runtime, dispatch(worker, rx));
            })
            .map_err(|e| format!("cannot start its thread: {e}"))?;
        Ok(replies)
    }

    /// A customer's message `message` now waits in `conversation`: answer it. Never waits.
    pub(crate) fn trigger(&self, conversation: ConversationId, message: MessageId) {
        if let Some(triggers) = &self.triggers {
            // Full: the sweep finds the job in the database (it looks at this instance's own
            // jobs that nothing here runs, too).
            let _ = triggers.try_send((conversation, message));
        }
    }

    /// The tailer's events (from every instance): a running job learns of a newer customer
    /// message, or that the conversation left the queue.
    pub(crate) fn observe(&self, events: &[StoredEvent]) {
        let running = self.running();
        if running.is_empty() {
            return;
        }
        for event in events {
            let Some(id) = event.conversation_id else {
                continue;
            };
            let Some(job) = running.get(&id) else {
                continue;
            };
            if let Some(nudge) = nudge_of(event) {
                job.send_if_modified(|current| {
                    let stronger = match (*current, nudge) {
                        (Nudge::Stop, _) => false,
                        (_, Nudge::Stop) => true,
                        (Nudge::Newer(a), Nudge::Newer(b)) => b > a,
                        (Nudge::Quiet, _) => true,
                        (Nudge::Newer(_), Nudge::Quiet) => false,
                    };
                    if stronger {
                        *current = nudge;
                    }
                    stronger
                });
            }
        }
    }

    fn running(&self) -> MutexGuard<'_, HashMap<ConversationId, watch::Sender<Nudge>>> {
        // A panic elsewhere while holding it leaves a map that is still consistent.
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What an event of a conversation with a running job means for it.
fn nudge_of(event: &StoredEvent) -> Option<Nudge> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Payload {
        id: Option<MessageId>,
        is_from_agent: Option<bool>,
        status: Option<ConversationStatus>,
        agent_id: Option<serde_json::Value>,
    }
    let payload: Payload = serde_json::from_str(&event.payload).ok()?;
    match event.kind.as_str() {
        "message" if payload.is_from_agent == Some(false) => payload.id.map(Nudge::Newer),
        "status"
            if payload.status != Some(ConversationStatus::Waiting)
                || payload.agent_id.is_some_and(|a| !a.is_null()) =>
        {
            Some(Nudge::Stop)
        }
        _ => None,
    }
}

/// Receives triggers and sweeps for jobs nobody holds, spawning one task per job.
async fn dispatch(
    worker: Rc<job::Worker>,
    mut triggers: mpsc::Receiver<(ConversationId, MessageId)>,
) {
    let every = (worker.lease / 2).max(Duration::from_millis(250));
    let mut sweep = tokio::time::interval(every);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            trigger = triggers.recv() => {
                let Some((conversation, message)) = trigger else { return };
                worker.start_or_nudge(conversation, Some(message));
            }
            _ = sweep.tick() => {
                match worker.store.unclaimed_replies(&worker.owner, SWEEP_BATCH).await {
                    Ok(ids) => {
                        for id in ids {
                            worker.start_or_nudge(id, None);
                        }
                    }
                    Err(error) => tracing::warn!(%error, "looking for unclaimed reply jobs failed"),
                }
            }
        }
    }
}
