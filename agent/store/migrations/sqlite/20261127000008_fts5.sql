-- Full-text filters on SQLite: an FTS5 trigram index over the text fields people search (the
-- same keys PostgreSQL's pg_trgm index covers). A trigram phrase query is a substring match, so
-- `fullTextFilterTerm` becomes an index lookup instead of a LIKE scan over every search row.
-- Triggers keep it in step with `search` inside the writing transaction.
CREATE VIRTUAL TABLE search_text USING fts5(value, entity_ref UNINDEXED, key UNINDEXED, tokenize = 'trigram');

INSERT INTO search_text (rowid, value, entity_ref, key)
    SELECT rowid, value, entity_ref, key FROM search
    WHERE key IN ('metadata.name', 'metadata.title', 'metadata.description') AND value IS NOT NULL;

CREATE TRIGGER search_text_insert AFTER INSERT ON search
    WHEN new.key IN ('metadata.name', 'metadata.title', 'metadata.description') AND new.value IS NOT NULL
BEGIN
    INSERT INTO search_text (rowid, value, entity_ref, key) VALUES (new.rowid, new.value, new.entity_ref, new.key);
END;

CREATE TRIGGER search_text_delete AFTER DELETE ON search
    WHEN old.key IN ('metadata.name', 'metadata.title', 'metadata.description') AND old.value IS NOT NULL
BEGIN
    DELETE FROM search_text WHERE rowid = old.rowid;
END;
