DROP TABLE reply_jobs;
ALTER TABLE conversations DROP COLUMN handoff_at;
ALTER TABLE conversations DROP COLUMN handoff_reason;
ALTER TABLE conversations DROP COLUMN bot_failures;
ALTER TABLE conversations DROP COLUMN bot_tokens;
ALTER TABLE conversations DROP COLUMN bot_replies;
