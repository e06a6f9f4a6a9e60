-- PostgreSQL gets a trigram index for full-text filters here; SQLite scans (single replica,
-- smaller catalogs). Kept so both backends share migration versions.
SELECT 1;
