//! Work sharing between replicas. On PostgreSQL each source pass holds a transaction-scoped
//! advisory lock keyed by the source name: one replica syncs a source at a time, and a replica
//! that dies (or is cancelled mid-pass) releases it with its transaction. SQLite is
//! single-replica: the daemon holds an exclusive lock file beside the database.

use std::fs::File;
use std::path::PathBuf;

use sha1::{Digest, Sha1};
use sqlx::{Any, Row, Transaction};

use super::{query_err, Backend, Store, StoreError};

/// Held while a replica syncs one source; dropping it releases the source.
pub struct SourceLease {
    _tx: Option<Transaction<'static, Any>>,
}

/// Why the daemon may not start on this SQLite database.
#[derive(Debug, thiserror::Error)]
#[error(
    "another `rigger run` already writes to {path}; SQLite mode is single-replica (run several replicas on PostgreSQL)"
)]
pub struct SecondWriter {
    pub path: PathBuf,
}

/// Keeps the SQLite writer lock for as long as it lives.
pub struct WriterLock {
    _file: Option<File>,
}

impl Store {
    /// Takes `source` for this replica, or `None` when another replica holds it.
    pub async fn try_lease(&self, source: &str) -> Result<Option<SourceLease>, StoreError> {
        if self.backend == Backend::Sqlite {
            return Ok(Some(SourceLease { _tx: None }));
        }
        let mut tx = self.pool.begin().await.map_err(query_err("begin lease"))?;
        let row = sqlx::query("SELECT pg_try_advisory_xact_lock($1)")
            .bind(lock_key(source))
            .fetch_one(&mut *tx)
            .await
            .map_err(query_err("take source lease"))?;
        Ok(row.get::<bool, _>(0).then_some(SourceLease { _tx: Some(tx) }))
    }

    /// For `rigger run` on SQLite: refuses a second daemon on the same database file.
    pub fn lock_single_writer(&self) -> Result<WriterLock, SecondWriter> {
        let Some(db) = self.sqlite_path() else { return Ok(WriterLock { _file: None }) };
        let path = PathBuf::from(format!("{}.rigger-lock", db.display()));
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|_| SecondWriter { path: db.clone() })?;
        file.try_lock().map_err(|_| SecondWriter { path: db })?;
        Ok(WriterLock { _file: Some(file) })
    }

    fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self.url.strip_prefix("sqlite://")?;
        let path = rest.split('?').next()?;
        (path != ":memory:").then(|| PathBuf::from(path))
    }
}

/// A stable 64-bit key per source name, namespaced so other applications' locks cannot collide.
fn lock_key(source: &str) -> i64 {
    let digest = Sha1::digest(format!("rigger:source:{source}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_distinct() {
        assert_eq!(lock_key("platform"), lock_key("platform"));
        assert_ne!(lock_key("platform"), lock_key("acme-org"));
    }
}
