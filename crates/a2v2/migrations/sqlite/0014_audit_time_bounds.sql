-- Time bounds for the audit log's ids.
--
-- Event ids are `evt_` and a UUIDv7 in 32 lowercase hex digits, whose first 12 are the unix
-- milliseconds of its making: ids sort by time, and the list pages by id. A time filter can
-- then be turned into an id range the id indexes serve in that order, if the store knows how
-- far `occurred_at` may lie from the time in the id. This row holds that, over the whole log:
-- `occurred_at` minus the id's time is within `low`..`high` ms for every event (both NULL
-- while the log is empty), unless `irregular` is 1: an event's id has another form, so ids
-- say nothing about times. A trigger keeps the row true for every event added; events are
-- never updated, and deleting some keeps it true.
CREATE TABLE audit_id_skew (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    low        BIGINT,
    high       BIGINT,
    irregular  BIGINT NOT NULL
);

-- The time in an id below is its first 12 hex digits, read one at a time (SQLite has no hex
-- to integer function); NULL for an id of another form.
INSERT INTO audit_id_skew (id, low, high, irregular)
SELECT 1, MIN(skew), MAX(skew), COALESCE(MAX(skew IS NULL), 0)
FROM (SELECT occurred_at - (CASE WHEN id GLOB 'evt_[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]' THEN
        (instr('0123456789abcdef', substr(id, 5, 1)) - 1) * 17592186044416 +
        (instr('0123456789abcdef', substr(id, 6, 1)) - 1) * 1099511627776 +
        (instr('0123456789abcdef', substr(id, 7, 1)) - 1) * 68719476736 +
        (instr('0123456789abcdef', substr(id, 8, 1)) - 1) * 4294967296 +
        (instr('0123456789abcdef', substr(id, 9, 1)) - 1) * 268435456 +
        (instr('0123456789abcdef', substr(id, 10, 1)) - 1) * 16777216 +
        (instr('0123456789abcdef', substr(id, 11, 1)) - 1) * 1048576 +
        (instr('0123456789abcdef', substr(id, 12, 1)) - 1) * 65536 +
        (instr('0123456789abcdef', substr(id, 13, 1)) - 1) * 4096 +
        (instr('0123456789abcdef', substr(id, 14, 1)) - 1) * 256 +
        (instr('0123456789abcdef', substr(id, 15, 1)) - 1) * 16 +
        (instr('0123456789abcdef', substr(id, 16, 1)) - 1) * 1
    END) AS skew FROM audit_events);

-- One statement per event, which writes only when the event widens the range.
CREATE TRIGGER audit_events_id_skew AFTER INSERT ON audit_events BEGIN
    UPDATE audit_id_skew SET
        irregular = CASE WHEN s.skew IS NULL THEN 1 ELSE irregular END,
        low = CASE WHEN s.skew < low OR low IS NULL THEN s.skew ELSE low END,
        high = CASE WHEN s.skew > high OR high IS NULL THEN s.skew ELSE high END
    FROM (SELECT new.occurred_at - (CASE WHEN new.id GLOB 'evt_[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]' THEN
            (instr('0123456789abcdef', substr(new.id, 5, 1)) - 1) * 17592186044416 +
            (instr('0123456789abcdef', substr(new.id, 6, 1)) - 1) * 1099511627776 +
            (instr('0123456789abcdef', substr(new.id, 7, 1)) - 1) * 68719476736 +
            (instr('0123456789abcdef', substr(new.id, 8, 1)) - 1) * 4294967296 +
            (instr('0123456789abcdef', substr(new.id, 9, 1)) - 1) * 268435456 +
            (instr('0123456789abcdef', substr(new.id, 10, 1)) - 1) * 16777216 +
            (instr('0123456789abcdef', substr(new.id, 11, 1)) - 1) * 1048576 +
            (instr('0123456789abcdef', substr(new.id, 12, 1)) - 1) * 65536 +
            (instr('0123456789abcdef', substr(new.id, 13, 1)) - 1) * 4096 +
            (instr('0123456789abcdef', substr(new.id, 14, 1)) - 1) * 256 +
            (instr('0123456789abcdef', substr(new.id, 15, 1)) - 1) * 16 +
            (instr('0123456789abcdef', substr(new.id, 16, 1)) - 1) * 1
        END) AS skew) AS s
    WHERE (s.skew IS NULL AND irregular = 0) OR s.skew < low OR s.skew > high OR low IS NULL;
END;
