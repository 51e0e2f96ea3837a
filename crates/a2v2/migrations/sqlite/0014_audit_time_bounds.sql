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

-- The skew of each event: NULL for an id of another form.
CREATE VIEW audit_event_skew AS
SELECT id, occurred_at - (CASE WHEN id GLOB 'evt_[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]' THEN
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
        END) AS skew
FROM audit_events;

INSERT INTO audit_id_skew (id, low, high, irregular)
SELECT 1, MIN(skew), MAX(skew), COALESCE(MAX(skew IS NULL), 0) FROM audit_event_skew;

CREATE TRIGGER audit_events_id_skew AFTER INSERT ON audit_events BEGIN
    UPDATE audit_id_skew SET irregular = 1
    WHERE irregular = 0 AND (SELECT skew FROM audit_event_skew WHERE id = new.id) IS NULL;
    UPDATE audit_id_skew SET
        low = MIN(COALESCE(low, s.skew), s.skew),
        high = MAX(COALESCE(high, s.skew), s.skew)
    FROM (SELECT skew FROM audit_event_skew WHERE id = new.id) AS s
    WHERE s.skew < low OR s.skew > high OR low IS NULL;
END;
