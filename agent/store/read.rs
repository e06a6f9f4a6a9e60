//! Reading the catalog back, for the HTTP API, metrics and tests.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{json, Value};
use sha1::{Digest, Sha1};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{query_err, Backend, Store, StoreError};

/// An entity as stored, with its identity and the relations whose source it is.
#[derive(Debug, Clone)]
pub struct StoredEntity {
    pub entity_ref: String,
    pub uid: String,
    /// The content hash of the body; the API's etag also covers relations.
    pub hash: String,
    pub source: String,
    pub location_key: String,
    pub body: Value,
    pub updated_at: i64,
    /// `(type, targetRef)`, distinct, sorted by type then target — Backstage's order.
    pub relations: Vec<(String, String)>,
    /// No location declares it any more (kept by `orphan_strategy: keep`).
    pub orphan: bool,
    /// Why its document currently fails; the body is the last good version.
    pub errors: Option<String>,
    /// The cluster's view (sync state, health) as a Backstage status item, when it declares
    /// cluster objects.
    pub cluster_status: Option<Value>,
    /// Objects it holds that other entities were refused, as a status item.
    pub ownership_status: Option<Value>,
}

impl StoredEntity {
    /// The entity as Backstage's API serves it: `metadata.uid`, `metadata.etag`, `relations`,
    /// and, when they apply, the orphan annotation and `status.items`.
    pub fn to_api(&self) -> Value {
        let mut entity = self.final_entity();
        let etag = hex::encode(Sha1::digest(entity.to_string().as_bytes()));
        if let Some(metadata) = entity.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.insert("uid".into(), Value::String(self.uid.clone()));
            metadata.insert("etag".into(), Value::String(etag));
        }
        entity
    }

    /// Whether `filter` holds for this entity as it would in the store's query; an empty filter
    /// (no condition) holds without building anything.
    pub fn meets(&self, filter: &crate::catalog::search::Filter) -> bool {
        filter.is_empty() || filter.matches(&self.filter_rows())
    }

    /// What a filter sees of this entity, exactly as the store's queries see it: the index rows
    /// of its stored body (not the served orphan annotation or etag; keys too long left out,
    /// values too long kept only for "exists"), its relations and its uid. Filters checked in
    /// memory use these, so they agree with the same filters in SQL.
    pub fn filter_rows(&self) -> crate::catalog::search::Rows {
        let mut rows = crate::catalog::search::Rows::new();
        for (key, value, _) in crate::catalog::search::index_rows(&self.body) {
            rows.entry(key).or_default().extend(value);
        }
        for (kind, target) in &self.relations {
            rows.entry(format!("relations.{}", kind.to_lowercase())).or_default().push(target.clone());
        }
        rows.entry("metadata.uid".to_owned()).or_default().push(self.uid.clone());
        rows
    }

    /// Changes whenever anything served changes (body, relations, orphan mark, status), like
    /// Backstage's etag over the stitched entity.
    pub fn etag(&self) -> String {
        hex::encode(Sha1::digest(self.final_entity().to_string().as_bytes()))
    }

    /// Everything served except the identity fields.
    fn final_entity(&self) -> Value {
        let mut entity = self.body.clone();
        if self.orphan {
            if let Some(metadata) = entity.get_mut("metadata").and_then(Value::as_object_mut) {
                let annotations = metadata.entry("annotations").or_insert_with(|| json!({}));
                annotations["backstage.io/orphan"] = Value::String("true".into());
            }
        }
        let relations =
            self.relations.iter().map(|(kind, target)| json!({"type": kind, "targetRef": target})).collect();
        if let Some(root) = entity.as_object_mut() {
            root.insert("relations".into(), Value::Array(relations));
            let mut items: Vec<Value> = Vec::new();
            if let Some(message) = &self.errors {
                items.push(processing_status(message));
            }
            items.extend(self.cluster_status.clone());
            items.extend(self.ownership_status.clone());
            if !items.is_empty() {
                root.insert("status".into(), json!({ "items": items }));
            }
        }
        entity
    }
}

/// Backstage's shape for processing errors in `status.items`.
fn processing_status(message: &str) -> Value {
    json!({
        "type": "backstage.io/catalog-processing",
        "level": "error",
        "message": message,
        "error": {"name": "InputError", "message": message},
    })
}

/// A relation whose target is not in the catalog (e.g. a dangling owner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnresolvedRelation {
    pub source: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub target: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LocationRow {
    pub location_key: String,
    pub source: String,
    pub path: String,
    pub state: String,
    pub errors: Option<Value>,
    pub updated_at: i64,
    /// Set while the file is no longer reached but its deletion is held back: the location in
    /// error that leads to it.
    pub held_by: Option<String>,
}

