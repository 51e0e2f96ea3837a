-- The key change counter. Every change to an API key bumps `key_version` and logs the
-- changed key ids under the new version, in the transaction of the change. Each server polls
-- `key_version` every second and reloads the logged keys, so that changes made by another
-- process (the CLI, another node) reach its in-memory cache even without LISTEN/NOTIFY.
-- The single row also orders the changes: a version is only handed out after the previous
-- one committed. Log rows older than an hour are pruned by the writers.
CREATE TABLE key_version (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  BIGINT NOT NULL
);
INSERT INTO key_version (id, version) VALUES (1, 0);

CREATE TABLE key_changes (
    version     BIGINT NOT NULL,
    key_id      TEXT NOT NULL,
    changed_at  BIGINT NOT NULL,
    PRIMARY KEY (version, key_id)
);
CREATE INDEX key_changes_time ON key_changes(changed_at);
