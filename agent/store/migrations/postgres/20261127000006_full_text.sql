-- Full-text filters are substring matches (`LIKE '%term%'`) on the text fields people search.
-- A trigram index turns them into index lookups. pg_trgm ships with PostgreSQL but some managed
-- services withhold extensions: then the filter still works, as a scan.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    CREATE INDEX search_text_trgm ON search USING gin (value gin_trgm_ops)
        WHERE key IN ('metadata.name', 'metadata.title', 'metadata.description');
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'pg_trgm is not available (%); full-text filters will scan', SQLERRM;
END
$$;
