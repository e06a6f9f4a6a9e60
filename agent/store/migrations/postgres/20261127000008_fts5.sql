-- SQLite's FTS5 full-text index arrives here; PostgreSQL has had its trigram index since
-- migration 6. Kept so both backends share migration versions.
SELECT 1;
