-- The name each repository of an organisation source was first seen under, by GitHub's id (which
-- survives renames and transfers). Grants follow this name: a repository renamed to match another
-- team's grant keeps the grant it had, and a new repository under a pinned name gets nothing.
CREATE TABLE repository_pins (
    source    TEXT NOT NULL,
    repo_id   BIGINT NOT NULL,
    name      TEXT NOT NULL,              -- lower case, as source names are
    pinned_at BIGINT NOT NULL,
    PRIMARY KEY (source, repo_id)
);
CREATE UNIQUE INDEX repository_pins_name ON repository_pins (source, name);