impl LocationRow {
    /// The file's problems as stored: `(line its document starts on, message)`.
    pub fn problems(&self) -> Vec<(Option<u64>, String)> {
        let items = self.errors.as_ref().and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        items.iter().map(|e| (e["line"].as_u64(), e["message"].as_str().unwrap_or_default().to_owned())).collect()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceRow {
    pub name: String,
    pub revision: Option<String>,
    /// When the revision or error last changed (Unix ms); passes that change nothing write nothing.
    pub changed_at: Option<i64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncRunRow {
    pub id: i64,
    pub source: String,
    pub revision: Option<String>,
    pub started_at: i64,
    pub finished_at: i64,
    pub added: i64,
    pub updated: i64,
    pub deleted: i64,
    pub unchanged: i64,
    pub errors: i64,
    pub error: Option<String>,
}

const ENTITY_COLUMNS: &str =
    "entity_ref, uid, hash, source, location_key, body, updated_at, orphan, errors, cluster_status, ownership_status";

pub(super) fn entity_columns() -> &'static str {
    ENTITY_COLUMNS
}

pub(super) fn entity_from_row(row: &AnyRow) -> Result<StoredEntity, StoreError> {
    let entity_ref: String = row.get(0);
    let body: String = row.get(5);
    let body = super::rows::parse_body(&body)
        .map_err(|source| StoreError::Corrupt { entity_ref: entity_ref.clone(), source })?;
    Ok(StoredEntity {
        entity_ref,
        uid: row.get(1),
        hash: row.get(2),
        source: row.get(3),
        location_key: row.get(4),
        body,
        updated_at: row.get(6),
        relations: Vec::new(),
        orphan: row.get::<i64, _>(7) != 0,
        errors: row.get(8),
        cluster_status: row.get::<Option<String>, _>(9).and_then(|s| serde_json::from_str(&s).ok()),
        ownership_status: row.get::<Option<String>, _>(10).and_then(|s| serde_json::from_str(&s).ok()),
    })
}

impl Store {
    /// All entities, optionally of one kind, in ref order.
    pub async fn entities(&self, kind: Option<&str>) -> Result<Vec<StoredEntity>, StoreError> {
        let rows = match kind {
            Some(kind) => {
                sqlx::query(&format!("SELECT {ENTITY_COLUMNS} FROM entities WHERE kind = $1 ORDER BY entity_ref"))
                    .bind(kind.to_lowercase())
                    .fetch_all(&self.pool)
                    .await
            }
            None => {
                sqlx::query(&format!("SELECT {ENTITY_COLUMNS} FROM entities ORDER BY entity_ref"))
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(query_err("list entities"))?;
        let mut entities: Vec<StoredEntity> = rows.iter().map(entity_from_row).collect::<Result<_, _>>()?;
        let mut relations = self.all_relations().await?;
        for entity in &mut entities {
            entity.relations = relations.remove(&entity.entity_ref).unwrap_or_default();
        }
        Ok(entities)
    }

    async fn all_relations(&self) -> Result<HashMap<String, Vec<(String, String)>>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT source_ref, type, target_ref FROM relations ORDER BY source_ref, type, target_ref",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list relations"))?;
        let mut out: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for row in rows {
            out.entry(row.get(0)).or_default().push((row.get(1), row.get(2)));
        }
        Ok(out)
    }

    /// Relations declared by an entity whose target does not exist, in ref order.
    pub async fn unresolved_relations(&self) -> Result<Vec<UnresolvedRelation>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT r.source_ref, r.type, r.target_ref FROM relations r \
             LEFT JOIN entities e ON e.entity_ref = r.target_ref \
             WHERE r.source_ref = r.originating_ref AND e.entity_ref IS NULL \
             ORDER BY r.source_ref, r.type, r.target_ref",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("unresolved relations"))?;
        Ok(rows.iter().map(|r| UnresolvedRelation { source: r.get(0), kind: r.get(1), target: r.get(2) }).collect())
    }

