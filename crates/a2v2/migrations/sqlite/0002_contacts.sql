-- Contacts: each agent's CRM. Portable types as in 0001: TEXT ids, BIGINT unix-ms times,
-- JSON as TEXT.

CREATE TABLE contacts (
    id           TEXT PRIMARY KEY,
    agent_id     TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    first_name   TEXT,
    last_name    TEXT,
    email        TEXT,
    -- Lowercased email: the per-agent uniqueness key and the `email` filter. NULL may repeat.
    email_lower  TEXT,
    phone        TEXT,
    phone_e164   TEXT,
    company      TEXT,
    job_title    TEXT,
    notes        TEXT,
    tags         TEXT NOT NULL,
    attributes   TEXT NOT NULL,
    -- Lowercased "first last", email and company, for the `q` substring filter.
    search_text  TEXT NOT NULL,
    version      BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE UNIQUE INDEX contacts_agent_email ON contacts(agent_id, email_lower);
CREATE INDEX contacts_agent_id ON contacts(agent_id, id);
CREATE INDEX contacts_agent_updated ON contacts(agent_id, updated_at, id);

-- One row per tag of a contact, so that the `tag` filter walks an index in id order.
CREATE TABLE contact_tags (
    contact_id  TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    agent_id    TEXT NOT NULL,
    tag         TEXT NOT NULL,
    PRIMARY KEY (contact_id, tag)
);
CREATE INDEX contact_tags_agent_tag ON contact_tags(agent_id, tag, contact_id);

-- Responses of `POST /v1/contacts` sent with an `Idempotency-Key`, replayed for 24 hours.
CREATE TABLE contact_idempotency (
    agent_id         TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    idempotency_key  TEXT NOT NULL,
    request_hash     TEXT NOT NULL,
    response_status  BIGINT NOT NULL,
    response_body    TEXT NOT NULL,
    location         TEXT,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (agent_id, idempotency_key)
);
CREATE INDEX contact_idempotency_age ON contact_idempotency(agent_id, created_at);
