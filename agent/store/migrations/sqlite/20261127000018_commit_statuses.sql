-- The commit status of each repository, commit and context: the state last claimed, and when it
-- was posted. A replica claims a new state before posting it (so no two replicas, and no
-- restart, post it twice), marks it posted, and gives the claim back when posting fails for
-- good; a claim neither posted nor given back (the replica died) may be taken again after a
-- while.
CREATE TABLE commit_statuses (
    repository TEXT NOT NULL,              -- the API URL and owner/name
    sha        TEXT NOT NULL,
    context    TEXT NOT NULL,              -- rigger/catalog, rigger/cluster
    state      TEXT NOT NULL,              -- pending, success, failure
    claimed_at BIGINT NOT NULL,            -- milliseconds since the epoch
    posted_at  BIGINT,                     -- NULL until posted
    PRIMARY KEY (repository, sha, context)
);
CREATE INDEX commit_statuses_claimed ON commit_statuses (claimed_at);
