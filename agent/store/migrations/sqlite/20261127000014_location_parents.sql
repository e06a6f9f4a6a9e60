-- parent: the locations whose Location targets led to this file, one key per line ('' for a root
-- file, NULL while not yet known). A file no longer reached is deleted only when every location
-- that led to it was read in full; held_by names the location in error while that deletion is
-- held back.
ALTER TABLE locations ADD COLUMN parent TEXT;
ALTER TABLE locations ADD COLUMN held_by TEXT;
