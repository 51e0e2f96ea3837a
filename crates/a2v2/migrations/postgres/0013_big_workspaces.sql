-- Indexes for big workspaces.
--
-- The contacts `q` search (`search_text LIKE '%…%'`) through a trigram GIN index, which
-- PostgreSQL uses for LIKE patterns with at least one trigram. Creating the index indexes the
-- rows that exist now. pg_trgm is a trusted extension: a database owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX contacts_search_trgm ON contacts USING gin (search_text gin_trgm_ops);
