-- The event log's ordering rule, kept by the database for every writer: an insert into `events`
-- first takes the event-log lock (transaction-scoped, so held until commit) before any id is
-- drawn, so ids commit in id order and a reader tailing `id > last` never skips an event that
-- commits late. After the insert it queues a NOTIFY on `frontdesk_events` (sent at commit,
-- once per transaction) that wakes every instance's tailer. Doing both here instead of in two
-- more statements per write saves two round trips per transaction.
CREATE FUNCTION events_take_log_lock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(16769664483330); -- 0x0f407de50002
    RETURN NULL;
END
$$;

CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('frontdesk_events', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER events_take_log_lock BEFORE INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_take_log_lock();
CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_notify();
