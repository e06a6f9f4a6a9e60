//! Row-level steps of a location write, each one statement (or a few) inside the caller's
//! transaction. `write` decides what to do; these do it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::{json, Value};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::diff::{Plan, Stored};
use super::{query_err, StoreError};
use crate::catalog::{search, DocumentError, Entity, LocationOutcome, OrphanStrategy};

pub(super) const STORED_COLUMNS: &str = "hash, location_key, source, orphan, errors";

pub(super) fn stored_from(row: &AnyRow, first: usize) -> Stored {
    Stored {
        hash: row.get(first),
        location_key: row.get(first + 1),
        source: row.get(first + 2),
        orphan: row.get::<i64, _>(first + 3) != 0,
        errors: row.get(first + 4),
    }
}

/// The rows these locations own plus the rows of every ref they want (which may belong to
/// others), by ref.
pub(super) async fn load_stored<'a>(
    tx: &mut Transaction<'_, Any>,
    location_keys: &[&str],
    wanted: impl Iterator<Item = &'a String>,
) -> Result<BTreeMap<String, Stored>, StoreError> {
    let mut stored = BTreeMap::new();
    let owned_sql = format!("SELECT entity_ref, {STORED_COLUMNS} FROM entities WHERE location_key");
    for row in select_in(tx, &owned_sql, location_keys, "load location entities").await? {
        stored.insert(row.get(0), stored_from(&row, 1));
    }
    let others: BTreeSet<&str> = wanted.map(String::as_str).filter(|r| !stored.contains_key(*r)).collect();
    let others: Vec<&str> = others.into_iter().collect();
    let wanted_sql = format!("SELECT entity_ref, {STORED_COLUMNS} FROM entities WHERE entity_ref");
    for row in select_in(tx, &wanted_sql, &others, "load entities").await? {
        stored.insert(row.get(0), stored_from(&row, 1));
    }
    Ok(stored)
}

/// Rows of `select` (a query ending in the column to match) whose column is one of `values`,
/// a chunk of bound parameters per statement.
async fn select_in(
    tx: &mut Transaction<'_, Any>,
    select: &str,
    values: &[&str],
    what: &'static str,
) -> Result<Vec<AnyRow>, StoreError> {
    let numbered = numbered(tx);
    let mut rows = Vec::new();
    for chunk in values.chunks(MAX_PARAMETERS) {
        let sql = format!("{select} IN ({})", placeholders(numbered, chunk.len()));
        let query = chunk.iter().fold(sqlx::query(&sql), |q, v| q.bind(*v));
        rows.extend(query.fetch_all(&mut **tx).await.map_err(query_err(what))?);
    }
    Ok(rows)
}

/// `n` bound parameters, comma-separated.
fn placeholders(numbered: bool, n: usize) -> String {
    (1..=n).map(|i| param(numbered, i)).collect::<Vec<_>>().join(", ")
}

/// A new entity row: the entity, its content hash and the location that declares it.
pub(super) type NewEntity<'a> = (&'a Entity, &'a String, &'a str);

