//! Writing one location's entities in one transaction, and the per-source bookkeeping.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use sha1::{Digest, Sha1};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::diff::{self, Declared, Plan, Stored, Walk};
use super::{now_millis, query_err, Store, StoreError};
use crate::catalog::{DocumentError, Entity, LocationOutcome, OrphanStrategy};

/// What a write did, for metrics, logs and the sync history.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Changes {
    pub added: u64,
    pub updated: u64,
    pub deleted: u64,
    pub unchanged: u64,
    pub conflicts: u64,
}

impl Changes {
    pub fn entity_writes(&self) -> u64 {
        self.added + self.updated + self.deleted
    }

    pub fn absorb(&mut self, other: Changes) {
        self.added += other.added;
        self.updated += other.updated;
        self.deleted += other.deleted;
        self.unchanged += other.unchanged;
        self.conflicts += other.conflicts;
    }
}

/// One row of sync history.
#[derive(Debug, Clone)]
pub struct SyncRun {
    pub source: String,
    pub revision: Option<String>,
    pub started_at: i64,
    pub finished_at: i64,
    pub changes: Changes,
    /// Documents or files that failed.
    pub errors: u64,
    /// Why the whole pass failed, if it did.
    pub error: Option<String>,
}

/// The content hash of an entity body; doubles as its etag. `serde_json`'s map is ordered by key,
/// so the serialisation (and the hash) does not depend on the key order in the YAML file.
pub fn content_hash(body: &Value) -> String {
    hex::encode(Sha1::digest(body.to_string().as_bytes()))
}

