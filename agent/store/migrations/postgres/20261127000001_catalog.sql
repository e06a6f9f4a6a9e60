-- The catalog of record: entities keyed by canonical ref, owned by the location that emits them.
CREATE TABLE entities (
    entity_ref   TEXT PRIMARY KEY,          -- kind:namespace/name, lower-cased
    uid          TEXT NOT NULL UNIQUE,      -- stable while the entity exists
    kind         TEXT NOT NULL,
    namespace    TEXT NOT NULL,
    name         TEXT NOT NULL,
    source       TEXT NOT NULL,
    location_key TEXT NOT NULL,             -- backstage.io/managed-by-location of its file
    body         TEXT NOT NULL,             -- entity JSON as ingested (no uid/etag/relations)
    hash         TEXT NOT NULL,             -- sha1 of body; also the etag
    created_at   BIGINT NOT NULL,           -- unix milliseconds
    updated_at   BIGINT NOT NULL
);
CREATE INDEX entities_location_key ON entities (location_key);
CREATE INDEX entities_kind ON entities (kind);

-- One row per catalog file reached; state and errors change only when they change.
CREATE TABLE locations (
    location_key TEXT PRIMARY KEY,
    source       TEXT NOT NULL,
    path         TEXT NOT NULL,
    state        TEXT NOT NULL,             -- ok | error
    errors       TEXT,                      -- JSON array of {index, message}
    updated_at   BIGINT NOT NULL
);
CREATE INDEX locations_source ON locations (source);

-- The last revision each source was synced at, so a restart does not refetch or rewrite.
CREATE TABLE sources (
    name       TEXT PRIMARY KEY,
    revision   TEXT,
    synced_at  BIGINT,
    error      TEXT
);

-- Sync history: one row per pass that had something to do.
CREATE TABLE sync_runs (
    id          BIGSERIAL PRIMARY KEY,
    source      TEXT NOT NULL,
    revision    TEXT,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    added       BIGINT NOT NULL,
    updated     BIGINT NOT NULL,
    deleted     BIGINT NOT NULL,
    unchanged   BIGINT NOT NULL,
    errors      BIGINT NOT NULL,
    error       TEXT
);
CREATE INDEX sync_runs_source ON sync_runs (source, id);
