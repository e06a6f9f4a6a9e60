//! Software Templates' sources: the file set per Template entity, contents by blob id, and the
//! versions (which files changed at which commit). Written only when something changed.

use serde::Serialize;
use serde_json::{json, Value};
use sqlx::Row;

use super::{now_millis, query_err, Store, StoreError};
use crate::catalog::template_sources::{Change, SourceFile};
use crate::source::FileStat;

/// A Template entity of a source, with the catalog file it came from.
#[derive(Debug, Clone)]
pub struct TemplateEntity {
    pub entity_ref: String,
    pub file: String,
    pub body: Value,
}

/// A template's recorded state.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateRecord {
    #[serde(rename = "entityRef")]
    pub entity_ref: String,
    pub source: String,
    /// The commit the file set last changed at.
    pub revision: Option<String>,
    pub error: Option<String>,
    pub files: Vec<TemplateFileRow>,
}

impl TemplateRecord {
    /// The recorded file set as the catalog module compares it.
    pub fn source_files(&self) -> Vec<SourceFile> {
        self.files
            .iter()
            .map(|f| SourceFile {
                path: f.path.clone(),
                stat: FileStat {
                    mode: f.mode.clone(),
                    size: u64::try_from(f.size).unwrap_or(0),
                    blob_id: f.blob_id.clone(),
                },
            })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TemplateFileRow {
    pub path: String,
    pub mode: String,
    pub size: i64,
    #[serde(rename = "blobId")]
    pub blob_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TemplateVersion {
    pub revision: Option<String>,
    #[serde(rename = "recordedAt")]
    pub recorded_at: i64,
    pub changes: Value,
}

/// One change to record: the new file set, what changed, and the contents of added and
/// modified files (`blob id → bytes`).
pub struct TemplateChange<'a> {
    pub source: &'a str,
    pub entity_ref: &'a str,
    pub revision: Option<&'a str>,
    pub files: &'a [SourceFile],
    pub changes: &'a [(String, Change)],
    pub contents: &'a [(String, Vec<u8>)],
}

/// The advisory-lock key serialising template writes on PostgreSQL ("rigger:templates").
const TEMPLATE_WRITE_LOCK: i64 = 0x7269_6767_7470_6c73;

impl Store {
    /// A transaction for template writes. Contents are shared between templates (by blob id), so
    /// on PostgreSQL writers take one advisory lock: otherwise a writer's clean-up could delete
    /// a content another, uncommitted writer has just pointed a file at. SQLite has one writer.
    async fn begin_template_write(
        &self,
    ) -> Result<(sqlx::Transaction<'static, sqlx::Any>, super::WriteTurn), StoreError> {
        let (mut tx, turn) = self.begin_write().await?;
        if self.backend == super::Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(TEMPLATE_WRITE_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(query_err("lock template writes"))?;
        }
        Ok((tx, turn))
    }

    /// Files of a template whose content is not stored (lost to an earlier fault): the next
    /// record writes them again.
    pub async fn template_files_without_content(&self, entity_ref: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT f.path FROM template_files f WHERE f.entity_ref = $1 AND NOT EXISTS \
             (SELECT 1 FROM template_blobs b WHERE b.blob_id = f.blob_id)",
        )
        .bind(entity_ref)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("find template files without content"))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// The source's Template entities (not orphans), in ref order.
    pub async fn template_entities(&self, source: &str) -> Result<Vec<TemplateEntity>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.entity_ref, l.path, e.body FROM entities e JOIN locations l ON l.location_key = e.location_key \
             WHERE e.source = $1 AND e.kind = 'template' AND e.orphan = 0 ORDER BY e.entity_ref",
        )
        .bind(source)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list templates"))?;
        rows.iter()
            .map(|row| {
                let entity_ref: String = row.get(0);
                let body: String = row.get(2);
                let body = super::rows::parse_body(&body)
                    .map_err(|source| StoreError::Corrupt { entity_ref: entity_ref.clone(), source })?;
                Ok(TemplateEntity { entity_ref, file: row.get(1), body })
            })
            .collect()
    }

    /// The recorded template, if any.
    pub async fn template(&self, entity_ref: &str) -> Result<Option<TemplateRecord>, StoreError> {
        let Some(row) = sqlx::query("SELECT revision, error, source FROM templates WHERE entity_ref = $1")
            .bind(entity_ref)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("read template"))?
        else {
            return Ok(None);
        };
        let files = self.template_files(entity_ref).await?;
        Ok(Some(TemplateRecord {
            entity_ref: entity_ref.to_owned(),
            source: row.get(2),
            revision: row.get(0),
            error: row.get(1),
            files,
        }))
    }

    pub async fn template_files(&self, entity_ref: &str) -> Result<Vec<TemplateFileRow>, StoreError> {
        let rows =
            sqlx::query("SELECT path, mode, size, blob_id FROM template_files WHERE entity_ref = $1 ORDER BY path")
                .bind(entity_ref)
                .fetch_all(&self.pool)
                .await
                .map_err(query_err("read template files"))?;
        Ok(rows
            .iter()
            .map(|r| TemplateFileRow { path: r.get(0), mode: r.get(1), size: r.get(2), blob_id: r.get(3) })
            .collect())
    }

    /// One file's content at the recorded commit.
    pub async fn template_file_content(&self, entity_ref: &str, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query(
            "SELECT b.content FROM template_files f JOIN template_blobs b ON b.blob_id = f.blob_id \
             WHERE f.entity_ref = $1 AND f.path = $2",
        )
        .bind(entity_ref)
        .bind(path)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("read template file"))?;
        Ok(row.map(|r| r.get(0)))
    }

    /// The versions recorded for a template, newest first.
    pub async fn template_versions(&self, entity_ref: &str) -> Result<Vec<TemplateVersion>, StoreError> {
        let rows = sqlx::query(
            "SELECT revision, recorded_at, changes FROM template_versions WHERE entity_ref = $1 ORDER BY id DESC",
        )
        .bind(entity_ref)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("read template versions"))?;
        Ok(rows
            .iter()
            .map(|r| {
                let changes: String = r.get(2);
                TemplateVersion {
                    revision: r.get(0),
                    recorded_at: r.get(1),
                    changes: serde_json::from_str(&changes).unwrap_or(Value::Null),
                }
            })
            .collect())
    }

    /// Records a changed file set in one transaction: the template's row, its files, new
    /// contents, a version naming the changed files; contents nothing refers to any more go.
    pub async fn record_template_change(&self, change: &TemplateChange<'_>) -> Result<(), StoreError> {
        let now = now_millis();
        let (mut tx, _turn) = self.begin_template_write().await?;
        sqlx::query(
            "INSERT INTO templates (entity_ref, source, revision, error, updated_at) VALUES ($1, $2, $3, NULL, $4) \
             ON CONFLICT (entity_ref) DO UPDATE SET source = $2, revision = $3, error = NULL, updated_at = $4",
        )
        .bind(change.entity_ref)
        .bind(change.source)
        .bind(change.revision)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(query_err("record template"))?;
        for (blob_id, content) in change.contents {
            sqlx::query(
                "INSERT INTO template_blobs (blob_id, content) VALUES ($1, $2) ON CONFLICT (blob_id) DO NOTHING",
            )
            .bind(blob_id)
            .bind(content.as_slice())
            .execute(&mut *tx)
            .await
            .map_err(query_err("record template content"))?;
        }
        sqlx::query("DELETE FROM template_files WHERE entity_ref = $1")
            .bind(change.entity_ref)
            .execute(&mut *tx)
            .await
            .map_err(query_err("clear template files"))?;
        for file in change.files {
            sqlx::query(
                "INSERT INTO template_files (entity_ref, path, mode, size, blob_id) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(change.entity_ref)
            .bind(&file.path)
            .bind(&file.stat.mode)
            .bind(i64::try_from(file.stat.size).unwrap_or(i64::MAX))
            .bind(&file.stat.blob_id)
            .execute(&mut *tx)
            .await
            .map_err(query_err("record template files"))?;
        }
        if !change.changes.is_empty() {
            let changes: Vec<Value> =
                change.changes.iter().map(|(path, c)| json!({"path": path, "change": c.as_str()})).collect();
            sqlx::query(
                "INSERT INTO template_versions (entity_ref, revision, recorded_at, changes) VALUES ($1, $2, $3, $4)",
            )
            .bind(change.entity_ref)
            .bind(change.revision)
            .bind(now)
            .bind(Value::Array(changes).to_string())
            .execute(&mut *tx)
            .await
            .map_err(query_err("record template version"))?;
        }
        forget_unused_blobs(&mut tx).await?;
        tx.commit().await.map_err(query_err("commit template"))?;
        Ok(())
    }

    /// Marks a template's sources as unreadable now; its last good file set stays. Writes only
    /// when the error is new.
    pub async fn record_template_error(&self, source: &str, entity_ref: &str, error: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO templates (entity_ref, source, revision, error, updated_at) VALUES ($1, $2, NULL, $3, $4) \
             ON CONFLICT (entity_ref) DO UPDATE SET error = $3, updated_at = $4 WHERE templates.error IS DISTINCT FROM $3",
        )
        .bind(entity_ref)
        .bind(source)
        .bind(error)
        .bind(now_millis())
        .execute(&self.pool)
        .await
        .map_err(query_err("record template error"))?;
        Ok(())
    }

    /// Forgets templates of the source that are no longer in its catalog, with their files and
    /// history. Returns how many went.
    pub async fn forget_templates(&self, source: &str, kept: &[String]) -> Result<u64, StoreError> {
        let recorded = sqlx::query("SELECT entity_ref FROM templates WHERE source = $1")
            .bind(source)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("list recorded templates"))?;
        let gone: Vec<String> = recorded.iter().map(|r| r.get::<String, _>(0)).filter(|r| !kept.contains(r)).collect();
        if gone.is_empty() {
            return Ok(0);
        }
        let (mut tx, _turn) = self.begin_template_write().await?;
        for entity_ref in &gone {
            for table in ["templates", "template_files", "template_versions"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE entity_ref = $1"))
                    .bind(entity_ref)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err("forget template"))?;
            }
        }
        forget_unused_blobs(&mut tx).await?;
        tx.commit().await.map_err(query_err("commit forget templates"))?;
        Ok(gone.len() as u64)
    }
}

/// Contents no file refers to any more. Template writers are serialised (see
/// [`Store::begin_template_write`]), so a content another writer is about to refer to is never
/// taken away under it.
async fn forget_unused_blobs(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM template_blobs WHERE NOT EXISTS \
         (SELECT 1 FROM template_files f WHERE f.blob_id = template_blobs.blob_id)",
    )
    .execute(&mut **tx)
    .await
    .map_err(query_err("forget unused template contents"))?;
    Ok(())
}
