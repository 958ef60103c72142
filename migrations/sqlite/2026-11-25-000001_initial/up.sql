-- Timestamps are UTC, stored by diesel as text with milliseconds. AUTOINCREMENT keeps ids
-- strictly increasing even after deletions, which the `after=<id>` cursors rely on.

CREATE TABLE partners (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    domain TEXT NOT NULL,
    api_key_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE customers (
    partner_id INTEGER NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    email TEXT,
    name TEXT,
    birthdate DATE,
    flashback TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (partner_id, id)
);

CREATE TABLE agents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    is_admin BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE conversations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    partner_id INTEGER NOT NULL,
    customer_id TEXT NOT NULL,
    agent_id INTEGER REFERENCES agents (id) ON DELETE SET NULL,
    status TEXT NOT NULL CHECK (status IN ('waiting', 'active', 'closed')),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    FOREIGN KEY (partner_id, customer_id) REFERENCES customers (partner_id, id) ON DELETE CASCADE
);
CREATE INDEX conversations_by_customer ON conversations (partner_id, customer_id, id);
CREATE INDEX conversations_by_status ON conversations (status, id);
CREATE INDEX conversations_by_agent ON conversations (agent_id, status);

CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    sender_id TEXT NOT NULL,
    content TEXT NOT NULL,
    is_from_agent BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    read_status BOOLEAN NOT NULL DEFAULT FALSE,
    metadata TEXT,
    client_message_id TEXT
);
CREATE INDEX messages_by_conversation ON messages (conversation_id, id);
-- NULLs are distinct, so only messages that carry a clientMessageId are deduplicated.
CREATE UNIQUE INDEX messages_by_client_id ON messages (conversation_id, client_message_id);

CREATE TABLE customer_sessions (
    token_hash TEXT PRIMARY KEY,
    partner_id INTEGER NOT NULL,
    customer_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    FOREIGN KEY (partner_id, customer_id) REFERENCES customers (partner_id, id) ON DELETE CASCADE
);
CREATE INDEX customer_sessions_by_expiry ON customer_sessions (expires_at);
