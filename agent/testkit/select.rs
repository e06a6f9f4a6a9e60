//! `labelSelector` and `fieldSelector` for list and watch, in the real server's syntax.

use serde_json::Value;

use super::errors::ApiError;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// Both selectors of one request; an object matches when every requirement holds.
#[derive(Clone, Debug, Default)]
pub struct Selector {
    labels: Vec<Requirement>,
    fields: Vec<Requirement>,
}

impl Selector {
    pub fn parse(label_selector: Option<&str>, field_selector: Option<&str>) -> Result<Self, ApiError> {
        let labels =
            split_terms(label_selector.unwrap_or_default()).iter().map(|t| parse_label(t)).collect::<Result<_, _>>()?;
        let fields =
            split_terms(field_selector.unwrap_or_default()).iter().map(|t| parse_field(t)).collect::<Result<_, _>>()?;
        Ok(Self { labels, fields })
    }

    pub fn matches(&self, object: &Value) -> bool {
        let label = |key: &str| object.pointer("/metadata/labels").and_then(|l| l.get(key)).and_then(Value::as_str);
        let field = |key: &str| match key {
            "metadata.name" => object.pointer("/metadata/name").and_then(Value::as_str),
            _ => object.pointer("/metadata/namespace").and_then(Value::as_str).or(Some("")),
        };
        self.labels.iter().all(|r| holds(r, label)) && self.fields.iter().all(|r| holds(r, field))
    }
}

fn holds<'a>(requirement: &Requirement, value_of: impl Fn(&str) -> Option<&'a str>) -> bool {
    match requirement {
        Requirement::Equals(key, value) => value_of(key) == Some(value.as_str()),
        Requirement::NotEquals(key, value) => value_of(key) != Some(value.as_str()),
        Requirement::In(key, values) => value_of(key).is_some_and(|v| values.iter().any(|x| x == v)),
        Requirement::NotIn(key, values) => value_of(key).is_none_or(|v| values.iter().all(|x| x != v)),
        Requirement::Exists(key) => value_of(key).is_some(),
        Requirement::NotExists(key) => value_of(key).is_none(),
    }
}

/// Splits on commas outside parentheses: `a in (x,y),b` is two terms.
fn split_terms(text: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let (mut depth, mut current) = (0_i32, String::new());
    for ch in text.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(ch);
    }
    terms.push(current);
    terms.into_iter().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect()
}

fn parse_label(term: &str) -> Result<Requirement, ApiError> {
    let bad = || ApiError::bad_request(format!("unable to parse requirement: {term:?}"));
    if let Some((key, value)) = term.split_once("!=") {
        return Ok(Requirement::NotEquals(key.trim().into(), value.trim().into()));
    }
    if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return Ok(Requirement::Equals(key.trim().into(), value.trim().into()));
    }
    if let Some(key) = term.strip_prefix('!') {
        return Ok(Requirement::NotExists(key.trim().into()));
    }
    let words: Vec<&str> = term.splitn(2, char::is_whitespace).collect();
    match words.as_slice() {
        [key] => Ok(Requirement::Exists((*key).into())),
        [key, rest] => {
            let rest = rest.trim();
            let (negated, list) = match (rest.strip_prefix("notin"), rest.strip_prefix("in")) {
                (Some(list), _) => (true, list),
                (None, Some(list)) => (false, list),
                _ => return Err(bad()),
            };
            let list = list.trim().strip_prefix('(').and_then(|l| l.strip_suffix(')')).ok_or_else(bad)?;
            let values = list.split(',').map(|v| v.trim().to_owned()).collect();
            Ok(if negated { Requirement::NotIn((*key).into(), values) } else { Requirement::In((*key).into(), values) })
        }
        _ => Err(bad()),
    }
}

/// Only the field selectors every resource supports on a real server.
fn parse_field(term: &str) -> Result<Requirement, ApiError> {
    let (negated, (key, value)) = match term.split_once("!=") {
        Some(pair) => (true, pair),
        None => (
            false,
            term.split_once("==").or_else(|| term.split_once('=')).ok_or_else(|| {
                ApiError::bad_request(format!("invalid selector: '{term}'; can't understand '{term}'"))
            })?,
        ),
    };
    let (key, value) = (key.trim().to_owned(), value.trim().to_owned());
    if key != "metadata.name" && key != "metadata.namespace" {
        return Err(ApiError::bad_request(format!("field label not supported: {key}")));
    }
    Ok(if negated { Requirement::NotEquals(key, value) } else { Requirement::Equals(key, value) })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object() -> Value {
        json!({"metadata": {"name": "a", "namespace": "ns", "labels": {"app": "web", "tier": "front"}}})
    }

    fn matches(labels: &str, fields: &str) -> bool {
        Selector::parse(Some(labels), Some(fields)).unwrap().matches(&object())
    }

    #[test]
    fn label_selectors_cover_equality_sets_and_existence() {
        assert!(matches("app=web,tier!=back", ""));
        assert!(matches("app in (web, api),!missing", ""));
        assert!(matches("tier", ""));
        assert!(!matches("app notin (web)", ""));
        assert!(!matches("app==api", ""));
    }

    #[test]
    fn field_selectors_match_name_and_namespace_only() {
        assert!(matches("", "metadata.name=a,metadata.namespace=ns"));
        assert!(!matches("", "metadata.name!=a"));
        assert!(Selector::parse(None, Some("spec.x=1")).is_err());
    }
}
