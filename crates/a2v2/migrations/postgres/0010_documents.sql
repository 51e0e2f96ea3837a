-- Documents: each agent's uploaded files with their extracted text and fields, and the
-- durable queue of extractions still to run. Portable types as in 0001: TEXT ids, BIGINT
-- unix-ms times, JSON as TEXT, flags as 0/1.

CREATE TABLE documents (
    id              TEXT PRIMARY KEY,
    agent_id        TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    filename        TEXT,
    -- Lowercased file name, for the `q` filter.
    filename_lower  TEXT,
    content_type    TEXT NOT NULL,
    size_bytes      BIGINT NOT NULL,
    sha256          TEXT NOT NULL,
    -- processing | succeeded | failed
    status          TEXT NOT NULL,
    error_code      TEXT,
    error_message   TEXT,
    page_count      BIGINT,
    ocr             BIGINT NOT NULL,
    text            TEXT,
    -- [{number, ocr, text}]: the text page by page, for the dashboard.
    pages           TEXT NOT NULL,
    fields          TEXT NOT NULL,
    contacts        TEXT NOT NULL,
    -- The client's schema, kept so that a re-extraction uses it again.
    schema          TEXT,
    schema_fields   TEXT NOT NULL,
    -- Corrections made with PATCH: {"fields": {category: [...]}, "schema_fields": {name: value}}.
    -- They are kept apart from what extraction found, so a re-extraction keeps them.
    corrections     TEXT NOT NULL,
    metadata        TEXT NOT NULL,
    version         BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX documents_agent_id ON documents(agent_id, id);

-- The original bytes, apart so that reads of the document never load them.
CREATE TABLE document_files (
    document_id  TEXT PRIMARY KEY REFERENCES documents(id) ON DELETE CASCADE,
    agent_id     TEXT NOT NULL,
    bytes        BYTEA NOT NULL
);

-- Extractions waiting or running. A row is claimed by taking its lease (`lease_token`,
-- `lease_until`); a node that dies leaves a lease that runs out, and the job is taken again.
-- A job is finished by deleting its row while still holding the lease, so it is never
-- completed twice. `agent_id` repeats the document's owner: a job only ever touches that
-- agent's document.
CREATE TABLE extraction_jobs (
    id              TEXT PRIMARY KEY,
    document_id     TEXT NOT NULL UNIQUE REFERENCES documents(id) ON DELETE CASCADE,
    agent_id        TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    lease_token     TEXT,
    lease_until     BIGINT,
    -- Write the contacts found into the agent's CRM, as this actor.
    create_contacts BIGINT NOT NULL,
    actor_type      TEXT NOT NULL,
    actor_id        TEXT,
    actor_label     TEXT,
    actor_ip        TEXT,
    actor_user_agent TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX extraction_jobs_ready ON extraction_jobs(lease_until, created_at);
