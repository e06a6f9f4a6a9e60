//! The name each repository of an organisation was first seen under, kept by GitHub's id: what
//! grants are matched against, so that renaming a repository gains it nothing.

use std::collections::HashMap;

use sqlx::Row;

use super::{now_millis, query_err, Store, StoreError};

impl Store {
    /// Repository id → the (lower-case) name it was first seen under, for one organisation source.
    pub async fn repository_pins(&self, source: &str) -> Result<HashMap<u64, String>, StoreError> {
        let rows = sqlx::query("SELECT repo_id, name FROM repository_pins WHERE source = $1")
            .bind(source)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("read repository pins"))?;
        Ok(rows.iter().map(|row| (u64::try_from(row.get::<i64, _>(0)).unwrap_or_default(), row.get(1))).collect())
    }

    /// Pins a repository seen for the first time. A name another id holds is not taken (the
    /// unique index decides between replicas); returns whether the pin is this repository's.
    pub async fn pin_repository(&self, source: &str, id: u64, name: &str) -> Result<bool, StoreError> {
        let id = i64::try_from(id).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO repository_pins (source, repo_id, name, pinned_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(source)
        .bind(id)
        .bind(name)
        .bind(now_millis())
        .execute(&self.pool)
        .await
        .map_err(query_err("pin repository"))?;
        let row = sqlx::query("SELECT name FROM repository_pins WHERE source = $1 AND repo_id = $2")
            .bind(source)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("read repository pin"))?;
        Ok(row.is_some_and(|row| row.get::<String, _>(0) == name))
    }
}
