//! The pure parts of Backstage's list queries: ordering, full-text filtering, cursors and facets
//! over API-shaped entities. Handlers in `catalog_api` feed them the store's entities.

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::search::{self, Filter};

/// One order: a dotted field and a direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub field: String,
    pub descending: bool,
}

impl Order {
    /// `asc:metadata.name` (`GET /entities`) or `metadata.name,desc` (`by-query`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (field, descending) = match (text.split_once(':'), text.split_once(',')) {
            (Some(("asc", f)), _) | (_, Some((f, "asc"))) => (f, false),
            (Some(("desc", f)), _) | (_, Some((f, "desc"))) => (f, true),
            (None, None) => (text, false),
            _ => return Err(format!("Invalid order field {text:?}")),
        };
        Ok(Self { field: field.trim().to_lowercase(), descending })
    }
}

/// What a `by-query` cursor carries: the whole query, so a page can be resumed from it alone.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct QueryState {
    pub filters: Vec<String>,
    pub order: Option<Order>,
    pub full_text_term: Option<String>,
    pub full_text_fields: Vec<String>,
    pub offset: usize,
}

impl QueryState {
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn decode(cursor: &str) -> Result<Self, String> {
        let bytes =
            base64::engine::general_purpose::STANDARD.decode(cursor).map_err(|_| "Malformed cursor".to_owned())?;
        serde_json::from_slice(&bytes).map_err(|_| "Malformed cursor".to_owned())
    }

    /// The entities this query selects, in order (before paging).
    pub fn select(&self, entities: Vec<Value>) -> Result<Vec<Value>, String> {
        let filter = Filter::parse(&self.filters)?;
        let mut selected: Vec<(Option<String>, String, Value)> = entities
            .into_iter()
            .filter_map(|entity| {
                let rows = search::rows(&entity);
                if !filter.matches(&rows) || !self.full_text_matches(&rows) {
                    return None;
                }
                let key = self.order.as_ref().map(|o| first_value(&rows, &o.field));
                // Backstage leaves out entities that lack the order field.
                if matches!(key, Some(None)) {
                    return None;
                }
                let uid = entity["metadata"]["uid"].as_str().unwrap_or_default().to_owned();
                Some((key.flatten(), uid, entity))
            })
            .collect();
        let descending = self.order.as_ref().is_some_and(|o| o.descending);
        selected.sort_by(|a, b| {
            let by_key = a.0.cmp(&b.0);
            let by_key = if descending { by_key.reverse() } else { by_key };
            by_key.then_with(|| a.1.cmp(&b.1))
        });
        Ok(selected.into_iter().map(|(_, _, entity)| entity).collect())
    }

    /// `fullTextFilterTerm`: a case-insensitive substring of any of the fields (default: the
    /// order field, else `metadata.uid`).
    fn full_text_matches(&self, rows: &search::Rows) -> bool {
        let Some(term) = self.full_text_term.as_deref().map(str::to_lowercase).filter(|t| !t.is_empty()) else {
            return true;
        };
        let default = self.order.as_ref().map_or_else(|| "metadata.uid".to_owned(), |o| o.field.clone());
        let fields = if self.full_text_fields.is_empty() { vec![default] } else { self.full_text_fields.clone() };
        fields.iter().any(|field| {
            rows.get(&field.to_lowercase())
                .is_some_and(|values| values.iter().any(|v| v.to_lowercase().contains(&term)))
        })
    }
}

fn first_value(rows: &search::Rows, field: &str) -> Option<String> {
    rows.get(field).and_then(|values| values.first()).map(|v| v.to_lowercase())
}

/// `entity-facets`: for each facet, every value with the number of entities that have it,
/// as written, in value order.
pub fn facets(entities: &[Value], facets: &[String]) -> BTreeMap<String, Vec<Value>> {
    let rows: Vec<search::Rows> = entities.iter().map(search::rows).collect();
    facets
        .iter()
        .map(|facet| {
            let mut counts: BTreeMap<String, u64> = BTreeMap::new();
            for entity_rows in &rows {
                let mut values: Vec<&String> =
                    entity_rows.get(&facet.to_lowercase()).map(|v| v.iter().collect()).unwrap_or_default();
                values.sort();
                values.dedup();
                for value in values {
                    *counts.entry(value.clone()).or_default() += 1;
                }
            }
            let items =
                counts.into_iter().map(|(value, count)| serde_json::json!({"value": value, "count": count})).collect();
            (facet.clone(), items)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entities() -> Vec<Value> {
        vec![
            json!({"kind": "Component", "metadata": {"name": "b", "uid": "2", "tags": ["Java"]}, "spec": {"type": "service"}}),
            json!({"kind": "Component", "metadata": {"name": "a", "uid": "1", "tags": ["java", "web"]}, "spec": {"type": "website"}}),
            json!({"kind": "API", "metadata": {"name": "c", "uid": "3"}}),
        ]
    }

    fn names(values: &[Value]) -> Vec<&str> {
        values.iter().map(|e| e["metadata"]["name"].as_str().unwrap()).collect()
    }

    #[test]
    fn orders_by_field_and_drops_entities_without_it() {
        let query = QueryState { order: Some(Order::parse("spec.type,desc").unwrap()), ..QueryState::default() };
        assert_eq!(names(&query.select(entities()).unwrap()), ["a", "b"]);
        let query = QueryState { order: Some(Order::parse("asc:metadata.name").unwrap()), ..QueryState::default() };
        assert_eq!(names(&query.select(entities()).unwrap()), ["a", "b", "c"]);
    }

    #[test]
    fn full_text_searches_the_named_fields() {
        let query = QueryState {
            full_text_term: Some("WEB".into()),
            full_text_fields: vec!["spec.type".into()],
            ..QueryState::default()
        };
        assert_eq!(names(&query.select(entities()).unwrap()), ["a"]);
    }

    #[test]
    fn cursors_round_trip() {
        let state = QueryState { filters: vec!["kind=component".into()], offset: 20, ..QueryState::default() };
        let back = QueryState::decode(&state.encode()).unwrap();
        assert_eq!((back.filters, back.offset), (vec!["kind=component".to_owned()], 20));
        assert!(QueryState::decode("not base64!").is_err());
    }

    #[test]
    fn facets_count_entities_per_value_as_written() {
        let found = facets(&entities(), &["kind".into(), "metadata.tags".into()]);
        assert_eq!(found["kind"], vec![json!({"value": "API", "count": 1}), json!({"value": "Component", "count": 2})]);
        assert_eq!(found["metadata.tags"].len(), 3, "{:?}", found["metadata.tags"]);
    }
}
