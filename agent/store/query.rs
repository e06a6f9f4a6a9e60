//! Backstage's entity queries in SQL over the `search` and `relations` tables: filters (any of
//! several groups of conditions that must all hold), ordering (entities without the order field left out), full-text substring
//! search, paging and facets. The same SQL runs on SQLite and PostgreSQL.

use std::collections::HashMap;

use sqlx::Row;

use super::read::{entity_columns, entity_from_row};
use super::{query_err, Backend, Store, StoreError, StoredEntity};
use crate::catalog::search::{Condition, Filter};

/// A list query, already parsed.
#[derive(Debug, Clone, Default)]
pub struct EntityQuery {
    pub filter: Filter,
    /// Lower-cased dotted field, and whether descending.
    pub order: Option<(String, bool)>,
    /// Lower-cased term and lower-cased fields.
    pub full_text: Option<(String, Vec<String>)>,
    pub offset: usize,
    pub limit: Option<usize>,
}

/// The fields whose search rows carry a full-text index: PostgreSQL's partial `pg_trgm` index
/// and SQLite's FTS5 `search_text` table (migrations 6 and 8) cover exactly these keys.
const TEXT_INDEXED_KEYS: [&str; 3] = ["metadata.name", "metadata.title", "metadata.description"];

/// Trigram indexes cannot look up terms shorter than a trigram.
const MIN_INDEXED_TERM: usize = 3;

/// SQL text with numbered placeholders (`$1`…), which both backends accept through `Any`.
struct Sql {
    backend: Backend,
    binds: Vec<String>,
}

impl Sql {
    fn new(backend: Backend) -> Self {
        Self { backend, binds: Vec::new() }
    }

    fn bind(&mut self, value: &str) -> String {
        self.binds.push(value.to_owned());
        format!("${}", self.binds.len())
    }

    fn list(&mut self, values: &[String]) -> String {
        values.iter().map(|v| self.bind(v)).collect::<Vec<_>>().join(", ")
    }

    fn condition(&mut self, condition: &Condition) -> String {
        match condition {
            Condition::Exists { key } => self.matching(key, None),
            Condition::AnyOf { key, values } => self.matching(key, Some(values)),
            Condition::Not(inner) => format!("NOT ({})", self.condition(inner)),
            Condition::Never => "1=0".to_owned(),
        }
    }

    /// `e.entity_ref IN (…)` for one key, optionally restricted to values.
    fn matching(&mut self, key: &str, values: Option<&Vec<String>>) -> String {
        if key == "metadata.uid" {
            return values.map_or_else(|| "1=1".to_owned(), |v| format!("LOWER(e.uid) IN ({})", self.list(v)));
        }
        if let Some(kind) = key.strip_prefix("relations.") {
            let kind = self.bind(kind);
            let targets = values.map(|v| format!(" AND r.target_ref IN ({})", self.list(v))).unwrap_or_default();
            return format!(
                "e.entity_ref IN (SELECT r.source_ref FROM relations r WHERE LOWER(r.type) = {kind}{targets})"
            );
        }
        let key = self.bind(key);
        let wanted = values.map(|v| format!(" AND s.value IN ({})", self.list(v))).unwrap_or_default();
        format!("e.entity_ref IN (SELECT s.entity_ref FROM search s WHERE s.key = {key}{wanted})")
    }

    fn filter(&mut self, filter: &Filter) -> String {
        if filter.is_empty() {
            return "1=1".to_owned();
        }
        let groups: Vec<String> = filter
            .groups()
            .iter()
            .map(|group| {
                let conditions: Vec<String> = group.iter().map(|c| self.condition(c)).collect();
                format!("({})", conditions.join(" AND "))
            })
            .collect();
        format!("({})", groups.join(" OR "))
    }

