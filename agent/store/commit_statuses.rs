//! Commit statuses posted to GitHub, one row per (repository, commit, context) with the state
//! last claimed: a state is claimed before it is posted, so each change of state is posted once
//! across replicas and restarts, and a final verdict is never followed by a stale `pending`.

use sqlx::Row;

use super::{now_millis, query_err, Store, StoreError};

/// A claim neither posted nor given back this long (its replica died mid-post) may be taken.
const STALE_CLAIM_MILLIS: i64 = 10 * 60 * 1000;
/// Rows older than this are forgotten.
const KEEP_MILLIS: i64 = 30 * 24 * 3600 * 1000;

/// What a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClaim {
    /// This state is ours to post.
    Claimed,
    /// This state was posted already.
    Posted,
    /// Another replica is posting it now, or a final verdict makes a `pending` stale.
    Held,
}

impl Store {
    /// Claims `state` for posting: taken when the stored state differs (a `pending` never
    /// replaces a final verdict) or when an earlier claim of it went stale unposted.
    pub async fn claim_commit_status(
        &self,
        repository: &str,
        sha: &str,
        context: &str,
        state: &str,
    ) -> Result<StatusClaim, StoreError> {
        let now = now_millis();
        let claimed = sqlx::query(
            "INSERT INTO commit_statuses (repository, sha, context, state, claimed_at, posted_at) \
             VALUES ($1, $2, $3, $4, $5, NULL) \
             ON CONFLICT (repository, sha, context) DO UPDATE \
             SET state = excluded.state, claimed_at = excluded.claimed_at, posted_at = NULL \
             WHERE NOT (excluded.state = 'pending' AND commit_statuses.state <> 'pending') \
             AND (commit_statuses.state <> excluded.state \
                  OR (commit_statuses.posted_at IS NULL AND commit_statuses.claimed_at < $6))",
        )
        .bind(repository)
        .bind(sha)
        .bind(context)
        .bind(state)
        .bind(now)
        .bind(now - STALE_CLAIM_MILLIS)
        .execute(&self.pool)
        .await
        .map_err(query_err("claim commit status"))?
        .rows_affected();
        if claimed == 1 {
            return Ok(StatusClaim::Claimed);
        }
        let row = sqlx::query(
            "SELECT state, posted_at FROM commit_statuses WHERE repository = $1 AND sha = $2 AND context = $3",
        )
        .bind(repository)
        .bind(sha)
        .bind(context)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("read commit status"))?;
        let posted = row.is_some_and(|r| r.get::<String, _>(0) == state && r.get::<Option<i64>, _>(1).is_some());
        Ok(if posted { StatusClaim::Posted } else { StatusClaim::Held })
    }

    /// Marks a claimed state posted.
    pub async fn mark_commit_status_posted(
        &self,
        repository: &str,
        sha: &str,
        context: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE commit_statuses SET posted_at = $4 WHERE repository = $1 AND sha = $2 AND context = $3")
            .bind(repository)
            .bind(sha)
            .bind(context)
            .bind(now_millis())
            .execute(&self.pool)
            .await
            .map_err(query_err("mark commit status posted"))?;
        Ok(())
    }

    /// Gives a claim back: the state could not be posted, and a later pass may try again.
    pub async fn release_commit_status(&self, repository: &str, sha: &str, context: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE commit_statuses SET claimed_at = 0 WHERE repository = $1 AND sha = $2 AND context = $3 AND posted_at IS NULL",
        )
        .bind(repository)
        .bind(sha)
        .bind(context)
        .execute(&self.pool)
        .await
        .map_err(query_err("release commit status"))?;
        Ok(())
    }

    /// Forgets statuses of commits no pass has claimed for a month.
    pub async fn forget_old_commit_statuses(&self) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM commit_statuses WHERE claimed_at < $1")
            .bind(now_millis() - KEEP_MILLIS)
            .execute(&self.pool)
            .await
            .map_err(query_err("forget old commit statuses"))?;
        Ok(())
    }
}
