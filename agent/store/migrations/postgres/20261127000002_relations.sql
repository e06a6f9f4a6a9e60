-- Relations as Backstage stores them: one row per direction, attributed to the entity that
-- declared it. An entity's `relations` are all rows whose source is that entity, whoever
-- declared them (so a Group's `members` shows up on the User).
CREATE TABLE relations (
    originating_ref TEXT NOT NULL,   -- the entity whose spec declared the relation
    source_ref      TEXT NOT NULL,
    type            TEXT NOT NULL,
    target_ref      TEXT NOT NULL
);
CREATE INDEX relations_source ON relations (source_ref);
CREATE INDEX relations_originating ON relations (originating_ref);
CREATE INDEX relations_target ON relations (target_ref);

-- Entities written before relations existed have none: force one rewrite of everything.
UPDATE entities SET hash = '';
UPDATE sources SET revision = NULL;
