//! Writing one location's entities in one transaction, and the per-source bookkeeping.

use std::collections::BTreeMap;

use sqlx::Row;

use super::diff::{self, content_hash, Declared, Walk};
use super::rows::{
    insert_entities, load_stored, mark_errors, move_failing, record_locations, remove_entity, replace_derived,
    write_body, NewEntity,
};
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
    /// Files whose write the database refused whole (their errors recorded on their own).
    pub refused: u64,
}

impl Changes {
    /// Nothing of it waits on anything but a new commit: no entity contested (another source
    /// may let go of it), no write refused (the next pass tries the file again).
    pub fn is_final(&self) -> bool {
        self.conflicts == 0 && self.refused == 0
    }

    pub fn entity_writes(&self) -> u64 {
        self.added + self.updated + self.deleted
    }

    pub fn absorb(&mut self, other: Changes) {
        self.added += other.added;
        self.updated += other.updated;
        self.deleted += other.deleted;
        self.unchanged += other.unchanged;
        self.conflicts += other.conflicts;
        self.refused += other.refused;
    }
}

/// What a streamed location write left for the end of the walk.
#[derive(Debug, Clone, Default)]
pub struct Deferred {
    pub key: String,
    pub path: String,
    /// The file's own errors, to restate with any conflicts found at the end.
    pub errors: Vec<DocumentError>,
    /// Entities this file declares that another location owns, with their hashes.
    pub claims: Vec<(Entity, String)>,
    /// Failing documents naming an entity another location owns, with the error.
    pub failing_claims: Vec<(String, Option<String>)>,
    /// Entities this file owned and no longer declares.
    pub removals: Vec<String>,
}

impl Deferred {
    pub fn is_empty(&self) -> bool {
        self.claims.is_empty() && self.failing_claims.is_empty() && self.removals.is_empty()
    }
}

