-- Software Templates' sources (issue 7): per Template entity, the skeleton files it scaffolds
-- from at the synced commit, their contents (by git blob id, shared), and the history of which
-- files changed at which commit.
CREATE TABLE templates (
    entity_ref TEXT PRIMARY KEY,
    source     TEXT NOT NULL,
    revision   TEXT,                        -- commit the file set was read at; NULL for directories
    error      TEXT,                        -- why the sources cannot be read now (the last good set stays)
    updated_at BIGINT NOT NULL
);
CREATE INDEX templates_source ON templates (source);

CREATE TABLE template_files (
    entity_ref TEXT NOT NULL,
    path       TEXT NOT NULL,               -- repository-relative
    mode       TEXT NOT NULL,               -- git mode: 100644 or 100755
    size       BIGINT NOT NULL,
    blob_id    TEXT NOT NULL,               -- git blob id of the content
    PRIMARY KEY (entity_ref, path)
);

CREATE TABLE template_blobs (
    blob_id TEXT PRIMARY KEY,
    content BYTEA NOT NULL
);

CREATE TABLE template_versions (
    id          BIGSERIAL PRIMARY KEY,
    entity_ref  TEXT NOT NULL,
    revision    TEXT,
    recorded_at BIGINT NOT NULL,
    changes     TEXT NOT NULL               -- JSON [{path, change: added|modified|removed}]
);
CREATE INDEX template_versions_entity ON template_versions (entity_ref, id);
