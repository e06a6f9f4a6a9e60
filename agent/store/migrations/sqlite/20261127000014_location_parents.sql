-- parent: the location whose Location target led to this file ('' for a root file, NULL while not
-- yet known). A file no longer reached is deleted only when the location that led to it was read
-- in full; held_by names the location in error while that deletion is held back.
ALTER TABLE locations ADD COLUMN parent TEXT;
ALTER TABLE locations ADD COLUMN held_by TEXT;
