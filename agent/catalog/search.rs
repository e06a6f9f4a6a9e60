//! Backstage's filter semantics over an entity: the entity is flattened to lower-cased
//! `dotted.key = value` rows (arrays contribute every element, and `key.<element> = true` for
//! string elements), and a filter matches rows. Pure, so the store can later index the same rows.

use std::collections::BTreeMap;

use serde_json::Value;

/// Flattened search rows of an entity: lower-cased key → values as written (facets show them
/// as written; matching lower-cases them, as Backstage's `value` column does).
pub type Rows = BTreeMap<String, Vec<String>>;

/// Backstage's `buildEntitySearch` caps, in UTF-16 code units as JavaScript counts: longer keys
/// are dropped, longer values are kept only for "exists" (`value` and `original_value` NULL), so
/// no value is ever too long for an index.
pub const MAX_KEY_LENGTH: usize = 200;
pub const MAX_VALUE_LENGTH: usize = 200;

/// One index row: key, value lower-cased and value as written (both None when too long to index).
pub type IndexRow = (String, Option<String>, Option<String>);

/// Index rows for an entity body: `(key, value lower-cased or None when too long, value as
/// written)`, deduplicated, without relations (those live in their own table).
pub fn index_rows(body: &Value) -> Vec<IndexRow> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut rows = Rows::new();
    flatten("", body, &mut rows);
    for (key, values) in rows {
        if utf16_len(&key) > MAX_KEY_LENGTH {
            continue;
        }
        for value in values {
            let lower = value.to_lowercase();
            let short = utf16_len(&lower) <= MAX_VALUE_LENGTH;
            let (indexed, original) = if short { (Some(lower), Some(value)) } else { (None, None) };
            if seen.insert((key.clone(), indexed.clone())) {
                out.push((key.clone(), indexed, original));
            }
        }
    }
    out
}

fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// Flattens an entity the way Backstage's `buildEntitySearch` does (without its length caps).
pub fn rows(entity: &Value) -> Rows {
    let mut out = Rows::new();
    flatten("", entity, &mut out);
    if let Some(relations) = entity.get("relations").and_then(Value::as_array) {
        for relation in relations {
            if let (Some(kind), Some(target)) = (relation["type"].as_str(), relation["targetRef"].as_str()) {
                push(&mut out, &format!("relations.{kind}"), target);
            }
        }
    }
    out
}

fn flatten(prefix: &str, value: &Value, out: &mut Rows) {
    // No key below a prefix this long is kept (Backstage drops longer keys), so building their
    // paths would only cost memory: a long key over many leaves is quadratic.
    if utf16_len(prefix) > MAX_KEY_LENGTH {
        return;
    }
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                if matches!(path.as_str(), "relations" | "status" | "attachments") {
                    continue;
                }
                flatten(&path, child, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                if let Value::String(text) = item {
                    push(out, &format!("{prefix}.{text}"), "true");
                }
                flatten(prefix, item, out);
            }
        }
        Value::Null => {
            out.entry(prefix.to_lowercase()).or_default();
        }
        Value::String(text) => push(out, prefix, text),
        other => push(out, prefix, &other.to_string()),
    }
}

fn push(out: &mut Rows, key: &str, value: &str) {
    out.entry(key.to_lowercase()).or_default().push(value.to_owned());
}

/// One condition of a filter: `key=value` (any of several values) or bare `key` (exists); the
/// negation of either, and the condition nothing meets, come from permission decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    AnyOf { key: String, values: Vec<String> },
    Exists { key: String },
    Not(Box<Condition>),
    Never,
}

/// `filter` query parameters: each parameter is an AND of conditions; parameters are ORed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    groups: Vec<Vec<Condition>>,
}

