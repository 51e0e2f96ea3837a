-- Indexes for big workspaces.
--
-- The contacts `q` search (a substring of search_text) through a trigram index. The FTS5
-- table holds no copy of the text (external content: contacts, by rowid, which VACUUM and
-- VACUUM INTO keep); triggers keep it in step with every write, and 'rebuild' indexes the
-- rows that exist now. `detail=none` stores no positions: the store asks for rows holding
-- every trigram of the query and rechecks the substring itself, so positions are not needed.
CREATE VIRTUAL TABLE contacts_search USING fts5(
    search_text,
    content = 'contacts',
    content_rowid = 'rowid',
    tokenize = 'trigram',
    detail = 'none'
);

CREATE TRIGGER contacts_search_insert AFTER INSERT ON contacts BEGIN
    INSERT INTO contacts_search (rowid, search_text) VALUES (new.rowid, new.search_text);
END;

CREATE TRIGGER contacts_search_delete AFTER DELETE ON contacts BEGIN
    INSERT INTO contacts_search (contacts_search, rowid, search_text)
        VALUES ('delete', old.rowid, old.search_text);
END;

CREATE TRIGGER contacts_search_update AFTER UPDATE OF search_text ON contacts BEGIN
    INSERT INTO contacts_search (contacts_search, rowid, search_text)
        VALUES ('delete', old.rowid, old.search_text);
    INSERT INTO contacts_search (rowid, search_text) VALUES (new.rowid, new.search_text);
END;

INSERT INTO contacts_search (contacts_search) VALUES ('rebuild');