    fn full_text(&mut self, term: &str, fields: &[String]) -> String {
        let escaped = term.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        let pattern = self.bind(&format!("%{escaped}%"));
        let mut alternatives = Vec::new();
        let search_fields: Vec<String> = fields.iter().filter(|f| *f != "metadata.uid").cloned().collect();
        if fields.iter().any(|f| f == "metadata.uid") {
            alternatives.push(format!("LOWER(e.uid) LIKE {pattern} ESCAPE '\\'"));
        }
        if self.backend == Backend::Sqlite
            && term.chars().count() >= MIN_INDEXED_TERM
            && search_fields.iter().all(|f| TEXT_INDEXED_KEYS.contains(&f.as_str()))
        {
            // A quoted FTS5 phrase of trigrams is a substring match; quotes inside are doubled.
            let phrase = self.bind(&format!("\"{}\"", term.replace('"', "\"\"")));
            let keys = self.list(&search_fields);
            alternatives.push(format!(
                "e.entity_ref IN (SELECT entity_ref FROM search_text WHERE search_text MATCH {phrase} AND key IN ({keys}))"
            ));
        } else if !search_fields.is_empty() {
            let keys = self.list(&search_fields);
            alternatives.push(format!(
                "e.entity_ref IN (SELECT s.entity_ref FROM search s WHERE s.key IN ({keys}) AND s.value LIKE {pattern} ESCAPE '\\')"
            ));
        }
        if alternatives.is_empty() {
            "1=0".to_owned()
        } else {
            format!("({})", alternatives.join(" OR "))
        }
    }

    /// The selected entities with their order value, as a subquery `t(entity_ref, uid, order_value)`.
    fn selection(&mut self, query: &EntityQuery) -> String {
        let mut conditions = vec![self.filter(&query.filter)];
        if let Some((term, fields)) = &query.full_text {
            conditions.push(self.full_text(term, fields));
        }
        let order_value = match &query.order {
            None => "e.uid".to_owned(),
            Some((field, _)) if field == "metadata.uid" => "LOWER(e.uid)".to_owned(),
            Some((field, _)) => {
                let key = self.bind(field);
                format!("(SELECT MIN(o.value) FROM search o WHERE o.entity_ref = e.entity_ref AND o.key = {key})")
            }
        };
        format!(
            "(SELECT e.entity_ref, e.uid, {order_value} AS order_value FROM entities e WHERE {}) t WHERE t.order_value IS NOT NULL",
            conditions.join(" AND ")
        )
    }

    fn run<'q>(&'q self, sql: &'q str) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        self.binds.iter().fold(sqlx::query(sql), |q, b| q.bind(b.as_str()))
    }
}

/// No limit, in a form both SQLite and PostgreSQL accept.
const NO_LIMIT: i64 = i64::MAX;

impl Store {
    /// The catalog's change counter (see [`Store::bump_generation`]).
    pub async fn generation(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT generation FROM catalog_generation WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(query_err("read generation"))?;
        Ok(row.get(0))
    }

