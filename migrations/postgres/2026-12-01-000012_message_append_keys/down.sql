DROP INDEX messages_by_append_key;
ALTER TABLE messages DROP COLUMN append_key;
