//! One reply job, from claim to finish.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use frontdesk_domain::handoff::{BotBudget, HandoffReason, Next};
use frontdesk_domain::{ConversationId, Message, MessageDraft, MessageId, Metadata, Sender};
use frontdesk_store::{Finished, ReplyJob, ReplyOutcome, Store};
use serde_json::Value;
use tokio::sync::watch;

use super::{progress, Nudge, Replies};
use crate::app::replies::compose::Composer;

/// Messages read back for the prompt (the token budget then keeps the newest that fit).
const HISTORY_LIMIT: i64 = 100;
/// Instances that may claim one job before it is handed to a person: each claim past the
/// first means an instance died holding it.
const MAX_CLAIMS: u32 = 3;
/// How often a running job renews its lease and repeats `typing` (clients hide a typing
/// indicator that is not repeated).
const HEARTBEAT: Duration = Duration::from_secs(4);

pub(super) struct Policy {
    pub budget: BotBudget,
    pub phrases: Vec<String>,
    pub handoff_notice: String,
}

/// What every job of this instance shares.
pub(super) struct Worker {
    pub store: Store,
    /// This instance, as the lease holder.
    pub owner: String,
    pub lease: Duration,
    /// Jobs the sweep may have running at once (the model's in-flight limit).
    pub max_jobs: usize,
    pub composer: Composer,
    pub policy: Policy,
    pub replies: Arc<Replies>,
}

impl Worker {
    /// Starts a job for `conversation` unless one runs here already, which is nudged instead.
    /// The sweep (`message` `None`) starts no more jobs than the model may take calls at once:
    /// after a restart, a backlog waits for the next sweep instead of being handed off as
    /// busy.
    pub(super) fn start_or_nudge(
        self: &Rc<Self>,
        conversation: ConversationId,
        message: Option<MessageId>,
    ) {
        let mut running = self.replies.running();
        if message.is_none()
            && running.len() >= self.max_jobs
            && !running.contains_key(&conversation)
        {
            return;
        }
        if let Some(job) = running.get(&conversation) {
            if let Some(message) = message {
                job.send_if_modified(|current| match *current {
                    Nudge::Newer(seen) if seen >= message => false,
                    Nudge::Stop => false,
                    _ => {
                        *current = Nudge::Newer(message);
                        true
                    }
                });
            }
            return;
        }
        let (nudges, heard) = watch::channel(Nudge::Quiet);
        running.insert(conversation, nudges);
        drop(running);
        let worker = Rc::clone(self);
        tokio::task::spawn_local(async move {
            worker.supervise(conversation, heard).await;
        });
    }