impl Store {
    /// The revision the source was last synced at successfully.
    pub async fn source_revision(&self, source: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT revision FROM sources WHERE name = $1")
            .bind(source)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("read source revision"))?;
        Ok(row.and_then(|r| r.get::<Option<String>, _>(0)))
    }

    /// Writes one location in one transaction: inserts new entities, updates changed ones,
    /// adopts entities a moved file gave up, removes (or, with `keep`, orphans) ones the file no
    /// longer declares, marks failing documents' entities with their error, and records the
    /// location's state. Returns the changes and the conflicts found, as document errors.
    pub async fn apply_location(
        &self,
        source: &str,
        outcome: &LocationOutcome,
        walk: &Walk,
        orphans: OrphanStrategy,
    ) -> Result<(Changes, Vec<DocumentError>), StoreError> {
        let mut tx = self.pool.begin().await.map_err(query_err("begin"))?;
        let declared = Declared::of(outcome);
        let entities: BTreeMap<String, &Entity> =
            outcome.entities.iter().map(|e| (e.entity_ref.to_string(), e)).collect();
        let stored = load_stored(&mut tx, &outcome.key, declared.valid.keys().chain(&declared.failing)).await?;
        let plan = diff::plan(&outcome.key, &declared, &stored, walk);
        let now = now_millis();
        let mut changes = Changes { unchanged: plan.unchanged as u64, ..Changes::default() };
        let mut conflicts = plan.conflicts.clone();
        for entity_ref in &plan.insert {
            let (entity, hash) = (entities[entity_ref], &declared.valid[entity_ref]);
            if insert_entity(&mut tx, source, &outcome.key, entity, hash, now).await? {
                replace_relations(&mut tx, entity_ref, entity).await?;
                changes.added += 1;
            } else {
                // Another source inserted it between our read and our write: it claimed first.
                conflicts.push((entity_ref.clone(), "another location (claimed concurrently)".to_owned()));
            }
        }
        for entity_ref in plan.update.iter().chain(&plan.adopt) {
            let (entity, hash) = (entities[entity_ref], &declared.valid[entity_ref]);
            let owner = &stored[entity_ref].location_key;
            if write_body(&mut tx, source, &outcome.key, owner, entity, hash, now).await? {
                replace_relations(&mut tx, entity_ref, entity).await?;
                changes.updated += 1;
            } else {
                conflicts.push((entity_ref.clone(), "another location (claimed concurrently)".to_owned()));
            }
        }
        for entity_ref in &plan.adopt_failing {
            let message = outcome.failing.iter().find(|(r, _)| r.to_string() == *entity_ref).map(|(_, m)| m.clone());
            move_failing(&mut tx, source, &outcome.key, &stored[entity_ref].location_key, entity_ref, message, now)
                .await?;
            changes.updated += 1;
        }
        for entity_ref in &plan.remove {
            remove_entity(&mut tx, entity_ref, &outcome.key, orphans, now).await?;
            changes.deleted += 1;
        }
        mark_errors(&mut tx, outcome, &stored, &plan, now).await?;
        let conflict_errors: Vec<DocumentError> = conflicts
            .iter()
            .map(|(entity_ref, owner)| DocumentError {
                index: None,
                message: format!("entity {entity_ref} is already managed by {owner}; {} is ignored until that location stops declaring it", outcome.key),
            })
            .collect();
        changes.conflicts = conflict_errors.len() as u64;
        let mut errors = outcome.errors.clone();
        errors.extend(conflict_errors.iter().cloned());
        record_location(&mut tx, source, outcome, &errors, now).await?;
        tx.commit().await.map_err(query_err("commit"))?;
        Ok((changes, conflict_errors))
    }

    /// Deletes the locations of `source` that the last complete walk no longer reached, with
    /// their entities. Call only when the walk was complete: that is the positive evidence.
    pub async fn prune_locations(
        &self,
        source: &str,
        reached: &[String],
        orphans: OrphanStrategy,
    ) -> Result<Changes, StoreError> {
        let rows = sqlx::query("SELECT location_key FROM locations WHERE source = $1")
            .bind(source)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("list locations"))?;
        let mut changes = Changes::default();
        for row in rows {
            let key: String = row.get(0);
            if reached.contains(&key) {
                continue;
            }
            let mut tx = self.pool.begin().await.map_err(query_err("begin"))?;
            let deleted = match orphans {
                OrphanStrategy::Keep => sqlx::query(
                    "UPDATE entities SET orphan = 1, updated_at = $2 WHERE location_key = $1 AND orphan = 0",
                )
                .bind(key.as_str())
                .bind(now_millis())
                .execute(&mut *tx)
                .await
                .map_err(query_err("orphan location entities"))?,
                OrphanStrategy::Delete => {
                    sqlx::query("DELETE FROM relations WHERE originating_ref IN (SELECT entity_ref FROM entities WHERE location_key = $1)")
                        .bind(key.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(query_err("delete location relations"))?;
                    sqlx::query("DELETE FROM entities WHERE location_key = $1")
                        .bind(key.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(query_err("delete location entities"))?
                }
            };
            sqlx::query("DELETE FROM locations WHERE location_key = $1")
                .bind(key.as_str())
                .execute(&mut *tx)
                .await
                .map_err(query_err("delete location"))?;
            tx.commit().await.map_err(query_err("commit"))?;
            changes.deleted += deleted.rows_affected();
        }
        Ok(changes)
    }

    /// Remembers the source's revision and error. Writes only when either changed.
    pub async fn record_source(
        &self,
        source: &str,
        revision: Option<&str>,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        let current = sqlx::query("SELECT revision, error FROM sources WHERE name = $1")
            .bind(source)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("read source"))?;
        if let Some(row) = current {
            let (rev, err): (Option<String>, Option<String>) = (row.get(0), row.get(1));
            if rev.as_deref() == revision && err.as_deref() == error {
                return Ok(false);
            }
        }
        sqlx::query(
            "INSERT INTO sources (name, revision, synced_at, error) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET revision = excluded.revision, synced_at = excluded.synced_at, error = excluded.error",
        )
        .bind(source)
        .bind(revision)
        .bind(now_millis())
        .bind(error)
        .execute(&self.pool)
        .await
        .map_err(query_err("record source"))?;
        Ok(true)
    }

    pub async fn record_run(&self, run: &SyncRun) -> Result<(), StoreError> {
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO sync_runs (source, revision, started_at, finished_at, added, updated, deleted, unchanged, errors, error) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(run.source.as_str())
        .bind(run.revision.as_deref())
        .bind(run.started_at)
        .bind(run.finished_at)
        .bind(count(run.changes.added))
        .bind(count(run.changes.updated))
        .bind(count(run.changes.deleted))
        .bind(count(run.changes.unchanged))
        .bind(count(run.errors))
        .bind(run.error.as_deref())
        .execute(&self.pool)
        .await
        .map_err(query_err("record sync run"))?;
        Ok(())
    }
}

