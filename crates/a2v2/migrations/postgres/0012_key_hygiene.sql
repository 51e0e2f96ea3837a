-- Key hygiene: per-key rate limits, pausing, rolling with a grace period, reveal and leak
-- bookkeeping, per-permission last use, and the workspace's incident switch.
ALTER TABLE api_keys ADD COLUMN rate_limit_requests BIGINT;
ALTER TABLE api_keys ADD COLUMN rate_limit_seconds BIGINT;
ALTER TABLE api_keys ADD COLUMN enabled BIGINT NOT NULL DEFAULT 1;
-- The secret before the last roll, accepted until previous_expires_at.
ALTER TABLE api_keys ADD COLUMN previous_lookup_hash TEXT;
ALTER TABLE api_keys ADD COLUMN previous_expires_at BIGINT;
ALTER TABLE api_keys ADD COLUMN rolled_at BIGINT;
ALTER TABLE api_keys ADD COLUMN reveal_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN last_revealed_at BIGINT;
-- Set when someone reported the key's secret as leaked (the key was then paused).
ALTER TABLE api_keys ADD COLUMN leak_reported_at BIGINT;
-- Last use per permission, JSON {"contacts:read": unix_ms, …}, flushed in batches.
ALTER TABLE api_keys ADD COLUMN permission_uses TEXT NOT NULL DEFAULT '{}';

-- The recent client addresses of each key, flushed in batches from memory.
CREATE TABLE api_key_clients (
    key_id     TEXT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    ip         TEXT NOT NULL,
    count      BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    PRIMARY KEY (key_id, ip)
);

-- Every key of the workspace answers 401 while a row is here (the incident switch).
CREATE TABLE keys_suspension (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    suspended_at  BIGINT NOT NULL,
    suspended_by  TEXT
);

-- Rate-limit budget handed out to nodes: per key and time bucket, how many requests the
-- nodes together may serve. `rate_limit_keys` is the row a reservation locks.
CREATE TABLE rate_limit_keys (
    key_id  TEXT PRIMARY KEY
);
CREATE TABLE rate_limit_grants (
    key_id   TEXT NOT NULL,
    bucket   BIGINT NOT NULL,
    granted  BIGINT NOT NULL,
    PRIMARY KEY (key_id, bucket)
);

-- A member's last password confirmation, for copying keys.
ALTER TABLE sessions ADD COLUMN confirmed_at BIGINT;

-- The audit log's hash chain. Each sealed event's hash covers its stored fields and the
-- hash of the event before it; a background task seals committed events in order, so
-- writers never wait for one another and audit_events stays append-only.
CREATE TABLE audit_chain (
    seq          BIGINT PRIMARY KEY,
    event_id     TEXT NOT NULL UNIQUE,
    occurred_at  BIGINT NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL
);
CREATE INDEX audit_chain_time ON audit_chain(occurred_at);
