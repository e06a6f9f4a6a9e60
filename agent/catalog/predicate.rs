//! Backstage's filter predicates (`@backstage/filter-predicates`, sent by the catalog client's
//! `query`) as a [`Filter`]: `$all`, `$any` and `$not` of field matches (a value, `$in`,
//! `$exists`, `$contains` of values) become an OR of ANDs of (possibly negated) conditions. What
//! the search index cannot answer (`$hasPrefix`, `$contains` of objects) is refused by name
//! rather than answered wrongly.

use serde_json::{Map, Value};

use super::search::{Condition, Filter};

/// Groups a predicate may expand to: `$all` of `$any`s multiplies them out.
const MAX_GROUPS: usize = 256;

/// Values all groups together may hold once expanded: each becomes a bound parameter, and
/// databases take a few tens of thousands per statement.
const MAX_VALUES: usize = 4_096;

pub(crate) type Groups = Vec<Vec<Condition>>;

/// The filter a predicate stands for.
pub fn filter(predicate: &Value) -> Result<Filter, String> {
    let groups = groups(predicate)?;
    let values: usize = groups.iter().flatten().map(values_of).sum();
    if values > MAX_VALUES {
        return Err(format!("the predicate expands to more than {MAX_VALUES} values; simplify it"));
    }
    // No alternatives at all (`$not: {}`) is "false", which a filter without groups would read
    // as "true".
    if groups.is_empty() {
        return Ok(Filter::nothing());
    }
    Ok(Filter::from_groups(groups))
}

/// The bound parameters a condition takes.
fn values_of(condition: &Condition) -> usize {
    match condition {
        Condition::AnyOf { values, .. } => values.len(),
        Condition::Not(inner) => values_of(inner),
        Condition::Exists { .. } | Condition::Never => 1,
    }
}

fn groups(predicate: &Value) -> Result<Groups, String> {
    let Value::Object(map) = predicate else {
        return Err(format!("a filter predicate is an object, found {predicate}"));
    };
    let mut all: Groups = vec![Vec::new()];
    for (key, value) in map {
        let part = match key.as_str() {
            "$all" => every(items(key, value)?)?,
            "$any" => any(items(key, value)?)?,
            "$not" => negate(&groups(value)?)?,
            _ => vec![vec![matcher(key, value)?]],
        };
        all = and(&all, &part)?;
    }
    Ok(all)
}

/// A non-empty list: an empty `$any` would match nothing, which Rigger's filters cannot say.
fn items<'a>(key: &str, value: &'a Value) -> Result<&'a [Value], String> {
    match value.as_array() {
        Some(items) if !items.is_empty() => Ok(items),
        _ => Err(format!("{key} takes a non-empty list of predicates")),
    }
}

fn every(predicates: &[Value]) -> Result<Groups, String> {
    predicates.iter().try_fold(vec![Vec::new()], |all, predicate| and(&all, &groups(predicate)?))
}

fn any(predicates: &[Value]) -> Result<Groups, String> {
    let mut out = Vec::new();
    for predicate in predicates {
        out.extend(groups(predicate)?);
        bounded(out.len())?;
    }
    Ok(out)
}

/// `(a ∨ b) ∧ (c ∨ d)` → `ac ∨ ad ∨ bc ∨ bd`.
pub(crate) fn and(left: &Groups, right: &Groups) -> Result<Groups, String> {
    bounded(left.len().saturating_mul(right.len()))?;
    Ok(left.iter().flat_map(|l| right.iter().map(move |r| l.iter().chain(r).cloned().collect())).collect())
}

/// The negation of an OR of ANDs, as an OR of ANDs (De Morgan): an AND, over the groups, of
/// the OR of each group's negated conditions. No groups (false) becomes one empty group (true).
pub(crate) fn negate(groups: &Groups) -> Result<Groups, String> {
    groups.iter().try_fold(vec![Vec::new()], |all, group| {
        let alternatives: Groups = group.iter().map(negated).collect();
        and(&all, &alternatives)
    })
}

/// One condition's negation, as the conditions that must all hold instead.
fn negated(condition: &Condition) -> Vec<Condition> {
    match condition {
        Condition::Not(inner) => vec![(**inner).clone()],
        Condition::Never => Vec::new(),
        other => vec![Condition::Not(Box::new(other.clone()))],
    }
}

pub(crate) fn bounded(groups: usize) -> Result<(), String> {
    if groups > MAX_GROUPS {
        return Err(format!("the predicate expands to more than {MAX_GROUPS} alternatives; simplify it"));
    }
    Ok(())
}

/// One field's match: a value, `{$in: [...]}` or `{$exists: true}`.
fn matcher(key: &str, value: &Value) -> Result<Condition, String> {
    let key = key.to_lowercase();
    match value {
        Value::Object(operator) => operator_matcher(key, operator),
        primitive => Ok(Condition::AnyOf { key, values: vec![text(primitive)?] }),
    }
}

