//! Backstage's catalog permission rules as filters. A portal's permission policy may answer a
//! read with a conditional decision ("only entities the caller owns"); the catalog applies it as
//! a filter in the same query as the caller's own, so lists, facets and totals never count what
//! the caller may not see. The rules and their filters are Backstage's catalog's own
//! (`IS_ENTITY_KIND`, `IS_ENTITY_OWNER`, `HAS_ANNOTATION`, `HAS_LABEL`, `HAS_METADATA`,
//! `HAS_SPEC`), over criteria nested with `allOf`, `anyOf` and `not`.

use serde_json::{Map, Value};

use super::predicate::{and, bounded, negate, Groups};
use super::search::{Condition, Filter};

/// The resource type of catalog entities in permission requests and decisions.
pub const RESOURCE_TYPE: &str = "catalog-entity";

/// The filter a conditional decision's criteria stand for. An unknown rule or a malformed
/// criterion is an error: the caller refuses rather than guess.
pub fn filter(criteria: &Value) -> Result<Filter, String> {
    let groups = groups(criteria)?;
    // No alternatives at all is "false", which a filter without groups would read as "true".
    if groups.is_empty() {
        return Ok(Filter::nothing());
    }
    Ok(Filter::from_groups(groups))
}

fn groups(criteria: &Value) -> Result<Groups, String> {
    let Value::Object(map) = criteria else {
        return Err(format!("permission criteria are objects, found {criteria}"));
    };
    if let Some(items) = map.get("allOf") {
        return list(items, "allOf")?.iter().try_fold(vec![Vec::new()], |all, item| and(&all, &groups(item)?));
    }
    if let Some(items) = map.get("anyOf") {
        let mut out = Vec::new();
        for item in list(items, "anyOf")? {
            out.extend(groups(item)?);
            bounded(out.len())?;
        }
        return Ok(out);
    }
    if let Some(inner) = map.get("not") {
        return negate(&groups(inner)?);
    }
    Ok(vec![vec![rule(map)?]])
}

fn list<'a>(items: &'a Value, name: &str) -> Result<&'a [Value], String> {
    items.as_array().map(Vec::as_slice).ok_or_else(|| format!("{name} takes a list of criteria, found {items}"))
}

/// One rule with its parameters, as Backstage's catalog turns it into a query.
fn rule(condition: &Map<String, Value>) -> Result<Condition, String> {
    let name = condition.get("rule").and_then(Value::as_str).ok_or("a permission condition names a rule")?;
    match condition.get("resourceType") {
        None => {}
        Some(Value::String(resource_type)) if resource_type == RESOURCE_TYPE => {}
        Some(other) => return Err(format!("rule {name} is for {other}, not catalog entities")),
    }
    let empty = Map::new();
    let params = condition.get("params").and_then(Value::as_object).unwrap_or(&empty);
    match name {
        "IS_ENTITY_KIND" => Ok(any_of("kind", &strings(params, "kinds", name)?)),
        "IS_ENTITY_OWNER" => Ok(any_of("relations.ownedby", &strings(params, "claims", name)?)),
        "HAS_ANNOTATION" => property("metadata.annotations", params, "annotation", name),
        "HAS_LABEL" => property("metadata.labels", params, "label", name),
        "HAS_METADATA" => property("metadata", params, "key", name),
        "HAS_SPEC" => property("spec", params, "key", name),
        other => Err(format!("the catalog has no permission rule {other}")),
    }
}

/// `key` equal to any of `values`; an empty list is met by nothing.
fn any_of(key: &str, values: &[String]) -> Condition {
    if values.is_empty() {
        return Condition::Never;
    }
    Condition::AnyOf { key: key.to_owned(), values: values.iter().map(|v| v.to_lowercase()).collect() }
}

/// `{prefix}.{name}` exists, or equals `value` when one is given.
fn property(prefix: &str, params: &Map<String, Value>, name_param: &str, rule: &str) -> Result<Condition, String> {
    let name = params.get(name_param).and_then(Value::as_str).ok_or_else(|| format!("{rule} needs {name_param}"))?;
    let key = format!("{prefix}.{name}").to_lowercase();
    // A value of another type would silently widen the rule to "exists": refused instead.
    Ok(match params.get("value") {
        Some(Value::String(value)) => Condition::AnyOf { key, values: vec![value.to_lowercase()] },
        None => Condition::Exists { key },
        Some(other) => return Err(format!("{rule}: value {other} is not a string")),
    })
}