    /// Runs the job in a task of its own, so that whatever happens to it (even a panic) the
    /// typing it switched on is switched off and the job is forgotten here.
    async fn supervise(
        self: Rc<Self>,
        conversation: ConversationId,
        heard: watch::Receiver<Nudge>,
    ) {
        // Claimed by the commit of the customer's message when this instance stored it;
        // otherwise (found by the sweep) claimed now, if its lease is free.
        let claimed = match self.store.adopt_reply(conversation, &self.owner).await {
            Ok(Some(job)) => Ok(Some(job)),
            Ok(None) => {
                self.store
                    .claim_reply(conversation, &self.owner, self.lease)
                    .await
            }
            Err(error) => Err(error),
        };
        let claimed = match claimed {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(conversation = conversation.0, %error, "claiming a reply job failed");
                None
            }
        };
        // What the job last heard, read once it has ended (below), and the newest customer
        // message it answered.
        let last = heard.clone();
        let mut answered = None;
        if let Some(job) = claimed {
            let typing = Rc::new(progress::Typing::new(&self.store, &job.conversation));
            answered = Some(job.trigger);
            let run =
                tokio::task::spawn_local(Rc::clone(&self).run(job, heard, Rc::clone(&typing)));
            match run.await {
                Ok(trigger) => answered = Some(trigger),
                Err(_) => tracing::error!(
                    conversation = conversation.0,
                    "a reply job panicked; its lease will run out"
                ),
            }
            // Whatever ended the job: what was switched on is switched off.
            if typing.is_on() {
                typing.set(false).await;
            }
        }
        self.replies.running().remove(&conversation);
        // A customer message that came as the job ended was only a nudge to it, and its commit
        // may have made a new job held by this instance: look again now rather than when the
        // sweep finds it. (Nothing to do finds nothing: one read.)
        let newer = match *last.borrow() {
            Nudge::Newer(message) => answered.is_none_or(|answered| message > answered),
            _ => false,
        };
        if newer {
            self.start_or_nudge(conversation, None);
        }
    }

    async fn run(
        self: Rc<Self>,
        mut job: ReplyJob,
        mut heard: watch::Receiver<Nudge>,
        typing: Rc<progress::Typing>,
    ) -> MessageId {
        let id = job.conversation.id;
        loop {
            let outcome = tokio::select! {
                outcome = self.decide(&job, &typing) => outcome,
                nudge = next_nudge(&mut heard, job.trigger) => match nudge {
                    Nudge::Stop => Some(ReplyOutcome::Nothing),
                    // A newer message: begin again from it. The call just cancelled counts
                    // against the budget.
                    _ => {
                        if typing.is_on() {
                            self.charge(&mut job, self.composer.abandoned_call_cost()).await;
                        }
                        match self.store.renew_reply(id, &self.owner, self.lease).await {
                            Ok(Some(trigger)) => {
                                job.trigger = job.trigger.max(trigger);
                                continue;
                            }
                            _ => return job.trigger,
                        }
                    }
                },
                () = self.heartbeat(&job, &typing) => {
                    tracing::info!(conversation = id.0, "reply job lost its lease; another instance has it");
                    return job.trigger;
                }
            };
            let Some(outcome) = outcome else {
                return job.trigger;
            };
            let spent = match &outcome {
                ReplyOutcome::Reply { tokens, .. } => *tokens,
                _ => 0,
            };
            match self.store.finish_reply(&job, &self.owner, outcome).await {
                Ok(Finished::Superseded(trigger)) => {
                    // The reply written is dropped; what it cost is not.
                    self.charge(&mut job, spent).await;
                    job.trigger = trigger;
                }
                Ok(Finished::Stored(appended)) => {
                    let handoff = appended
                        .message
                        .metadata
                        .as_ref()
                        .is_some_and(|m| m.contains_key("handoff"));
                    self.replies.stats.stored(handoff);
                    tracing::info!(
                        conversation = id.0,
                        message = appended.message.id.0,
                        handoff,
                        "automated message stored"
                    );
                    return job.trigger;
                }
                Ok(Finished::Counted | Finished::Dropped | Finished::Lost) => return job.trigger,
                Err(error) => {
                    // The job stays in the database; its lease runs out and it is taken again.
                    tracing::warn!(conversation = id.0, %error, "finishing a reply job failed");
                    return job.trigger;
                }
            }
        }
    }

    /// Counts `tokens` of model work that stored nothing, in the database and in the job.
    async fn charge(&self, job: &mut ReplyJob, tokens: u64) {
        if tokens == 0 {
            return;
        }
        job.bot = job.bot.spent(tokens);
        if let Err(error) = self.store.charge_reply(job.conversation.id, tokens).await {
            tracing::warn!(conversation = job.conversation.id.0, %error, "charging a cancelled reply failed");
        }
    }

    /// What to do, and (for a reply) the reply. `None`: the history could not be read, so
    /// the job is left for its lease to run out and be tried again.
    async fn decide(&self, job: &ReplyJob, typing: &progress::Typing) -> Option<ReplyOutcome> {
        let id = job.conversation.id;
        let history = match self.store.recent_messages(id, HISTORY_LIMIT).await {
            Ok(history) => history,
            Err(error) => {
                tracing::warn!(conversation = id.0, %error, "reading the history for a reply failed");
                return None;
            }
        };
        let next = if job.attempts > MAX_CLAIMS {
            Next::HandOff(HandoffReason::ModelFailing)
        } else {
            let words = burst(&history, job.trigger);
            job.bot.next(
                &job.conversation,
                &words,
                &self.policy.budget,
                &self.policy.phrases,
            )
        };
        Some(match next {
            Next::Silent => ReplyOutcome::Nothing,
            Next::HandOff(reason) => self.handoff(id, reason),
            Next::Reply if !self.composer.will_speak(&history) => ReplyOutcome::Nothing,
            Next::Reply => {
                // Only now, so a conversation the bot has nothing more to say in (the offline
                // greeting was sent) never shows a typing flash.
                // Switched on while the prompt is being read, not before: one round trip
                // fewer ahead of the model call.
                let switch_on = async {
                    if !typing.is_on() {
                        typing.set(true).await;
                    }
                };
                tokio::join!(switch_on, self.compose(job, &history)).1
            }
        })
    }

    async fn compose(&self, job: &ReplyJob, history: &[Message]) -> ReplyOutcome {
        let id = job.conversation.id;
        match self.composer.compose(&self.store, job, history).await {
            Ok(compose::Composed::Text { text, tokens }) => match bot_draft(id, &text, job.trigger)
            {
                Some(draft) => ReplyOutcome::Reply { draft, tokens },
                None => self.failed(job, "the model's reply was empty or unstorable"),
            },
            Ok(compose::Composed::HandOff(reason)) => self.handoff(id, reason),
            Ok(compose::Composed::Nothing) => ReplyOutcome::Nothing,
            Err(error) => {
                if matches!(error, frontdesk_llm::LlmError::Busy) {
                    tracing::warn!(conversation = id.0, %error, "model call refused; handing off");
                    return self.handoff(id, HandoffReason::Busy);
                }
                self.failed(job, &error.to_string())
            }
        }
    }

    fn failed(&self, job: &ReplyJob, why: &str) -> ReplyOutcome {
        let id = job.conversation.id;
        let failures = self.replies.stats.failed();
        tracing::warn!(
            failures_since_start = failures,
            conversation = id.0,
            error = why,
            "automated reply failed; the conversation waits for an agent"
        );
        match job.bot.failed(&self.policy.budget) {
            Next::HandOff(reason) => self.handoff(id, reason),
            _ => ReplyOutcome::Failed,
        }
    }

    fn handoff(&self, id: ConversationId, reason: HandoffReason) -> ReplyOutcome {
        let mut metadata = Metadata::new();
        metadata.insert("automated".into(), Value::Bool(true));
        metadata.insert("handoff".into(), Value::Bool(true));
        match MessageDraft::new(
            id,
            Sender::Bot,
            self.policy.handoff_notice.clone(),
            Some(metadata),
            None,
        ) {
            Ok(notice) => ReplyOutcome::HandOff { notice, reason },
            // A notice the operator configured badly: hand off without a word.
            Err(_) => ReplyOutcome::Nothing,
        }
    }

    /// Renews the lease, and repeats `typing` while it is on, until the lease is lost (then
    /// returns).
    async fn heartbeat(&self, job: &ReplyJob, typing: &progress::Typing) {
        let every = HEARTBEAT.min(self.lease / 3);
        loop {
            tokio::time::sleep(every).await;
            match self
                .store
                .renew_reply(job.conversation.id, &self.owner, self.lease)
                .await
            {
                Ok(Some(_)) if typing.is_on() => typing.set(true).await,
                Ok(Some(_)) => {}
                Ok(None) => return,
                // The database is unwell: keep composing; the finish will tell.
                Err(error) => {
                    tracing::warn!(conversation = job.conversation.id.0, %error, "renewing a reply lease failed")
                }
            }
        }
    }
}

