-- Who owns each cluster object, across every source: one entity per object identity (API group,
-- kind, namespace, name). A claim is taken before an apply and held while the entity declares
-- the object, so a second entity, from any source, is refused instead of taking it over.
CREATE TABLE cluster_claims (
    api_group   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    namespace   TEXT NOT NULL,             -- '' for cluster-scoped objects
    name        TEXT NOT NULL,
    entity_ref  TEXT NOT NULL,
    source      TEXT NOT NULL,
    claimed_at  BIGINT NOT NULL,
    PRIMARY KEY (api_group, kind, namespace, name)
);
CREATE INDEX cluster_claims_entity ON cluster_claims (entity_ref);

-- Claims refused: the entity that asked for an object another entity holds. Shown on both.
CREATE TABLE cluster_claim_refusals (
    claimant_ref    TEXT NOT NULL,
    claimant_source TEXT NOT NULL,
    api_group       TEXT NOT NULL,
    kind            TEXT NOT NULL,
    namespace       TEXT NOT NULL,
    name            TEXT NOT NULL,
    PRIMARY KEY (claimant_ref, api_group, kind, namespace, name)
);

-- What an entity's refused rivals are told on the entity that holds the object.
ALTER TABLE entities ADD COLUMN ownership_status TEXT;

-- Objects applied before claims existed belong to the entity that applied them first.
INSERT OR IGNORE INTO cluster_claims (api_group, kind, namespace, name, entity_ref, source, claimed_at)
SELECT CASE WHEN instr(api_version, '/') > 0 THEN substr(api_version, 1, instr(api_version, '/') - 1) ELSE '' END,
       kind, namespace, name, entity_ref, source, applied_at
FROM cluster_inventory
ORDER BY applied_at, entity_ref;