    /// Marks the catalog as changed; called once per pass that wrote entities (never by a no-op
    /// pass, which writes nothing).
    pub async fn bump_generation(&self) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query("UPDATE catalog_generation SET generation = generation + 1 WHERE id = 1")
            .execute(&self.pool)
            .await
            .map_err(query_err("bump generation"))?;
        Ok(())
    }

    /// Refreshes the planner's statistics after a large write, so the first queries after a big
    /// ingest do not run on plans made for an empty catalog.
    pub async fn analyze(&self) -> Result<(), StoreError> {
        // On PostgreSQL, VACUUM also sets the visibility map: without it facet counts fall back
        // from index-only scans to heap fetches (measured: 70 ms → 350 ms p99 at 100k entities).
        let statement = match self.backend {
            Backend::Postgres => "VACUUM (ANALYZE) entities, search, relations",
            Backend::Sqlite => "ANALYZE",
        };
        sqlx::query(statement).execute(&self.pool).await.map_err(query_err("analyze"))?;
        Ok(())
    }

    /// The refs of one page of matching entities, in order, and how many match in all.
    pub async fn query_refs(&self, query: &EntityQuery) -> Result<(Vec<String>, usize), StoreError> {
        let refs = self.page_refs(query).await?;
        let mut sql = Sql::new(self.backend);
        let count = format!("SELECT COUNT(*) FROM {}", sql.selection(query));
        let total: i64 = sql.run(&count).fetch_one(&self.pool).await.map_err(query_err("count entities"))?.get(0);
        Ok((refs, usize::try_from(total).unwrap_or_default()))
    }

    /// The database's plan for one page of `query`, one line per plan node: what operators (and
    /// the tests) read to see which index a query uses.
    pub async fn explain(&self, query: &EntityQuery) -> Result<String, StoreError> {
        let mut sql = Sql::new(self.backend);
        let page = format!("SELECT t.entity_ref FROM {}", sql.selection(query));
        let explain = match self.backend {
            Backend::Sqlite => format!("EXPLAIN QUERY PLAN {page}"),
            Backend::Postgres => format!("EXPLAIN {page}"),
        };
        let rows = sql.run(&explain).fetch_all(&self.pool).await.map_err(query_err("explain"))?;
        // SQLite answers (id, parent, notused, detail); PostgreSQL one text column.
        let column = if self.backend == Backend::Sqlite { 3 } else { 0 };
        Ok(rows.iter().map(|r| r.get::<String, _>(column)).collect::<Vec<_>>().join("\n"))
    }

    /// The refs of one page of matching entities, in order, without counting the rest.
    pub async fn page_refs(&self, query: &EntityQuery) -> Result<Vec<String>, StoreError> {
        let mut sql = Sql::new(self.backend);
        let selection = sql.selection(query);
        let direction = if query.order.as_ref().is_some_and(|(_, desc)| *desc) { "DESC" } else { "ASC" };
        let limit = query.limit.map_or(NO_LIMIT, |l| i64::try_from(l).unwrap_or(NO_LIMIT));
        let page = format!(
            "SELECT t.entity_ref FROM {selection} ORDER BY t.order_value {direction}, t.uid LIMIT {limit} OFFSET {}",
            query.offset
        );
        let rows = sql.run(&page).fetch_all(&self.pool).await.map_err(query_err("query entities"))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Entities by canonical ref, in the order asked, with their relations; missing refs skipped.
    pub async fn entities_by_refs(&self, refs: &[String]) -> Result<Vec<StoredEntity>, StoreError> {
        let mut found: HashMap<String, StoredEntity> = HashMap::new();
        for chunk in refs.chunks(500) {
            let mut sql = Sql::new(self.backend);
            let list = sql.list(chunk);
            let text = format!("SELECT {} FROM entities WHERE entity_ref IN ({list})", entity_columns());
            for row in sql.run(&text).fetch_all(&self.pool).await.map_err(query_err("entities by ref"))? {
                let entity = entity_from_row(&row)?;
                found.insert(entity.entity_ref.clone(), entity);
            }
            let relations = format!(
                "SELECT DISTINCT source_ref, type, target_ref FROM relations WHERE source_ref IN ({list}) ORDER BY source_ref, type, target_ref"
            );
            for row in sql.run(&relations).fetch_all(&self.pool).await.map_err(query_err("relations by ref"))? {
                let source: String = row.get(0);
                if let Some(entity) = found.get_mut(&source) {
                    entity.relations.push((row.get(1), row.get(2)));
                }
            }
        }
        Ok(refs.iter().filter_map(|r| found.remove(r)).collect())
    }

    /// One entity by uid.
    pub async fn entity_by_uid(&self, uid: &str) -> Result<Option<StoredEntity>, StoreError> {
        let row = sqlx::query("SELECT entity_ref FROM entities WHERE uid = $1")
            .bind(uid)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("entity by uid"))?;
        let Some(row) = row else { return Ok(None) };
        Ok(self.entities_by_refs(&[row.get(0)]).await?.pop())
    }

    /// Values of one facet among the entities `filter` selects, as written, with entity counts.
    pub async fn facet(&self, filter: &Filter, facet: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let mut sql = Sql::new(self.backend);
        let facet = facet.to_lowercase();
        // Without a filter every entity counts: no need to join back to them.
        let selected = if filter.is_empty() { None } else { Some(sql.filter(filter)) };
        let within = |column: &str| {
            selected
                .as_ref()
                .map(|s| format!(" AND {column} IN (SELECT e.entity_ref FROM entities e WHERE {s})"))
                .unwrap_or_default()
        };
        let text = if let Some(kind) = facet.strip_prefix("relations.") {
            let kind = sql.bind(kind);
            format!(
                "SELECT r.target_ref, COUNT(DISTINCT r.source_ref) FROM relations r WHERE LOWER(r.type) = {kind}{} \
                 GROUP BY r.target_ref ORDER BY r.target_ref",
                within("r.source_ref")
            )
        } else {
            let key = sql.bind(&facet);
            format!(
                // Search rows are distinct per entity, key and value, so COUNT(*) counts entities.
                // Values too long to index have no original value, as in Backstage.
                "SELECT s.original_value, COUNT(*) FROM search s \
                 WHERE s.key = {key} AND s.original_value IS NOT NULL{} \
                 GROUP BY s.original_value ORDER BY s.original_value",
                within("s.entity_ref")
            )
        };
        let rows = sql.run(&text).fetch_all(&self.pool).await.map_err(query_err("facets"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}
