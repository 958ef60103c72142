-- The event log: every realtime event but typing, stored before anyone sees it. Its id is the
-- `cursor` clients resume from. A transaction-scoped advisory lock is taken just before an
-- event is inserted (by a trigger since …000003_event_log_triggers), so ids commit in id order
-- and a reader tailing `id > last` never skips an event that commits late.
CREATE TABLE events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL,
    partner_id BIGINT NOT NULL,
    customer_id TEXT NOT NULL,
    conversation_id BIGINT,
    agent_id BIGINT,
    all_agents BOOLEAN NOT NULL,
    payload TEXT NOT NULL,
    created_at TIMESTAMP(3) NOT NULL
);
CREATE INDEX events_by_customer ON events (partner_id, customer_id, id);
CREATE INDEX events_by_agent ON events (agent_id, id);

CREATE TABLE agent_sessions (
    token_hash TEXT PRIMARY KEY,
    agent_id BIGINT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    created_at TIMESTAMP(3) NOT NULL,
    expires_at TIMESTAMP(3) NOT NULL
);
CREATE INDEX agent_sessions_by_expiry ON agent_sessions (expires_at);