fn conflict_error(entity_ref: &str, owner: &str, claimant: &str) -> DocumentError {
    DocumentError {
        index: None,
        line: None,
        message: format!("entity {entity_ref} is already managed by {owner}; {claimant} is ignored until that location stops declaring it"),
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

    /// Writes one location of a walk that is already complete: phase one (this file's own
    /// writes) and, for what it left, phase two (hand-overs, removals, conflicts) right after.
    /// Returns the changes and the conflicts found, as document errors.
    pub async fn apply_location(
        &self,
        source: &str,
        outcome: &LocationOutcome,
        walk: &Walk,
        orphans: OrphanStrategy,
    ) -> Result<(Changes, Vec<DocumentError>), StoreError> {
        let (mut changes, left) = self.apply_location_streamed(source, outcome, &Declared::of(outcome)).await?;
        if left.is_empty() {
            return Ok((changes, Vec::new()));
        }
        let (settled, conflicts) = self.settle(source, walk, &left, orphans).await?;
        changes.absorb(settled);
        Ok((changes, conflicts))
    }

    /// Phase one of a streamed pass (one file at a time, so memory is bounded by the largest
    /// file): writes what this file decides on its own — new, changed and unchanged entities,
    /// its failing documents' marks, its state — and defers what needs the whole walk: taking
    /// entities from other locations, and removing ones the file dropped (they may have moved).
    /// `declared` is [`Declared::of`] the outcome, which the caller keeps for the walk.
    pub async fn apply_location_streamed(
        &self,
        source: &str,
        outcome: &LocationOutcome,
        declared: &Declared,
    ) -> Result<(Changes, Deferred), StoreError> {
        let (mut tx, _turn) = self.begin_write().await?;
        let mut written = apply_in(&mut tx, source, &[(outcome, declared)]).await?;
        tx.commit().await.map_err(query_err("commit"))?;
        Ok(written.pop().expect("one location in, one out"))
    }

    /// Phase one of several locations in one transaction, in order: what each would write
    /// alone, at the cost of one commit. Small files (a monorepo of one entity per file) spend
    /// most of their time committing. All or nothing: on an error nothing of the batch is
    /// written, and the caller writes the files one by one to find the one that fails.
    pub async fn apply_locations_streamed(
        &self,
        source: &str,
        batch: &[(&LocationOutcome, &Declared)],
    ) -> Result<Vec<(Changes, Deferred)>, StoreError> {
        let (mut tx, _turn) = self.begin_write().await?;
        let written = apply_in(&mut tx, source, batch).await?;
        tx.commit().await.map_err(query_err("commit"))?;
        Ok(written)
    }

    /// Deletes the entity with `uid` if it is an orphan (no location declares it any more): a
    /// declared entity would come back with the next sync, so it stays, and the answer says
    /// which location declares it.
    pub async fn delete_orphan(&self, uid: &str) -> Result<OrphanDeletion, StoreError> {
        let (mut tx, _turn) = self.begin_write().await?;
        let row = sqlx::query("SELECT entity_ref, orphan, location_key FROM entities WHERE uid = $1")
            .bind(uid)
            .fetch_optional(&mut *tx)
            .await
            .map_err(query_err("find entity by uid"))?;
        let Some(row) = row else { return Ok(OrphanDeletion::NotFound) };
        let (entity_ref, orphan, location_key): (String, i64, String) = (row.get(0), row.get(1), row.get(2));
        if orphan == 0 {
            return Ok(OrphanDeletion::Declared { entity_ref, location_key });
        }
        // Objects Rigger applied for it are still inventoried: deleting the entity would leave
        // them to a prune nobody asked for.
        let applied = sqlx::query("SELECT COUNT(*) FROM cluster_inventory WHERE entity_ref = $1")
            .bind(&entity_ref)
            .fetch_one(&mut *tx)
            .await
            .map_err(query_err("count the orphan's cluster objects"))?;
        if applied.get::<i64, _>(0) > 0 {
            return Ok(OrphanDeletion::HoldsClusterObjects { entity_ref });
        }
        let deleted = sqlx::query("DELETE FROM entities WHERE entity_ref = $1 AND orphan = 1")
            .bind(&entity_ref)
            .execute(&mut *tx)
            .await
            .map_err(query_err("delete orphan"))?;
        // Declared again meanwhile (another replica's pass): it is not ours to delete.
        if deleted.rows_affected() != 1 {
            return Ok(OrphanDeletion::Declared { entity_ref, location_key });
        }
        super::rows::delete_derived(&mut tx, &entity_ref).await?;
        tx.commit().await.map_err(query_err("commit"))?;
        Ok(OrphanDeletion::Deleted { entity_ref })
    }

    /// Records a location's errors alone, for a file whose write the database refused: its
    /// entities stay as they were, and its state says why.
    pub async fn record_location_errors(&self, source: &str, outcome: &LocationOutcome) -> Result<(), StoreError> {
        let (mut tx, _turn) = self.begin_write().await?;
        record_locations(&mut tx, source, &[(outcome, &outcome.errors)], now_millis()).await?;
        tx.commit().await.map_err(query_err("commit"))
    }

    /// Writes `entity` as a location write would, and rolls it back: `Err` says the store cannot
    /// hold this one entity (a value the database refuses), so its document alone fails.
    pub async fn check_entity(&self, source: &str, key: &str, entity: &Entity) -> Result<(), StoreError> {
        let entity_ref = entity.entity_ref.to_string();
        let (mut tx, _turn) = self.begin_write().await?;
        super::rows::delete_derived(&mut tx, &entity_ref).await?;
        sqlx::query("DELETE FROM entities WHERE entity_ref = $1")
            .bind(&entity_ref)
            .execute(&mut *tx)
            .await
            .map_err(query_err("check entity"))?;
        let hash = content_hash(&entity.body);
        insert_entities(&mut tx, source, &[(entity, &hash, key)], now_millis()).await?;
        tx.rollback().await.map_err(query_err("rollback"))
    }

    /// Phase two of a streamed pass, once the whole walk is known: hands over entities whose
    /// owners gave them up, records conflicts for the rest, and removes what really left.
    pub async fn settle(
        &self,
        source: &str,
        walk: &Walk,
        deferred: &Deferred,
        orphans: OrphanStrategy,
    ) -> Result<(Changes, Vec<DocumentError>), StoreError> {
        let mut changes = Changes::default();
        let mut conflicts = Vec::new();
        let (mut tx, _turn) = self.begin_write().await?;
        let wanted: Vec<String> = deferred
            .claims
            .iter()
            .map(|(e, _)| e.entity_ref.to_string())
            .chain(deferred.failing_claims.iter().map(|(r, _)| r.clone()))
            .collect();
        let stored = load_stored(&mut tx, &[&deferred.key], wanted.iter()).await?;
        let now = now_millis();
        // Claims on entities nobody holds any more: the holder let go after this file was
        // written (another source's pass ran in between). Taken now, or they would wait for
        // this location's next change.
        let freed: Vec<NewEntity> = deferred
            .claims
            .iter()
            .filter(|(e, _)| !stored.contains_key(&e.entity_ref.to_string()))
            .map(|(e, h)| (e, h, deferred.key.as_str()))
            .collect();
        let taken = insert_entities(&mut tx, source, &freed, now).await?;
        changes.added += taken.len() as u64;
        for (entity, hash) in &deferred.claims {
            let entity_ref = entity.entity_ref.to_string();
            let Some(row) = stored.get(&entity_ref) else {
                if !taken.contains(&(entity_ref.clone(), deferred.key.clone())) {
                    // Inserted by a third location in the meantime: it claimed first.
                    conflicts.push(conflict_error(&entity_ref, "another location", &deferred.key));
                }
                continue;
            };
            if walk.releases(row, &entity_ref)
                && write_body(&mut tx, source, &deferred.key, &row.location_key, entity, hash, now).await?
            {
                replace_derived(&mut tx, &entity_ref, entity).await?;
                changes.updated += 1;
            } else {
                conflicts.push(conflict_error(&entity_ref, &row.location_key, &deferred.key));
            }
        }
        for (entity_ref, message) in &deferred.failing_claims {
            if let Some(row) = stored.get(entity_ref).filter(|row| walk.releases(row, entity_ref)) {
                move_failing(&mut tx, source, &deferred.key, &row.location_key, entity_ref, message.clone(), now)
                    .await?;
                changes.updated += 1;
            }
        }
        for entity_ref in deferred.removals.iter().filter(|r| !walk.moving_elsewhere(&deferred.key, r)) {
            remove_entity(&mut tx, entity_ref, &deferred.key, orphans, now).await?;
            changes.deleted += 1;
        }
        if !conflicts.is_empty() {
            let mut errors = deferred.errors.clone();
            errors.extend(conflicts.iter().cloned());
            let location = LocationOutcome::new(deferred.key.clone(), deferred.path.clone());
            record_locations(&mut tx, source, &[(&location, &errors)], now).await?;
        }
        changes.conflicts = conflicts.len() as u64;
        tx.commit().await.map_err(query_err("commit"))?;
        Ok((changes, conflicts))
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
        let keys: Vec<String> =
            rows.iter().map(|row| row.get::<String, _>(0)).filter(|k| !reached.contains(k)).collect();
        self.delete_locations(&keys, orphans).await
    }

    /// Deletes these locations with their entities (or marks the entities orphans).
    pub async fn delete_locations(&self, keys: &[String], orphans: OrphanStrategy) -> Result<Changes, StoreError> {
        let mut changes = Changes::default();
        for key in keys {
            let (mut tx, _turn) = self.begin_write().await?;
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
                    for derived in [
                        "DELETE FROM relations WHERE originating_ref IN (SELECT entity_ref FROM entities WHERE location_key = $1)",
                        "DELETE FROM search WHERE entity_ref IN (SELECT entity_ref FROM entities WHERE location_key = $1)",
                    ] {
                        sqlx::query(derived)
                            .bind(key.as_str())
                            .execute(&mut *tx)
                            .await
                            .map_err(query_err("delete location rows"))?;
                    }
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

    /// Where each location of `source` was reached from: the keys of the locations whose
    /// `Location` led to it (`""` for a root), `None` when not known.
    pub async fn location_parents(&self, source: &str) -> Result<BTreeMap<String, Option<Vec<String>>>, StoreError> {
        let rows = sqlx::query("SELECT location_key, parent FROM locations WHERE source = $1")
            .bind(source)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("list location parents"))?;
        Ok(rows
            .iter()
            .map(|row| (row.get(0), row.get::<Option<String>, _>(1).map(|p| super::rows::parent_lines(&p))))
            .collect())
    }

    /// Records further locations that lead to a location (a file reached from two Locations):
    /// each is written only when not recorded yet.
    pub async fn add_parents(&self, pairs: &[(String, String)]) -> Result<(), StoreError> {
        for (key, parent) in pairs {
            let row = sqlx::query("SELECT parent FROM locations WHERE location_key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(query_err("read location parents"))?;
            let Some(row) = row else { continue };
            let Some(current) = row.get::<Option<String>, _>(0) else { continue };
            if super::rows::parent_lines(&current).contains(parent) {
                continue;
            }
            sqlx::query("UPDATE locations SET parent = $2 WHERE location_key = $1")
                .bind(key)
                .bind(format!("{current}\n{parent}"))
                .execute(&self.pool)
                .await
                .map_err(query_err("add location parent"))?;
        }
        Ok(())
    }

    /// Marks locations whose deletion is held back, with the location in error holding each.
    /// Returns those newly held (or held by another location than before), to be told once.
    pub async fn hold_locations(&self, held: &BTreeMap<String, String>) -> Result<Vec<String>, StoreError> {
        let _turn = self.write_turn().await;
        let mut newly = Vec::new();
        for (key, holder) in held {
            let changed = sqlx::query(
                "UPDATE locations SET held_by = $2 WHERE location_key = $1 AND (held_by IS NULL OR held_by <> $2)",
            )
            .bind(key)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(query_err("hold location"))?;
            if changed.rows_affected() > 0 {
                newly.push(key.clone());
            }
        }
        Ok(newly)
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
        let _turn = self.write_turn().await;
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
        let _turn = self.write_turn().await;
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

/// Phase one of several locations inside `tx`, in order, as each would be written alone (see
/// [`Store::apply_location_streamed`]), with one statement per step for the whole batch rather
/// than per file: stored rows are read once, new entities inserted together (a ref two files of
/// the batch declare goes to the first), location states recorded together.
async fn apply_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    source: &str,
    batch: &[(&LocationOutcome, &Declared)],
) -> Result<Vec<(Changes, Deferred)>, StoreError> {
    let keys: Vec<&str> = batch.iter().map(|(o, _)| o.key.as_str()).collect();
    // Collected first: a closure-built iterator held across an await makes the future lose `Send`.
    let wanted: Vec<&String> = batch.iter().flat_map(|(_, d)| d.valid.keys().chain(&d.failing)).collect();
    let stored = load_stored(&mut *tx, &keys, wanted.into_iter()).await?;
    let plans: Vec<diff::Plan> =
        batch.iter().map(|(o, d)| diff::plan(&o.key, d, &stored, &alone(source, o, d))).collect();
    let entities: Vec<BTreeMap<String, &Entity>> =
        batch.iter().map(|(o, _)| o.entities.iter().map(|e| (e.entity_ref.to_string(), e)).collect()).collect();
    let new: Vec<NewEntity> = batch
        .iter()
        .zip(&plans)
        .zip(&entities)
        .flat_map(|(((o, d), plan), entities)| plan.insert.iter().map(|r| (entities[r], &d.valid[r], o.key.as_str())))
        .collect();
    let now = now_millis();
    let inserted = insert_entities(&mut *tx, source, &new, now).await?;
    let mut written = Vec::with_capacity(batch.len());
    for (((outcome, declared), plan), entities) in batch.iter().zip(&plans).zip(&entities) {
        let mut changes = Changes { unchanged: plan.unchanged as u64, ..Changes::default() };
        let mut deferred = Deferred {
            key: outcome.key.clone(),
            path: outcome.path.clone(),
            errors: outcome.errors.clone(),
            ..Deferred::default()
        };
        for entity_ref in &plan.insert {
            if inserted.contains(&(entity_ref.clone(), outcome.key.clone())) {
                changes.added += 1;
            } else {
                deferred.claims.push(((*entities[entity_ref]).clone(), declared.valid[entity_ref].clone()));
            }
        }
        for (entity_ref, _) in &plan.conflicts {
            deferred.claims.push(((*entities[entity_ref]).clone(), declared.valid[entity_ref].clone()));
        }
        for entity_ref in plan.update.iter().chain(&plan.adopt) {
            let (entity, hash) = (entities[entity_ref], &declared.valid[entity_ref]);
            if write_body(&mut *tx, source, &outcome.key, &stored[entity_ref].location_key, entity, hash, now).await? {
                replace_derived(&mut *tx, entity_ref, entity).await?;
                changes.updated += 1;
            } else {
                deferred.claims.push(((*entity).clone(), hash.clone()));
            }
        }
        for (entity_ref, message) in &outcome.failing {
            let entity_ref = entity_ref.to_string();
            if stored.get(&entity_ref).is_some_and(|row| row.location_key != outcome.key) {
                deferred.failing_claims.push((entity_ref, Some(message.clone())));
            }
        }
        deferred.removals.clone_from(&plan.remove);
        mark_errors(&mut *tx, outcome, &stored, plan, now).await?;
        written.push((changes, deferred));
    }
    let states: Vec<(&LocationOutcome, &[DocumentError])> =
        batch.iter().map(|(o, _)| (*o, o.errors.as_slice())).collect();
    record_locations(&mut *tx, source, &states, now).await?;
    Ok(written)
}

/// The walk a location is planned against in phase one: itself alone, so nothing is taken from
/// another location before the whole walk is known.
fn alone(source: &str, outcome: &LocationOutcome, declared: &Declared) -> Walk {
    Walk {
        source: source.to_owned(),
        complete: false,
        reached: [(outcome.key.clone(), declared.clone())].into(),
        gone: None,
    }
}

/// What [`Store::delete_orphan`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum OrphanDeletion {
    NotFound,
    /// A location declares it: not deleted.
    Declared {
        entity_ref: String,
        location_key: String,
    },
    /// Rigger applied cluster objects for it: not deleted.
    HoldsClusterObjects {
        entity_ref: String,
    },
    Deleted {
        entity_ref: String,
    },
}
