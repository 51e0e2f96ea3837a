-- Sign-in, setup and invite throttling lives in the database so that every node of a
-- deployment counts the same failures (and a restart forgets none). One row per counted
-- attempt; `throttle_subjects` holds one row per email or client, which an attempt locks
-- on PostgreSQL so that checking and counting are one step across nodes.
CREATE TABLE throttle_subjects (
    subject  TEXT PRIMARY KEY
);

CREATE TABLE throttle_failures (
    id       TEXT PRIMARY KEY,
    subject  TEXT NOT NULL,
    at       BIGINT NOT NULL
);
CREATE INDEX throttle_failures_subject ON throttle_failures(subject, at);
CREATE INDEX throttle_failures_time ON throttle_failures(at);
