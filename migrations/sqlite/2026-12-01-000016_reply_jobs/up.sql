-- Automated replies (contract.md, "Automated replies"). What the responder has done in each
-- conversation, kept on the conversation so that the lock the message writer already takes
-- covers it; and the hand-off, final once set.
ALTER TABLE conversations ADD COLUMN bot_replies BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN bot_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN bot_failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN handoff_reason TEXT;
ALTER TABLE conversations ADD COLUMN handoff_at TIMESTAMP;

-- One pending reply per conversation: written by the same commit as the customer message that
-- calls for it, so a crash cannot lose it. `trigger_id` is the newest customer message the
-- reply must have seen (a burst raises it). An instance claims the job with a lease it renews
-- while the model writes; a lease that ran out is taken over by another instance.
CREATE TABLE reply_jobs (
    conversation_id INTEGER PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
    trigger_id BIGINT NOT NULL,
    owner TEXT,
    lease_until TIMESTAMP,
    attempts BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX reply_jobs_by_lease ON reply_jobs (lease_until);
