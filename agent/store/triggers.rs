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
        let (mut tx, _turn) = self.begin_write().await?;
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
        let _turn = self.write_turn().await;
        sqlx::query("DELETE FROM pending_syncs WHERE source = $1 AND requested_at < $2")
            .bind(source)
            .bind(pass_started)
            .execute(&self.pool)
            .await
            .map_err(query_err("clear pending sync"))?;
        Ok(())
    }
}
