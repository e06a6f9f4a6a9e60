-- Covering indexes for filters (key, value → entity) and facets (key → original value).
CREATE INDEX search_key_value_ref ON search (key, value, entity_ref);
CREATE INDEX search_key_original ON search (key, original_value);
DROP INDEX search_key_value;
