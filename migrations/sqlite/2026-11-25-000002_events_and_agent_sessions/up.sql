-- The event log: every realtime event but typing, stored before anyone sees it. Its id is the
-- `cursor` clients resume from. SQLite has one writer at a time, so ids commit in order.
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    partner_id INTEGER NOT NULL,
    customer_id TEXT NOT NULL,
    conversation_id INTEGER,
    agent_id INTEGER,
    all_agents BOOLEAN NOT NULL,
    payload TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX events_by_customer ON events (partner_id, customer_id, id);
CREATE INDEX events_by_agent ON events (agent_id, id);

CREATE TABLE agent_sessions (
    token_hash TEXT PRIMARY KEY,
    agent_id INTEGER NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX agent_sessions_by_expiry ON agent_sessions (expires_at);