const STORED_COLUMNS: &str = "hash, location_key, source, orphan, errors";

fn stored_from(row: &AnyRow, first: usize) -> Stored {
    Stored {
        hash: row.get(first),
        location_key: row.get(first + 1),
        source: row.get(first + 2),
        orphan: row.get::<i64, _>(first + 3) != 0,
        errors: row.get(first + 4),
    }
}

/// The rows this location owns plus the rows of every ref it wants (which may belong to others).
async fn load_stored<'a>(
    tx: &mut Transaction<'_, Any>,
    location_key: &str,
    wanted: impl Iterator<Item = &'a String>,
) -> Result<BTreeMap<String, Stored>, StoreError> {
    let mut stored = BTreeMap::new();
    let owned = sqlx::query(&format!("SELECT entity_ref, {STORED_COLUMNS} FROM entities WHERE location_key = $1"))
        .bind(location_key)
        .fetch_all(&mut **tx)
        .await
        .map_err(query_err("load location entities"))?;
    for row in owned {
        stored.insert(row.get(0), stored_from(&row, 1));
    }
    for entity_ref in wanted {
        if stored.contains_key(entity_ref) {
            continue;
        }
        let row = sqlx::query(&format!("SELECT {STORED_COLUMNS} FROM entities WHERE entity_ref = $1"))
            .bind(entity_ref.as_str())
            .fetch_optional(&mut **tx)
            .await
            .map_err(query_err("load entity"))?;
        if let Some(row) = row {
            stored.insert(entity_ref.clone(), stored_from(&row, 0));
        }
    }
    Ok(stored)
}

async fn insert_entity(
    tx: &mut Transaction<'_, Any>,
    source: &str,
    location_key: &str,
    entity: &Entity,
    hash: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let r = &entity.entity_ref;
    let inserted = sqlx::query(
        "INSERT INTO entities (entity_ref, uid, kind, namespace, name, source, location_key, body, hash, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) ON CONFLICT (entity_ref) DO NOTHING",
    )
    .bind(r.to_string())
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(r.kind.as_str())
    .bind(r.namespace.as_str())
    .bind(r.name.as_str())
    .bind(source)
    .bind(location_key)
    .bind(entity.body.to_string())
    .bind(hash)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(query_err("insert entity"))?;
    Ok(inserted.rows_affected() == 1)
}

/// New content for an entity this location owns or adopts; clears orphan and error marks.
/// Conditional on the owner we planned against: false when another source got there first.
async fn write_body(
    tx: &mut Transaction<'_, Any>,
    source: &str,
    location_key: &str,
    owner: &str,
    entity: &Entity,
    hash: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let written = sqlx::query(
        "UPDATE entities SET body = $1, hash = $2, source = $3, location_key = $4, orphan = 0, errors = NULL, updated_at = $5 \
         WHERE entity_ref = $6 AND location_key = $7",
    )
    .bind(entity.body.to_string())
    .bind(hash)
    .bind(source)
    .bind(location_key)
    .bind(now)
    .bind(entity.entity_ref.to_string())
    .bind(owner)
    .execute(&mut **tx)
    .await
    .map_err(query_err("update entity"))?;
    Ok(written.rows_affected() == 1)
}

/// Ownership of an entity whose document moved here but fails: the last good body stays, with
/// the error.
async fn move_failing(
    tx: &mut Transaction<'_, Any>,
    source: &str,
    location_key: &str,
    owner: &str,
    entity_ref: &str,
    message: Option<String>,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE entities SET source = $1, location_key = $2, orphan = 0, errors = $3, updated_at = $4 \
         WHERE entity_ref = $5 AND location_key = $6",
    )
    .bind(source)
    .bind(location_key)
    .bind(message)
    .bind(now)
    .bind(entity_ref)
    .bind(owner)
    .execute(&mut **tx)
    .await
    .map_err(query_err("move failing entity"))?;
    Ok(())
}

