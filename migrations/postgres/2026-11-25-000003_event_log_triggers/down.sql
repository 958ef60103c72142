DROP TRIGGER events_notify ON events;
DROP TRIGGER events_take_log_lock ON events;
DROP FUNCTION events_notify();
DROP FUNCTION events_take_log_lock();
