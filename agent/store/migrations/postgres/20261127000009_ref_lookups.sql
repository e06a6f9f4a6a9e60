-- Derived rows are only ever looked up by their entity's ref for equality (replace on update,
-- delete on removal, an entity's order value). A hash index serves that at a third of the upkeep
-- of a btree on long text keys, which is most of a large first ingest (docs/benchmarks.md).
CREATE INDEX search_entity ON search USING hash (entity_ref);
DROP INDEX search_entity_key;
CREATE INDEX relations_originating_hash ON relations USING hash (originating_ref);
DROP INDEX relations_originating;
