-- A counter bumped by every sync pass that changed entities, so readers (the facet cache) can
-- tell in one tiny query whether anything they computed is stale — across replicas too.
CREATE TABLE catalog_generation (
    id         INTEGER PRIMARY KEY,
    generation BIGINT NOT NULL
);
INSERT INTO catalog_generation (id, generation) VALUES (1, 0);
