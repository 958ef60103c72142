DROP TABLE customer_sessions;
DROP TABLE messages;
DROP TABLE conversations;
DROP TABLE agents;
DROP TABLE customers;
DROP TABLE partners;