    /// One entity by canonical ref (`kind:namespace/name`, any case), with its relations in the
    /// same round trip (aggregated as JSON): `by-name` is the API's hottest path.
    pub async fn entity(&self, entity_ref: &str) -> Result<Option<StoredEntity>, StoreError> {
        let aggregate = match self.backend {
            Backend::Postgres => "COALESCE(json_agg(json_build_array(r.type, r.target_ref))::text, '[]')",
            Backend::Sqlite => "COALESCE(json_group_array(json_array(r.type, r.target_ref)), '[]')",
        };
        let sql = format!(
            "SELECT {ENTITY_COLUMNS}, (SELECT {aggregate} FROM (SELECT DISTINCT type, target_ref FROM relations              WHERE source_ref = entities.entity_ref) r) FROM entities WHERE entity_ref = $1"
        );
        let row = sqlx::query(&sql)
            .bind(entity_ref.to_lowercase())
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("get entity"))?;
        let Some(row) = row else { return Ok(None) };
        let mut entity = entity_from_row(&row)?;
        let relations: String = row.get(11);
        let mut relations: Vec<(String, String)> = serde_json::from_str(&relations)
            .map_err(|source| StoreError::Corrupt { entity_ref: entity.entity_ref.clone(), source })?;
        relations.sort();
        entity.relations = relations;
        Ok(Some(entity))
    }

    /// Entity counts per kind (as written in the entities, e.g. `Component`).
    pub async fn entity_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT kind, COUNT(*) FROM entities GROUP BY kind ORDER BY kind")
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("count entities"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// How many entities a source declares.
    pub async fn entity_count(&self, source: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM entities WHERE source = $1")
            .bind(source)
            .fetch_one(&self.pool)
            .await
            .map_err(query_err("count a source's entities"))?;
        Ok(row.get(0))
    }

    /// A source's catalog files in error, in location order.
    pub async fn locations_in_error_of(&self, source: &str) -> Result<Vec<LocationRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT location_key, source, path, state, errors, updated_at, held_by FROM locations \
             WHERE source = $1 AND state = 'error' ORDER BY location_key",
        )
        .bind(source)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list a source's locations in error"))?;
        Ok(rows.iter().map(location_row).collect())
    }

    /// Entity counts per source.
    pub async fn entity_counts_by_source(&self) -> Result<HashMap<String, i64>, StoreError> {
        let rows = sqlx::query("SELECT source, COUNT(*) FROM entities GROUP BY source")
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("count entities by source"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub async fn locations(&self) -> Result<Vec<LocationRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT location_key, source, path, state, errors, updated_at, held_by FROM locations ORDER BY location_key",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list locations"))?;
        Ok(rows.iter().map(location_row).collect())
    }

    /// How many catalog files of a source are in error.
    pub async fn locations_in_error(&self, source: &str) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM locations WHERE source = $1 AND state = 'error'")
            .bind(source)
            .fetch_one(&self.pool)
            .await
            .map_err(query_err("count locations in error"))?;
        Ok(u64::try_from(row.get::<i64, _>(0)).unwrap_or_default())
    }

    /// Every source the store knows: last synced revision and the error of its last failed pass.
    pub async fn sources(&self) -> Result<Vec<SourceRow>, StoreError> {
        let rows = sqlx::query("SELECT name, revision, synced_at, error FROM sources ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("list sources"))?;
        Ok(rows
            .iter()
            .map(|r| SourceRow { name: r.get(0), revision: r.get(1), changed_at: r.get(2), error: r.get(3) })
            .collect())
    }

    /// The newest sync runs first.
    pub async fn sync_runs(&self, limit: i64) -> Result<Vec<SyncRunRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, source, revision, started_at, finished_at, added, updated, deleted, unchanged, errors, error \
             FROM sync_runs ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list sync runs"))?;
        Ok(rows
            .iter()
            .map(|r| SyncRunRow {
                id: r.get(0),
                source: r.get(1),
                revision: r.get(2),
                started_at: r.get(3),
                finished_at: r.get(4),
                added: r.get(5),
                updated: r.get(6),
                deleted: r.get(7),
                unchanged: r.get(8),
                errors: r.get(9),
                error: r.get(10),
            })
            .collect())
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
}

impl Store {
    /// Location key by file path, for every location of `source` the last walks reached.
    pub async fn location_keys_by_path(&self, source: &str) -> Result<HashMap<String, String>, StoreError> {
        let rows = sqlx::query("SELECT path, location_key FROM locations WHERE source = $1")
            .bind(source)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("list locations"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// The locations whose `Location` led to `location_key`: empty for a source's root (or a
    /// location not recorded).
    pub async fn parents_of(&self, location_key: &str) -> Result<Vec<String>, StoreError> {
        let row = sqlx::query("SELECT parent FROM locations WHERE location_key = $1")
            .bind(location_key)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("read a location's parents"))?;
        let parents = row.and_then(|row| row.get::<Option<String>, _>(0)).map(|p| super::rows::parent_lines(&p));
        Ok(parents.unwrap_or_default().into_iter().filter(|p| !p.is_empty()).collect())
    }

    /// The refs of the entities a location declares (of `kind`, lower case, when given), sorted.
    pub async fn entity_refs_at(&self, location_key: &str, kind: Option<&str>) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT entity_ref FROM entities WHERE location_key = $1 AND ($2 = '' OR LOWER(kind) = $2) ORDER BY entity_ref",
        )
        .bind(location_key)
        .bind(kind.unwrap_or_default())
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("entities of a location"))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
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

fn location_row(r: &sqlx::any::AnyRow) -> LocationRow {
    LocationRow {
        location_key: r.get(0),
        source: r.get(1),
        path: r.get(2),
        state: r.get(3),
        errors: r.get::<Option<String>, _>(4).and_then(|e| serde_json::from_str(&e).ok()),
        updated_at: r.get(5),
        held_by: r.get(6),
    }
}