/// An entity its file no longer declares: deleted, or kept as an orphan.
async fn remove_entity(
    tx: &mut Transaction<'_, Any>,
    entity_ref: &str,
    location_key: &str,
    orphans: OrphanStrategy,
    now: i64,
) -> Result<(), StoreError> {
    if orphans == OrphanStrategy::Keep {
        sqlx::query("UPDATE entities SET orphan = 1, updated_at = $1 WHERE entity_ref = $2 AND location_key = $3")
            .bind(now)
            .bind(entity_ref)
            .bind(location_key)
            .execute(&mut **tx)
            .await
            .map_err(query_err("orphan entity"))?;
        return Ok(());
    }
    let deleted = sqlx::query("DELETE FROM entities WHERE entity_ref = $1 AND location_key = $2")
        .bind(entity_ref)
        .bind(location_key)
        .execute(&mut **tx)
        .await
        .map_err(query_err("delete entity"))?;
    // Only our own row's relations: if someone else took the entity over, its rows are theirs.
    if deleted.rows_affected() == 1 {
        delete_relations(tx, entity_ref).await?;
    }
    Ok(())
}

/// Puts each failing document's error on its stored entity (whose last good version stays), and
/// clears errors from entities whose documents are valid again but unchanged.
async fn mark_errors(
    tx: &mut Transaction<'_, Any>,
    outcome: &LocationOutcome,
    stored: &BTreeMap<String, Stored>,
    plan: &Plan,
    now: i64,
) -> Result<(), StoreError> {
    if !outcome.read {
        // Nothing is known about the file: its entities' marks stay as they are.
        return Ok(());
    }
    let failing: BTreeMap<String, &String> = outcome.failing.iter().map(|(r, m)| (r.to_string(), m)).collect();
    for (entity_ref, row) in stored {
        if row.location_key != outcome.key || plan.update.contains(entity_ref) || plan.remove.contains(entity_ref) {
            continue;
        }
        let wanted = failing.get(entity_ref).map(|m| (*m).clone());
        if wanted != row.errors {
            sqlx::query("UPDATE entities SET errors = $1, updated_at = $2 WHERE entity_ref = $3")
                .bind(wanted)
                .bind(now)
                .bind(entity_ref.as_str())
                .execute(&mut **tx)
                .await
                .map_err(query_err("mark entity errors"))?;
        }
    }
    Ok(())
}

/// Replaces the relation rows an entity declared with its current ones.
async fn replace_relations(tx: &mut Transaction<'_, Any>, entity_ref: &str, entity: &Entity) -> Result<(), StoreError> {
    delete_relations(tx, entity_ref).await?;
    for relation in &entity.relations {
        sqlx::query("INSERT INTO relations (originating_ref, source_ref, type, target_ref) VALUES ($1, $2, $3, $4)")
            .bind(entity_ref)
            .bind(relation.source.to_string())
            .bind(relation.kind)
            .bind(relation.target.to_string())
            .execute(&mut **tx)
            .await
            .map_err(query_err("insert relation"))?;
    }
    Ok(())
}

async fn delete_relations(tx: &mut Transaction<'_, Any>, entity_ref: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM relations WHERE originating_ref = $1")
        .bind(entity_ref)
        .execute(&mut **tx)
        .await
        .map_err(query_err("delete relations"))?;
    Ok(())
}

/// Upserts the location's state, but only when state or errors changed.
async fn record_location(
    tx: &mut Transaction<'_, Any>,
    source: &str,
    outcome: &LocationOutcome,
    errors: &[DocumentError],
    now: i64,
) -> Result<(), StoreError> {
    let state = if errors.is_empty() { "ok" } else { "error" };
    let errors_json = (!errors.is_empty()).then(|| {
        Value::Array(errors.iter().map(|e| json!({"index": e.index, "message": e.message})).collect()).to_string()
    });
    let current = sqlx::query("SELECT state, errors FROM locations WHERE location_key = $1")
        .bind(outcome.key.as_str())
        .fetch_optional(&mut **tx)
        .await
        .map_err(query_err("read location"))?;
    if let Some(row) = current {
        let (s, e): (String, Option<String>) = (row.get(0), row.get(1));
        if s == state && e == errors_json {
            return Ok(());
        }
    }
    sqlx::query(
        "INSERT INTO locations (location_key, source, path, state, errors, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (location_key) DO UPDATE SET source = excluded.source, path = excluded.path, state = excluded.state, \
         errors = excluded.errors, updated_at = excluded.updated_at",
    )
    .bind(outcome.key.as_str())
    .bind(source)
    .bind(outcome.path.as_str())
    .bind(state)
    .bind(errors_json)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(query_err("record location"))?;
    Ok(())
}
