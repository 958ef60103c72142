-- Sign-in and admin-token throttling, shared by every worker (and, on PostgreSQL, every
-- instance). One row per throttled key (a digest, never an email or address in clear), counting
-- hits in a fixed window that ends at `resets_at`; expired rows are pruned.
CREATE TABLE throttle_counters (
    key TEXT PRIMARY KEY,
    hits BIGINT NOT NULL,
    resets_at TIMESTAMP(3) NOT NULL
);
CREATE INDEX throttle_counters_by_reset ON throttle_counters (resets_at);
