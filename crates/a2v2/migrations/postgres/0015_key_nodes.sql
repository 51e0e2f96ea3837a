-- The serving nodes and the key change each has applied. A node reports itself before it
-- first serves keys, on every poll of `key_version`, and whenever it has applied a notified
-- change; it removes its row when it stops. A key change waits until every node heard from
-- within its lease has applied it, or that lease has passed (the node then refuses keys
-- until it catches up), so that no node serves a revoked secret after the change returned.
CREATE TABLE key_nodes (
    node_id          TEXT PRIMARY KEY,
    applied_version  BIGINT NOT NULL,
    seen_at          BIGINT NOT NULL,
    lease_ms         BIGINT NOT NULL
);
