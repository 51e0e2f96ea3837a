-- Provenance of contacts: the actor ({type, id, label}) that created each contact and the one
-- that changed it last, so a user can see which integration wrote a record. Contacts written
-- before this migration take their actors from the audit log, which has recorded every
-- contact write since contacts exist; a contact without such an event is marked as written
-- by `system` / `unknown`.

CREATE INDEX audit_events_target ON audit_events(target_id, occurred_at);

ALTER TABLE contacts ADD COLUMN created_by_type TEXT NOT NULL DEFAULT 'system';
ALTER TABLE contacts ADD COLUMN created_by_id TEXT;
ALTER TABLE contacts ADD COLUMN created_by_label TEXT;
ALTER TABLE contacts ADD COLUMN updated_by_type TEXT NOT NULL DEFAULT 'system';
ALTER TABLE contacts ADD COLUMN updated_by_id TEXT;
ALTER TABLE contacts ADD COLUMN updated_by_label TEXT;

UPDATE contacts SET
    created_by_type = COALESCE((SELECT a.actor_type FROM audit_events a
        WHERE a.target_id = contacts.id AND a.action = 'contact.created'
        ORDER BY a.occurred_at, a.id LIMIT 1), 'system'),
    created_by_id = (SELECT a.actor_id FROM audit_events a
        WHERE a.target_id = contacts.id AND a.action = 'contact.created'
        ORDER BY a.occurred_at, a.id LIMIT 1),
    created_by_label = COALESCE((SELECT a.actor_label FROM audit_events a
        WHERE a.target_id = contacts.id AND a.action = 'contact.created'
        ORDER BY a.occurred_at, a.id LIMIT 1), 'unknown'),
    updated_by_type = COALESCE((SELECT a.actor_type FROM audit_events a
        WHERE a.target_id = contacts.id AND a.action IN ('contact.created', 'contact.updated')
        ORDER BY a.occurred_at DESC, a.id DESC LIMIT 1), 'system'),
    updated_by_id = (SELECT a.actor_id FROM audit_events a
        WHERE a.target_id = contacts.id AND a.action IN ('contact.created', 'contact.updated')
        ORDER BY a.occurred_at DESC, a.id DESC LIMIT 1),
    updated_by_label = COALESCE((SELECT a.actor_label FROM audit_events a
        WHERE a.target_id = contacts.id AND a.action IN ('contact.created', 'contact.updated')
        ORDER BY a.occurred_at DESC, a.id DESC LIMIT 1), 'unknown');

-- "Contacts this key wrote": created or last changed by one actor.
CREATE INDEX contacts_agent_created_by ON contacts(agent_id, created_by_id, id);
CREATE INDEX contacts_agent_updated_by ON contacts(agent_id, updated_by_id, id);

-- CSV imports: large files are imported in the background; the dashboard polls this row for
-- progress and the final report. The counts move with every batch; `skipped`, a JSON array of
-- {row, reason}, is written when the import ends (rewriting it per batch would grow
-- quadratically).
CREATE TABLE contact_imports (
    id              TEXT PRIMARY KEY,
    agent_id        TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    state           TEXT NOT NULL,
    on_duplicate    TEXT NOT NULL,
    -- The file as read: its encoding, and a JSON array of {header, field}.
    encoding        TEXT NOT NULL,
    columns         TEXT NOT NULL,
    total_rows      BIGINT NOT NULL,
    processed_rows  BIGINT NOT NULL,
    created         BIGINT NOT NULL,
    updated         BIGINT NOT NULL,
    unchanged       BIGINT NOT NULL,
    skipped_count   BIGINT NOT NULL,
    skipped         TEXT NOT NULL,
    error           TEXT,
    created_by_type   TEXT NOT NULL,
    created_by_id     TEXT,
    created_by_label  TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX contact_imports_agent ON contact_imports(agent_id, created_at);
