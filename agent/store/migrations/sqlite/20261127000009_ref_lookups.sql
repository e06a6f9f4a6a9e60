-- PostgreSQL moves its entity-ref lookups to hash indexes here; SQLite has no hash indexes and
-- keeps its btrees. Kept so both backends share migration versions.
SELECT 1;
