-- Filters are semi-joins on (key, value); facets group by (key, original_value). Covering
-- indexes make both index-only scans, and multi-column statistics tell the planner how rare a
-- (key, value) pair really is, so it starts from the most selective condition (Backstage found
-- list views 10–40x slower without them). Measured in docs/benchmarks.md.
CREATE INDEX search_key_value_ref ON search (key, value, entity_ref);
CREATE INDEX search_key_original ON search (key, original_value);
DROP INDEX search_key_value;
CREATE STATISTICS search_key_value_stats (mcv, dependencies) ON key, value FROM search;
