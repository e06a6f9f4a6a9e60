//! Durable sync requests (from webhooks) and the delivery ids already seen.

use sqlx::Row;

use super::{now_millis, query_err, Store, StoreError};

/// How long a delivery id is remembered: GitHub redelivers for up to three days.
const DELIVERY_MEMORY_MILLIS: i64 = 3 * 24 * 3600 * 1000;

/// One recorded request to sync a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSync {
    pub source: String,
    pub reason: String,
    pub requested_at: i64,
}

impl Store {
    /// Records a webhook delivery and the sources it asks to sync, in one transaction. Returns
    /// false (and records nothing) when the delivery id was seen before: a redelivery.
    pub async fn record_delivery(
        &self,
        delivery_id: &str,
        event: &str,
        sources: &[String],
        reason: &str,
    ) -> Result<bool, StoreError> {
        let now = now_millis();
        let mut tx = self.pool.begin().await.map_err(query_err("begin"))?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE received_at < $1")
            .bind(now - DELIVERY_MEMORY_MILLIS)
            .execute(&mut *tx)
            .await
            .map_err(query_err("forget old deliveries"))?;
        let inserted = sqlx::query(
            "INSERT INTO webhook_deliveries (delivery_id, event, received_at) VALUES ($1, $2, $3) ON CONFLICT (delivery_id) DO NOTHING",
        )
        .bind(delivery_id)
        .bind(event)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(query_err("record delivery"))?;
        if inserted.rows_affected() == 0 {
            return Ok(false);
        }
        for source in sources {
            sqlx::query(
                "INSERT INTO pending_syncs (source, reason, requested_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (source) DO UPDATE SET reason = excluded.reason, requested_at = excluded.requested_at",
            )
            .bind(source.as_str())
            .bind(reason)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(query_err("record pending sync"))?;
        }
        tx.commit().await.map_err(query_err("commit"))?;
        Ok(true)
    }

    /// Every recorded request not yet served, oldest first.
    pub async fn pending_syncs(&self) -> Result<Vec<PendingSync>, StoreError> {
        let rows = sqlx::query("SELECT source, reason, requested_at FROM pending_syncs ORDER BY requested_at, source")
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("read pending syncs"))?;
        Ok(rows.iter().map(|r| PendingSync { source: r.get(0), reason: r.get(1), requested_at: r.get(2) }).collect())
    }

    /// Clears the request for `source` if it arrived before `pass_started` (in ms): a request
    /// that arrived while the pass ran stays, and is served by the next pass.
    pub async fn clear_pending(&self, source: &str, pass_started: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM pending_syncs WHERE source = $1 AND requested_at < $2")
            .bind(source)
            .bind(pass_started)
            .execute(&self.pool)
            .await
            .map_err(query_err("clear pending sync"))?;
        Ok(())
    }
}

impl Store {
    /// Names of sources recorded in the store that start with `prefix` (a GitHub source's
    /// discovered repositories are `<source>/<repository>`).
    pub async fn source_names_with_prefix(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT DISTINCT source FROM locations WHERE source LIKE $1 ESCAPE '\\' UNION SELECT name FROM sources WHERE name LIKE $1 ESCAPE '\\'")
            .bind(format!("{}%", prefix.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")))
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("list discovered sources"))?;
        let mut names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Forgets a source's revision and error (its locations and entities are pruned first).
    pub async fn forget_source(&self, source: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sources WHERE name = $1")
            .bind(source)
            .execute(&self.pool)
            .await
            .map_err(query_err("forget source"))?;
        Ok(())
    }
}

impl Store {
    /// Location key by file path, for every location of `source` the last walks reached.
    pub async fn location_keys_by_path(
        &self,
        source: &str,
    ) -> Result<std::collections::HashMap<String, String>, StoreError> {
        let rows = sqlx::query("SELECT path, location_key FROM locations WHERE source = $1")
            .bind(source)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("list locations"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Whether the location currently holds an entity of `kind` (lower case).
    pub async fn location_holds_kind(&self, location_key: &str, kind: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM entities WHERE location_key = $1 AND LOWER(kind) = $2")
            .bind(location_key)
            .bind(kind)
            .fetch_one(&self.pool)
            .await
            .map_err(query_err("location kinds"))?;
        Ok(row.get::<i64, _>(0) > 0)
    }
}
