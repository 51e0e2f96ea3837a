-- A fingerprint of the master key (a keyed hash of a constant, not the key): a server or
-- command started with another master key than the one the data was made with is refused
-- at once, instead of silently failing to verify every API key.
CREATE TABLE master_key_check (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    fingerprint  TEXT NOT NULL
);
