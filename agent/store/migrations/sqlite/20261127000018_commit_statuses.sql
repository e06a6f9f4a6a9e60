-- The commit statuses posted to GitHub, one row per repository, commit, context and state: a
-- replica claims a row before posting (so no two replicas, and no restart, post it twice) and
-- gives the claim back when posting fails for good (so a later pass may try again).
CREATE TABLE commit_statuses (
    repository TEXT NOT NULL,              -- the API URL and owner/name
    sha        TEXT NOT NULL,
    context    TEXT NOT NULL,              -- rigger/catalog, rigger/cluster
    state      TEXT NOT NULL,              -- pending, success, failure
    claimed_at BIGINT NOT NULL,            -- milliseconds since the epoch
    PRIMARY KEY (repository, sha, context, state)
);
