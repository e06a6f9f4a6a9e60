-- What Rigger applied to the cluster, per entity: a prune deletes only objects listed here that
-- still carry Rigger's labels, so an object Rigger never made is never deleted.
CREATE TABLE cluster_inventory (
    entity_ref  TEXT NOT NULL,
    source      TEXT NOT NULL,
    api_version TEXT NOT NULL,
    kind        TEXT NOT NULL,
    namespace   TEXT NOT NULL,             -- '' for cluster-scoped objects
    name        TEXT NOT NULL,
    applied_at  BIGINT NOT NULL,
    -- An entity moving between sources briefly has rows under both.
    PRIMARY KEY (source, entity_ref, api_version, kind, namespace, name)
);

-- The cluster's view of an entity (sync state and health), served in its status.items; kept apart
-- from the body so that catalog diffs and content hashes see only what git declares.
ALTER TABLE entities ADD COLUMN cluster_status TEXT;
CREATE INDEX entities_source ON entities (source);
