//! Commit statuses posted to GitHub: claimed before posting, so each (repository, commit,
//! context, state) is posted once across replicas and restarts.

use super::{now_millis, query_err, Store, StoreError};

/// Claims older than this are forgotten: no pass looks at a commit that old again.
const KEEP_MILLIS: i64 = 30 * 24 * 3600 * 1000;

impl Store {
    /// Claims a status for posting; `false` when it was claimed (or posted) before.
    pub async fn claim_commit_status(
        &self,
        repository: &str,
        sha: &str,
        context: &str,
        state: &str,
    ) -> Result<bool, StoreError> {
        let now = now_millis();
        let claimed = sqlx::query(
            "INSERT INTO commit_statuses (repository, sha, context, state, claimed_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT DO NOTHING",
        )
        .bind(repository)
        .bind(sha)
        .bind(context)
        .bind(state)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(query_err("claim commit status"))?
        .rows_affected()
            == 1;
        if claimed {
            sqlx::query("DELETE FROM commit_statuses WHERE claimed_at < $1")
                .bind(now - KEEP_MILLIS)
                .execute(&self.pool)
                .await
                .map_err(query_err("forget old commit statuses"))?;
        }
        Ok(claimed)
    }

    /// Gives a claim back: the status could not be posted, and a later pass may try again.
    pub async fn release_commit_status(
        &self,
        repository: &str,
        sha: &str,
        context: &str,
        state: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM commit_statuses WHERE repository = $1 AND sha = $2 AND context = $3 AND state = $4")
            .bind(repository)
            .bind(sha)
            .bind(context)
            .bind(state)
            .execute(&self.pool)
            .await
            .map_err(query_err("release commit status"))?;
        Ok(())
    }
}
