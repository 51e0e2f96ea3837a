-- Portable types: ids TEXT (prefixed UUIDv7), times BIGINT unix milliseconds, JSON as TEXT.

CREATE TABLE workspace (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE members (
    id             TEXT PRIMARY KEY,
    email          TEXT NOT NULL,
    email_lower    TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY,
    member_id    TEXT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    csrf_token   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX sessions_member ON sessions(member_id);

CREATE TABLE agents (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id                 TEXT PRIMARY KEY,
    agent_id           TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    name               TEXT NOT NULL,
    description        TEXT NOT NULL DEFAULT '',
    lookup_hash        TEXT NOT NULL UNIQUE,
    secret_ciphertext  TEXT,
    preview            TEXT NOT NULL,
    permissions        BIGINT NOT NULL,
    ip_addresses       TEXT NOT NULL,
    expires_at         BIGINT,
    created_by         TEXT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    last_used_at       BIGINT
);
CREATE INDEX api_keys_agent ON api_keys(agent_id, id);

CREATE TABLE audit_events (
    id            TEXT PRIMARY KEY,
    occurred_at   BIGINT NOT NULL,
    actor_type    TEXT NOT NULL,
    actor_id      TEXT,
    actor_label   TEXT,
    action        TEXT NOT NULL,
    agent_id      TEXT,
    target_type   TEXT,
    target_id     TEXT,
    target_label  TEXT,
    ip            TEXT,
    user_agent    TEXT,
    details       TEXT NOT NULL
);
CREATE INDEX audit_events_action ON audit_events(action, id);
CREATE INDEX audit_events_agent ON audit_events(agent_id, id);
CREATE INDEX audit_events_actor ON audit_events(actor_id, id);
CREATE INDEX audit_events_time ON audit_events(occurred_at);

-- Repeated denials of one kind in one minute raise a counter here instead of adding rows,
-- so that audit_events itself is never updated.
CREATE TABLE audit_event_counts (
    event_id  TEXT PRIMARY KEY,
    count     BIGINT NOT NULL
);

CREATE TRIGGER audit_events_append_only
BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;
