-- Values too long to index (over 200 UTF-16 code units) keep neither a lower-cased nor an
-- original value, as Backstage's search table: an index entry can then never exceed its page.
UPDATE search SET original_value = NULL WHERE value IS NULL;
