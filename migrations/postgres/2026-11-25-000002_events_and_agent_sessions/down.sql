DROP TABLE agent_sessions;
DROP TABLE events;