impl Filter {
    /// Parses repeated `filter` parameters such as `kind=component,spec.type=service`.
    pub fn parse<S: AsRef<str>>(params: &[S]) -> Result<Self, String> {
        let mut groups = Vec::new();
        for param in params {
            let mut group: Vec<Condition> = Vec::new();
            for part in param.as_ref().split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let condition = match part.split_once('=') {
                    Some((key, value)) => {
                        let key = key.trim().to_lowercase();
                        if key.is_empty() {
                            return Err(format!("Invalid filter {part:?}: missing key"));
                        }
                        Condition::AnyOf { key, values: vec![value.trim().to_lowercase()] }
                    }
                    None => Condition::Exists { key: part.to_lowercase() },
                };
                merge(&mut group, condition);
            }
            if !group.is_empty() {
                groups.push(group);
            }
        }
        Ok(Self { groups })
    }

    /// A filter from its groups (any may match) of conditions (all must hold). Unlike
    /// [`Filter::parse`], the same key twice in a group means both must hold.
    pub fn from_groups(groups: Vec<Vec<Condition>>) -> Self {
        // A group with no conditions holds for everything, and so does any OR that has one.
        if groups.iter().any(Vec::is_empty) {
            return Self::default();
        }
        Self { groups }
    }

    /// Both filters: every group of one with every group of the other.
    #[must_use]
    pub fn and(&self, other: &Self) -> Self {
        match (self.groups.is_empty(), other.groups.is_empty()) {
            (true, _) => other.clone(),
            (_, true) => self.clone(),
            _ => Self::from_groups(
                self.groups
                    .iter()
                    .flat_map(|l| other.groups.iter().map(move |r| l.iter().chain(r).cloned().collect()))
                    .collect(),
            ),
        }
    }

    /// The groups (any of which may match) of conditions (all of which must hold), for callers
    /// that evaluate filters elsewhere.
    pub fn groups(&self) -> &[Vec<Condition>] {
        &self.groups
    }

    /// The filter that matches nothing.
    pub fn nothing() -> Self {
        Self { groups: vec![vec![Condition::Never]] }
    }

    /// The filter that matches everything.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    pub fn matches(&self, rows: &Rows) -> bool {
        self.groups.is_empty() || self.groups.iter().any(|group| group.iter().all(|c| holds(c, rows)))
    }
}

/// The same key twice in one filter means either value (Backstage's `$in`).
fn merge(group: &mut Vec<Condition>, condition: Condition) {
    if let Condition::AnyOf { key, values } = &condition {
        for existing in group.iter_mut() {
            if let Condition::AnyOf { key: k, values: v } = existing {
                if k == key {
                    v.extend(values.iter().cloned());
                    return;
                }
            }
        }
    }
    group.push(condition);
}

fn holds(condition: &Condition, rows: &Rows) -> bool {
    match condition {
        Condition::Exists { key } => rows.contains_key(key),
        Condition::AnyOf { key, values } => {
            rows.get(key).is_some_and(|found| found.iter().any(|v| values.contains(&v.to_lowercase())))
        }
        Condition::Not(inner) => !holds(inner, rows),
        Condition::Never => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entity() -> Value {
        json!({
            "kind": "Component",
            "metadata": {"name": "Svc", "tags": ["Java", "web"]},
            "spec": {"type": "service", "owner": "team-a"},
            "relations": [{"type": "ownedBy", "targetRef": "group:default/team-a"}]
        })
    }

    fn matches(filters: &[&str]) -> bool {
        Filter::parse(filters).unwrap().matches(&rows(&entity()))
    }

    #[test]
    fn keys_past_the_length_cap_are_not_built() {
        let long = "k".repeat(300);
        let body = serde_json::json!({"spec": {long.clone(): {"a": 1, "b": [1, 2]}}, "kind": "X"});
        let found = rows(&body);
        assert!(found.keys().all(|k| k.len() <= MAX_KEY_LENGTH + 2), "{found:?}");
        assert!(found.contains_key("kind"));
    }

    #[test]
    fn equality_is_case_insensitive() {
        assert!(matches(&["kind=COMPONENT"]));
        assert!(matches(&["metadata.name=svc"]));
        assert!(!matches(&["kind=api"]));
    }

    #[test]
    fn conditions_in_one_filter_are_anded_and_filters_are_ored() {
        assert!(!matches(&["kind=component,spec.type=website"]));
        assert!(matches(&["kind=component,spec.type=service"]));
        assert!(matches(&["kind=api", "spec.type=service"]));
    }

    #[test]
    fn repeated_key_in_one_filter_means_any_of() {
        assert!(matches(&["kind=api,kind=component"]));
    }

    #[test]
    fn arrays_match_any_element_and_tag_keys() {
        assert!(matches(&["metadata.tags=java"]));
        assert!(matches(&["metadata.tags.web=true"]));
        assert!(matches(&["relations.ownedby=group:default/team-a"]));
    }

    #[test]
    fn bare_key_means_exists() {
        assert!(matches(&["spec.owner"]));
        assert!(!matches(&["spec.system"]));
    }
}
