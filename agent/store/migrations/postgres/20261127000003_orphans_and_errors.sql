-- orphan: no location declares the entity any more, but orphan_strategy is `keep`.
-- errors: the entity's document currently fails; its last good version is what is stored.
ALTER TABLE entities ADD COLUMN orphan BIGINT NOT NULL DEFAULT 0;
ALTER TABLE entities ADD COLUMN errors TEXT;
