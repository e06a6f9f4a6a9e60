-- The filter/sort/facet index, as Backstage's `search` table: one row per flattened leaf of the
-- entity body. `value` is lower-cased (NULL when over 200 characters: only "exists" works then);
-- `original_value` keeps the case for facets. Relations are filtered through `relations`.
CREATE TABLE search (
    entity_ref     TEXT NOT NULL,
    key            TEXT NOT NULL,
    value          TEXT,
    original_value TEXT
);
CREATE INDEX search_key_value ON search (key, value);
CREATE INDEX search_entity_key ON search (entity_ref, key);

-- Entities written before the index existed have no rows: force one rewrite of everything.
UPDATE entities SET hash = '';
UPDATE sources SET revision = NULL;
