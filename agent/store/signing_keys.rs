//! Public signing keys shared by replicas: what one replica signs, any replica can show.

use sqlx::Row;

use super::{now_millis, query_err, Store, StoreError};

impl Store {
    /// Publishes (or renews) a public key until `expires_at` (milliseconds since the epoch), and
    /// forgets keys that expired.
    pub async fn publish_signing_key(&self, kid: &str, jwk: &str, expires_at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, jwk, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (kid) DO UPDATE SET expires_at = excluded.expires_at",
        )
        .bind(kid)
        .bind(jwk)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(query_err("publish signing key"))?;
        sqlx::query("DELETE FROM signing_keys WHERE expires_at <= $1")
            .bind(now_millis())
            .execute(&self.pool)
            .await
            .map_err(query_err("forget expired signing keys"))?;
        Ok(())
    }

    /// The public keys not yet expired, as JSON Web Keys.
    pub async fn signing_keys(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT jwk FROM signing_keys WHERE expires_at > $1 ORDER BY kid")
            .bind(now_millis())
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("read signing keys"))?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }
}