use super::compose;

/// Waits for a nudge that matters for a job answering `trigger`.
async fn next_nudge(heard: &mut watch::Receiver<Nudge>, trigger: MessageId) -> Nudge {
    loop {
        if heard.changed().await.is_err() {
            // The sender is gone: nothing will ever nudge again.
            std::future::pending::<()>().await;
        }
        match *heard.borrow_and_update() {
            Nudge::Stop => return Nudge::Stop,
            Nudge::Newer(message) if message > trigger => return Nudge::Newer(message),
            _ => {}
        }
    }
}

/// The customer's words since the last agent-side message, up to `trigger`: what the
/// hand-off phrases are looked for in.
fn burst(history: &[Message], trigger: MessageId) -> String {
    let start = history
        .iter()
        .rposition(|m| m.sender.is_agent_side() && m.id < trigger)
        .map_or(0, |i| i + 1);
    history[start..]
        .iter()
        .filter(|m| !m.sender.is_agent_side() && m.id <= trigger)
        .map(|m| m.content.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The bot's message answering `trigger`, made storable: control characters the model may
/// emit removed, cut to the content limit. `None` when nothing is left.
fn bot_draft(id: ConversationId, text: &str, trigger: MessageId) -> Option<MessageDraft> {
    let clean: String = text
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .take(frontdesk_domain::limits::CONTENT_MAX_CHARS)
        .collect();
    let mut metadata = Metadata::new();
    metadata.insert("automated".into(), Value::Bool(true));
    metadata.insert("replyTo".into(), Value::from(trigger.0));
    MessageDraft::new(
        id,
        Sender::Bot,
        clean.trim().to_owned(),
        Some(metadata),
        None,
    )
    .ok()
}