fn strings(params: &Map<String, Value>, name: &str, rule: &str) -> Result<Vec<String>, String> {
    let values = params.get(name).and_then(Value::as_array).ok_or_else(|| format!("{rule} needs a list {name}"))?;
    values
        .iter()
        .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| format!("{rule}: {name} holds strings")))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::catalog::search::rows;

    fn entity(kind: &str, owner: &str, labels: &Value) -> Value {
        json!({
            "kind": kind,
            "metadata": {"name": "x", "labels": labels, "annotations": {"backstage.io/techdocs-ref": "dir:."}},
            "spec": {"lifecycle": "production"},
            "relations": [{"type": "ownedBy", "targetRef": owner}],
        })
    }

    fn allows(criteria: &Value, entity: &Value) -> bool {
        filter(criteria).unwrap().matches(&rows(entity))
    }

    #[test]
    fn each_rule_filters_as_the_catalog_does() {
        let mine = entity("Component", "group:default/team-a", &json!({"tier": "1"}));
        let theirs = entity("API", "group:default/team-b", &json!({}));
        let owner = json!({"rule": "IS_ENTITY_OWNER", "resourceType": "catalog-entity", "params": {"claims": ["group:default/Team-A"]}});
        assert!(allows(&owner, &mine) && !allows(&owner, &theirs));
        let kind = json!({"rule": "IS_ENTITY_KIND", "params": {"kinds": ["api"]}});
        assert!(!allows(&kind, &mine) && allows(&kind, &theirs));
        let label = json!({"rule": "HAS_LABEL", "params": {"label": "tier"}});
        assert!(allows(&label, &mine) && !allows(&label, &theirs));
        let annotation =
            json!({"rule": "HAS_ANNOTATION", "params": {"annotation": "backstage.io/techdocs-ref", "value": "dir:."}});
        assert!(allows(&annotation, &mine) && allows(&annotation, &theirs));
        let spec = json!({"rule": "HAS_SPEC", "params": {"key": "lifecycle", "value": "experimental"}});
        assert!(!allows(&spec, &mine));
        let metadata = json!({"rule": "HAS_METADATA", "params": {"key": "name"}});
        assert!(allows(&metadata, &mine));
    }

    #[test]
    fn criteria_nest_with_all_any_and_not() {
        let mine = entity("Component", "group:default/team-a", &json!({}));
        let api = entity("API", "group:default/team-b", &json!({}));
        let other = entity("Component", "group:default/team-b", &json!({}));
        // Owned by team-a, or any API: but never an entity with the label secret.
        let criteria = json!({"allOf": [
            {"anyOf": [
                {"rule": "IS_ENTITY_OWNER", "params": {"claims": ["group:default/team-a"]}},
                {"rule": "IS_ENTITY_KIND", "params": {"kinds": ["API"]}},
            ]},
            {"not": {"rule": "HAS_LABEL", "params": {"label": "secret"}}},
        ]});
        assert!(allows(&criteria, &mine) && allows(&criteria, &api) && !allows(&criteria, &other));
        let secret = entity("API", "group:default/team-b", &json!({"secret": "yes"}));
        assert!(!allows(&criteria, &secret));
        // Not of an OR: every alternative negated.
        let neither = json!({"not": {"anyOf": [
            {"rule": "IS_ENTITY_KIND", "params": {"kinds": ["API"]}},
            {"rule": "IS_ENTITY_OWNER", "params": {"claims": ["group:default/team-a"]}},
        ]}});
        assert!(allows(&neither, &other) && !allows(&neither, &mine) && !allows(&neither, &api));
    }

    #[test]
    fn empty_alternatives_allow_nothing_and_unknown_rules_are_errors() {
        let mine = entity("Component", "group:default/team-a", &json!({}));
        assert!(!allows(&json!({"anyOf": []}), &mine));
        assert!(!allows(&json!({"rule": "IS_ENTITY_OWNER", "params": {"claims": []}}), &mine));
        assert!(allows(&json!({"not": {"rule": "IS_ENTITY_OWNER", "params": {"claims": []}}}), &mine));
        assert!(allows(&json!({"allOf": []}), &mine));
        assert!(filter(&json!({"rule": "IS_ENTITY_FRIEND", "params": {}})).is_err());
        assert!(filter(&json!({"rule": "HAS_LABEL", "params": {}})).is_err());
        assert!(
            filter(&json!({"rule": "HAS_LABEL", "params": {"label": "tier", "value": 1}})).is_err(),
            "never widened"
        );
        assert!(filter(
            &json!({"rule": "IS_ENTITY_KIND", "resourceType": "scaffolder-template", "params": {"kinds": []}})
        )
        .is_err());
    }
}
