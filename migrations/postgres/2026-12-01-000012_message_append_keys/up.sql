-- A server-side key for each message sent without a clientMessageId, so the writer can tell,
-- when it retries after a failed batch whose commit had in fact succeeded, that the message is
-- already stored. Internal: never shown in the API. NULLs are distinct in a unique index, so
-- messages that carry a clientMessageId (deduplicated by it) need none.
ALTER TABLE messages ADD COLUMN append_key TEXT;
CREATE UNIQUE INDEX messages_by_append_key ON messages (append_key);