fn operator_matcher(key: String, operator: &Map<String, Value>) -> Result<Condition, String> {
    let (name, operand) = match operator.iter().next() {
        Some(only) if operator.len() == 1 => only,
        _ => return Err(format!("{key}: a value matcher has exactly one operator")),
    };
    match (name.as_str(), operand) {
        ("$exists", Value::Bool(true)) => Ok(Condition::Exists { key }),
        ("$exists", Value::Bool(false)) => Ok(Condition::Not(Box::new(Condition::Exists { key }))),
        ("$in", Value::Array(values)) if values.is_empty() => Err(format!("{key}: $in takes a non-empty list")),
        ("$in", Value::Array(values)) => {
            Ok(Condition::AnyOf { key, values: values.iter().map(text).collect::<Result<_, _>>()? })
        }
        // An array's elements are search rows of the array's own key, as one value each.
        ("$contains", Value::Object(inner)) => match inner.get("$any").and_then(Value::as_array) {
            Some(values) if inner.len() == 1 && !values.is_empty() => {
                Ok(Condition::AnyOf { key, values: values.iter().map(text).collect::<Result<_, _>>()? })
            }
            _ => Err(unsupported("$contains with anything but a value or $any of values")),
        },
        ("$contains", primitive) => Ok(Condition::AnyOf { key, values: vec![text(primitive)?] }),
        ("$hasPrefix", _) => Err(unsupported(name)),
        _ => Err(format!("{key}: {name} with {operand} is not a filter predicate")),
    }
}

/// A primitive as the search index holds values: lower-cased text.
fn text(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.to_lowercase()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("{other} is not a string, number or boolean")),
    }
}

fn unsupported(operator: &str) -> String {
    format!("{operator} is not supported by Rigger's catalog; use $all, $any, $not, $in, $exists and $contains")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn groups_of(predicate: &Value) -> Vec<Vec<Condition>> {
        filter(predicate).unwrap().groups().to_vec()
    }

    fn any_of(key: &str, values: &[&str]) -> Condition {
        Condition::AnyOf { key: key.into(), values: values.iter().map(|v| (*v).to_owned()).collect() }
    }

    #[test]
    fn all_and_any_become_an_or_of_ands() {
        let predicate = json!({"kind": "Component", "$any": [{"spec.type": "service"}, {"spec.type": {"$in": ["Website", "library"]}}]});
        assert_eq!(
            groups_of(&predicate),
            [
                vec![any_of("spec.type", &["service"]), any_of("kind", &["component"])],
                vec![any_of("spec.type", &["website", "library"]), any_of("kind", &["component"])],
            ]
        );
        let exists = json!({"$all": [{"metadata.annotations.x": {"$exists": true}}, {"kind": "api"}]});
        assert_eq!(
            groups_of(&exists),
            [vec![Condition::Exists { key: "metadata.annotations.x".into() }, any_of("kind", &["api"])]]
        );
    }

    #[test]
    fn not_absence_and_containment_are_conditions_too() {
        let not = |c: Condition| Condition::Not(Box::new(c));
        assert_eq!(
            groups_of(&json!({"$not": {"kind": "api", "spec.type": "grpc"}})),
            [vec![not(any_of("kind", &["api"]))], vec![not(any_of("spec.type", &["grpc"]))]],
            "not (a and b) = not a or not b"
        );
        assert_eq!(
            groups_of(&json!({"kind": {"$exists": false}})),
            [vec![not(Condition::Exists { key: "kind".into() })]]
        );
        assert_eq!(
            groups_of(&json!({"metadata.tags": {"$contains": "Java"}})),
            [vec![any_of("metadata.tags", &["java"])]]
        );
        assert_eq!(
            groups_of(&json!({"metadata.tags": {"$contains": {"$any": ["java", "go"]}}})),
            [vec![any_of("metadata.tags", &["java", "go"])]]
        );
    }

    #[test]
    fn what_the_index_cannot_answer_is_refused_by_name() {
        for (predicate, operator) in [
            (json!({"relations": {"$contains": {"type": "ownedBy"}}}), "$contains"),
            (json!({"metadata.name": {"$hasPrefix": "a"}}), "$hasPrefix"),
        ] {
            let error = filter(&predicate).unwrap_err();
            assert!(error.starts_with(operator), "{error}");
        }
        let wide: Vec<Value> = (0..20).map(|i| json!({"kind": format!("k{i}")})).collect();
        let blowup = json!({"$all": [{"$any": wide.clone()}, {"$any": wide}]});
        assert!(filter(&blowup).unwrap_err().contains("more than 256"));
        let many: Vec<String> = (0..5_000).map(|i| format!("v{i}")).collect();
        assert!(filter(&json!({"kind": {"$in": many}})).unwrap_err().contains("more than 4096 values"));
        assert!(filter(&json!({"$any": []})).is_err(), "an empty $any would match nothing");
        assert!(filter(&json!({"kind": {"$in": []}})).is_err());
        let negated: Vec<String> = (0..4_000).map(|i| format!("v{i}")).collect();
        let wide = json!({"$all": [{"$not": {"kind": {"$in": negated}}}, {"$any": [{"kind": "a"}, {"kind": "b"}]}]});
        assert!(filter(&wide).unwrap_err().contains("values"), "a negation's values count too");
        assert_eq!(filter(&json!({"$not": {}})).unwrap(), Filter::nothing(), "not everything is nothing");
    }
}
