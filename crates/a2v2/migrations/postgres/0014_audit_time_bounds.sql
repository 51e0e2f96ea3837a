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

-- The skew of one event: NULL for an id of another form.
CREATE FUNCTION audit_event_skew(id TEXT, occurred_at BIGINT) RETURNS BIGINT AS $$
    SELECT CASE WHEN id ~ '^evt_[0-9a-f]{32}$'
        THEN occurred_at - ('x' || substr(id, 5, 12))::bit(48)::bigint END
$$ LANGUAGE sql IMMUTABLE;

INSERT INTO audit_id_skew (id, low, high, irregular)
SELECT 1, MIN(skew), MAX(skew), COALESCE(MAX(CASE WHEN skew IS NULL THEN 1 ELSE 0 END), 0)
FROM (SELECT audit_event_skew(id, occurred_at) AS skew FROM audit_events) AS e;

CREATE FUNCTION audit_events_note_skew() RETURNS trigger AS $$
DECLARE
    skew BIGINT := audit_event_skew(NEW.id, NEW.occurred_at);
BEGIN
    IF skew IS NULL THEN
        UPDATE audit_id_skew SET irregular = 1 WHERE irregular = 0;
    ELSE
        UPDATE audit_id_skew SET low = LEAST(low, skew), high = GREATEST(high, skew)
        WHERE low IS NULL OR skew < low OR skew > high;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_events_id_skew
AFTER INSERT ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_note_skew();