/// Inserts new entities with multi-row statements, and their relation and search rows.
/// Returns the `(ref, location)` pairs actually inserted: a ref another location inserted first
/// (meanwhile, or earlier in the same batch) is skipped — it claimed first.
pub(super) async fn insert_entities(
    tx: &mut Transaction<'_, Any>,
    source: &str,
    new: &[NewEntity<'_>],
    now: i64,
) -> Result<HashSet<(String, String)>, StoreError> {
    const COLUMNS: usize = 11;
    let mut inserted = HashSet::new();
    let numbered = numbered(tx);
    for chunk in new.chunks(MAX_PARAMETERS / COLUMNS) {
        let placeholders: Vec<String> = (0..chunk.len())
            .map(|row| {
                let row: Vec<String> = (1..=COLUMNS).map(|c| param(numbered, row * COLUMNS + c)).collect();
                format!("({})", row.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO entities (entity_ref, uid, kind, namespace, name, source, location_key, body, hash, created_at, updated_at) \
             VALUES {} ON CONFLICT (entity_ref) DO NOTHING RETURNING entity_ref, location_key",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for (entity, hash, location_key) in chunk {
            let r = &entity.entity_ref;
            query = query
                .bind(r.to_string())
                .bind(uuid::Uuid::new_v4().to_string())
                .bind(r.kind.clone())
                .bind(r.namespace.clone())
                .bind(r.name.clone())
                .bind(source.to_owned())
                .bind((*location_key).to_owned())
                .bind(entity.body.to_string())
                .bind((*hash).clone())
                .bind(now)
                .bind(now);
        }
        let rows = query.fetch_all(&mut **tx).await.map_err(query_err("insert entities"))?;
        inserted.extend(rows.iter().map(|row| (row.get::<String, _>(0), row.get::<String, _>(1))));
    }
    let fresh: Vec<&Entity> = new
        .iter()
        .filter(|(e, _, key)| inserted.contains(&(e.entity_ref.to_string(), (*key).to_owned())))
        .map(|(e, _, _)| *e)
        .collect();
    // Derived rows a slice at a time: a 20,000-entity file's search rows need not all be in
    // memory at once.
    for slice in fresh.chunks(DERIVED_SLICE) {
        insert_derived(tx, slice).await?;
    }
    Ok(inserted)
}

/// New content for an entity this location owns or adopts; clears orphan and error marks.
/// Conditional on the owner we planned against: false when another source got there first.
pub(super) async fn write_body(
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
pub(super) async fn move_failing(
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
pub(super) async fn remove_entity(
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
        delete_derived(tx, entity_ref).await?;
    }
    Ok(())
}

/// Puts each failing document's error on its stored entity (whose last good version stays), and
/// clears errors from entities whose documents are valid again but unchanged.
pub(super) async fn mark_errors(
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

/// Replaces what is derived from an entity's body — the relation rows it declared and its search
/// rows — in the same transaction as the entity itself.
pub(super) async fn replace_derived(
    tx: &mut Transaction<'_, Any>,
    entity_ref: &str,
    entity: &Entity,
) -> Result<(), StoreError> {
    delete_derived(tx, entity_ref).await?;
    insert_derived(tx, &[entity]).await
}

/// Relation and search rows for entities that have none yet (just inserted).
async fn insert_derived(tx: &mut Transaction<'_, Any>, entities: &[&Entity]) -> Result<(), StoreError> {
    // Owned text first, then rows borrowing it: no string is copied again on its way to the driver.
    let refs: Vec<String> = entities.iter().map(|e| e.entity_ref.to_string()).collect();
    let relations: Vec<(&str, String, &str, String)> = entities
        .iter()
        .zip(&refs)
        .flat_map(|(e, r)| {
            e.relations.iter().map(move |rel| (r.as_str(), rel.source.to_string(), rel.kind, rel.target.to_string()))
        })
        .collect();
    let search: Vec<(&str, search::IndexRow)> = entities
        .iter()
        .zip(&refs)
        .flat_map(|(e, r)| search::index_rows(&e.body).into_iter().map(move |row| (r.as_str(), row)))
        .collect();
    let relation_rows: Vec<[Option<&str>; 4]> = relations
        .iter()
        .map(|(origin, source, kind, target)| [Some(*origin), Some(source), Some(*kind), Some(target)])
        .collect();
    let search_rows: Vec<[Option<&str>; 4]> = search
        .iter()
        .map(|(r, (key, value, original))| [Some(*r), Some(key), value.as_deref(), original.as_deref()])
        .collect();
    insert_rows(tx, "relations (originating_ref, source_ref, type, target_ref)", &relation_rows).await?;
    insert_rows(tx, "search (entity_ref, key, value, original_value)", &search_rows).await
}

pub(super) async fn delete_derived(tx: &mut Transaction<'_, Any>, entity_ref: &str) -> Result<(), StoreError> {
    for statement in ["DELETE FROM relations WHERE originating_ref = $1", "DELETE FROM search WHERE entity_ref = $1"] {
        sqlx::query(statement).bind(entity_ref).execute(&mut **tx).await.map_err(query_err("delete derived rows"))?;
    }
    Ok(())
}

/// Entities whose relation and search rows are built and written together.
const DERIVED_SLICE: usize = 500;

/// Bound parameters per statement: under SQLite's historic limit of 999.
const MAX_PARAMETERS: usize = 900;

/// Multi-row `INSERT … VALUES (…), (…)`: one round trip per chunk instead of one per row.
async fn insert_rows<const W: usize>(
    tx: &mut Transaction<'_, Any>,
    target: &str,
    rows: &[[Option<&str>; W]],
) -> Result<(), StoreError> {
    let per_statement = (MAX_PARAMETERS / W).max(1);
    let numbered = numbered(tx);
    let mut sql = String::new();
    for chunk in rows.chunks(per_statement) {
        // Every full chunk has the same text (and so the same prepared statement): build it once.
        if sql.is_empty() || chunk.len() != per_statement {
            sql = values_statement(target, W, chunk.len(), numbered);
        }
        let query = chunk.iter().flatten().fold(sqlx::query(&sql), |q, value| q.bind(*value));
        query.execute(&mut **tx).await.map_err(query_err("insert rows"))?;
    }
    Ok(())
}

fn values_statement(target: &str, width: usize, rows: usize, numbered: bool) -> String {
    let mut sql = format!("INSERT INTO {target} VALUES ");
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for col in 1..=width {
            if col > 1 {
                sql.push_str(", ");
            }
            sql.push_str(&param(numbered, row * width + col));
        }
        sql.push(')');
    }
    sql
}

/// Whether bound parameters are written `$n` (PostgreSQL) rather than `?` (SQLite).
fn numbered(tx: &Transaction<'_, Any>) -> bool {
    tx.backend_name() != "SQLite"
}

/// The `n`th bound parameter of a long statement. SQLite gets anonymous `?`, bound in order:
/// for a numbered name the driver asks SQLite for each parameter's name, which SQLite finds by
/// scanning its list of names from the start — quadratic in a 900-parameter insert, and a
/// third of a large ingest's time.
fn param(numbered: bool, n: usize) -> String {
    if numbered {
        format!("${n}")
    } else {
        "?".to_owned()
    }
}

/// Upserts each location's state, but only where state or errors changed. A location listed
/// twice is recorded as its last entry says.
pub(super) async fn record_locations(
    tx: &mut Transaction<'_, Any>,
    source: &str,
    items: &[(&LocationOutcome, &[DocumentError])],
    now: i64,
) -> Result<(), StoreError> {
    let numbered = numbered(tx);
    let mut current = HashMap::new();
    let keys: Vec<&str> = items.iter().map(|(o, _)| o.key.as_str()).collect();
    let select = "SELECT location_key, state, errors, parent, held_by FROM locations WHERE location_key";
    for row in select_in(tx, select, &keys, "read locations").await? {
        let state: LocationRow = (row.get(1), row.get(2), row.get(3), row.get(4));
        current.insert(row.get::<String, _>(0), state);
    }
    let mut changed: BTreeMap<&str, [Option<String>; 6]> = BTreeMap::new();
    for (outcome, errors) in items {
        match location_update(source, outcome, errors, current.get(&outcome.key)) {
            Some(row) => changed.insert(&outcome.key, row),
            None => changed.remove(outcome.key.as_str()),
        };
    }
    let rows: Vec<&[Option<String>; 6]> = changed.values().collect();
    for chunk in rows.chunks(MAX_PARAMETERS / 7) {
        // The same text for the same number of rows, so the prepared statement is reused.
        let values: Vec<String> = (0..chunk.len())
            .map(|row| {
                let p: Vec<String> = (1..=7).map(|c| param(numbered, row * 7 + c)).collect();
                format!("({})", p.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO locations (location_key, source, path, state, errors, updated_at, parent) VALUES {} \
             ON CONFLICT (location_key) DO UPDATE SET source = excluded.source, path = excluded.path, state = excluded.state, \
             errors = excluded.errors, updated_at = excluded.updated_at, parent = COALESCE(excluded.parent, locations.parent), \
             held_by = NULL",
            values.join(", ")
        );
        let query = chunk.iter().fold(sqlx::query(&sql), |q, [key, source, path, state, errors, parent]| {
            q.bind(key.as_deref())
                .bind(source.as_deref())
                .bind(path.as_deref())
                .bind(state.as_deref())
                .bind(errors.as_deref())
                .bind(now)
                .bind(parent.as_deref())
        });
        query.execute(&mut **tx).await.map_err(query_err("record locations"))?;
    }
    Ok(())
}

/// A stored location's state, errors, parents and holder.
type LocationRow = (String, Option<String>, Option<String>, Option<String>);

/// The row to upsert for a location (key, source, path, state, errors, parent), or `None` when
/// what is stored already says the same.
fn location_update(
    source: &str,
    outcome: &LocationOutcome,
    errors: &[DocumentError],
    current: Option<&LocationRow>,
) -> Option<[Option<String>; 6]> {
    let state = if errors.is_empty() { "ok" } else { "error" };
    let errors_json = (!errors.is_empty()).then(|| {
        let error = |e: &DocumentError| json!({"index": e.index, "line": e.line, "message": e.message});
        Value::Array(errors.iter().map(error).collect()).to_string()
    });
    let mut parent = outcome.parent.clone();
    if let Some((s, e, stored, held)) = current {
        // Parents recorded earlier (further ones included) stay while they still hold this one.
        let known = match (&outcome.parent, stored) {
            (None, _) => true,
            (Some(new), Some(stored)) => parent_lines(stored).contains(new),
            (Some(_), None) => false,
        };
        if known {
            parent.clone_from(stored);
        }
        if s == state && *e == errors_json && known && held.is_none() {
            return None;
        }
    }
    Some([
        Some(outcome.key.clone()),
        Some(source.to_owned()),
        Some(outcome.path.clone()),
        Some(state.to_owned()),
        errors_json,
        parent,
    ])
}

/// The parent keys of a location as stored: one per line.
pub(super) fn parent_lines(stored: &str) -> Vec<String> {
    stored.split('\n').map(str::to_owned).collect()
}

/// An entity body as stored. Bodies were written by the catalog, whose YAML reader bounds their
/// nesting (`yaml::MAX_DEPTH`) above `serde_json`'s default limit of 128 levels.
pub(super) fn parse_body(text: &str) -> serde_json::Result<Value> {
    use serde::Deserialize;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    deserializer.disable_recursion_limit();
    Value::deserialize(&mut deserializer)
}
