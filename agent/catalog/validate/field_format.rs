//! Backstage's `FieldFormatEntityPolicy` with its default validators (`makeValidator`,
//! `KubernetesValidatorFunctions`, `CommonValidatorFunctions` in `@backstage/catalog-model`):
//! names, namespaces, label and annotation keys and values, tags, links. Same rules, same words.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

static API_VERSION_SUFFIX: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-z0-9A-Z]+$").expect("regex"));
static KIND: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-zA-Z][a-z0-9A-Z]*$").expect("regex"));
static OBJECT_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$").expect("regex"));
static DNS_LABEL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-z0-9]+(?:-+[a-z0-9]+)*$").expect("regex"));
static TAG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-z0-9:+#]+(-[a-z0-9:+#]+)*$").expect("regex"));

/// Which rule a value broke; selects Backstage's wording of the expectation.
#[derive(Clone, Copy)]
enum Rule {
    ApiVersion,
    Kind,
    ObjectName,
    Namespace,
    LabelKey,
    LabelValue,
    AnnotationKey,
    AnnotationValue,
    Tag,
    Url,
    NonEmptyString,
}

impl Rule {
    fn holds(self, value: &Value) -> bool {
        let Some(text) = value.as_str() else { return false };
        match self {
            Self::ApiVersion => {
                prefix_and_or_suffix(text, is_dns_subdomain, |s| length_within(s, 63) && API_VERSION_SUFFIX.is_match(s))
            }
            Self::Kind => length_within(text, 63) && KIND.is_match(text),
            Self::ObjectName => is_object_name(text),
            Self::Namespace => is_dns_label(text),
            Self::LabelKey | Self::AnnotationKey => prefix_and_or_suffix(text, is_dns_subdomain, is_object_name),
            Self::LabelValue => text.is_empty() || is_object_name(text),
            Self::AnnotationValue => true,
            Self::Tag => length_within(text, 63) && TAG.is_match(text),
            Self::Url => url::Url::parse(text).is_ok(),
            Self::NonEmptyString => !js_trim(text).is_empty(),
        }
    }

    fn expectation(self) -> &'static str {
        match self {
            Self::LabelValue | Self::ObjectName => {
                "a string that is sequences of [a-zA-Z0-9] separated by any of [-_.], at most 63 characters in total"
            }
            Self::LabelKey | Self::ApiVersion | Self::AnnotationKey => "a valid prefix and/or suffix",
            Self::Namespace => {
                "a string that is sequences of [a-z0-9] separated by [-], at most 63 characters in total"
            }
            Self::Tag => "a string that is sequences of [a-z0-9+#] separated by [-], at most 63 characters in total",
            Self::AnnotationValue => "a string",
            Self::Kind => "a string that is a sequence of [a-zA-Z][a-z0-9A-Z], at most 63 characters in total",
            Self::Url => "a string that is a valid url",
            Self::NonEmptyString => "a non empty string",
        }
    }
}

/// `metadata.name`'s rule, for callers outside the policy.
pub fn is_valid_name(value: &Value) -> bool {
    Rule::ObjectName.holds(value)
}

/// `metadata.namespace`'s rule, for callers outside the policy.
pub fn is_valid_namespace(value: &Value) -> bool {
    Rule::Namespace.holds(value)
}

/// JavaScript's `String.length` counts UTF-16 code units; the rules are written against it.
fn length_within(text: &str, max: usize) -> bool {
    let units = text.encode_utf16().count();
    (1..=max).contains(&units)
}

fn is_object_name(text: &str) -> bool {
    length_within(text, 63) && OBJECT_NAME.is_match(text)
}

fn is_dns_label(text: &str) -> bool {
    length_within(text, 63) && DNS_LABEL.is_match(text)
}

fn is_dns_subdomain(text: &str) -> bool {
    length_within(text, 253) && text.split('.').all(is_dns_label)
}

/// `<suffix>` or `<prefix>/<suffix>`; more than one separator is invalid.
fn prefix_and_or_suffix(text: &str, prefix: impl Fn(&str) -> bool, suffix: impl Fn(&str) -> bool) -> bool {
    let parts: Vec<&str> = text.split('/').collect();
    match parts.as_slice() {
        [only] => suffix(only),
        [p, s] => prefix(p) && suffix(s),
        _ => false,
    }
}

/// JavaScript's `trim()` strips Unicode white space and line terminators, plus the BOM.
fn js_trim(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
}

const ADR_LINK: &str = "To learn more about catalog file format, visit: https://github.com/backstage/backstage/blob/master/docs/architecture-decisions/adr002-default-catalog-file-format.md";

/// `require` in Backstage's policy: a missing value, or one that breaks the rule, is an error.
fn require(field: &str, value: Option<&Value>, rule: Rule) -> Result<(), String> {
    let value = match value {
        None | Some(Value::Null) => return Err(format!("{field} must have a value")),
        Some(value) => value,
    };
    if rule.holds(value) {
        return Ok(());
    }
    Err(format!(
        "\"{field}\" is not valid; expected {} but found \"{}\". {ADR_LINK}",
        rule.expectation(),
        js_string(value)
    ))
}

/// `optional`: only an absent field passes untested (`null` is tested, as in Backstage).
fn optional(field: &str, value: Option<&Value>, rule: Rule) -> Result<(), String> {
    match value {
        None => Ok(()),
        Some(_) => require(field, value, rule),
    }
}

/// How JavaScript's template literal prints a value (`${value}`).
fn js_string(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(items) => items.iter().map(js_string).collect::<Vec<_>>().join(","),
        Value::Object(_) => "[object Object]".to_owned(),
        other => other.to_string(),
    }
}

/// Enforces the field formats on an entity that already passed the schema policy.
pub fn enforce(entity: &Map<String, Value>) -> Result<(), String> {
    let empty = Map::new();
    let metadata = entity.get("metadata").and_then(Value::as_object).unwrap_or(&empty);
    require("apiVersion", entity.get("apiVersion"), Rule::ApiVersion)?;
    require("kind", entity.get("kind"), Rule::Kind)?;
    require("metadata.name", metadata.get("name"), Rule::ObjectName)?;
    optional("metadata.namespace", metadata.get("namespace"), Rule::Namespace)?;
    for (key, value) in object_entries(metadata.get("labels")) {
        require(&format!("labels.{key}"), Some(&Value::String(key.clone())), Rule::LabelKey)?;
        require(&format!("labels.{key}"), Some(value), Rule::LabelValue)?;
    }
    for (key, value) in object_entries(metadata.get("annotations")) {
        require(&format!("annotations.{key}"), Some(&Value::String(key.clone())), Rule::AnnotationKey)?;
        require(&format!("annotations.{key}"), Some(value), Rule::AnnotationValue)?;
    }
    for (i, tag) in array_items(metadata.get("tags")).iter().enumerate() {
        require(&format!("tags.{i}"), Some(tag), Rule::Tag)?;
    }
    for (i, link) in array_items(metadata.get("links")).iter().enumerate() {
        require(&format!("links.{i}.url"), link.get("url"), Rule::Url)?;
        optional(&format!("links.{i}.title"), link.get("title"), Rule::NonEmptyString)?;
        optional(&format!("links.{i}.icon"), link.get("icon"), Rule::NonEmptyString)?;
    }
    Ok(())
}

fn object_entries(value: Option<&Value>) -> Vec<(&String, &Value)> {
    value.and_then(Value::as_object).map(|m| m.iter().collect()).unwrap_or_default()
}

fn array_items(value: Option<&Value>) -> &[Value] {
    value.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(entity: &Value) -> Result<(), String> {
        enforce(entity.as_object().unwrap())
    }

    fn base() -> Value {
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": "a"}})
    }

    #[test]
    fn names_at_their_boundaries() {
        let mut e = base();
        e["metadata"]["name"] = json!("a".repeat(63));
        assert!(check(&e).is_ok());
        e["metadata"]["name"] = json!("a".repeat(64));
        assert!(check(&e)
            .unwrap_err()
            .starts_with("\"metadata.name\" is not valid; expected a string that is sequences"));
        e["metadata"]["name"] = json!("a--b__c..d");
        assert!(check(&e).is_ok(), "runs of separators are accepted");
        e["metadata"]["name"] = json!("a-");
        assert!(check(&e).is_err());
    }

    #[test]
    fn label_and_annotation_keys_take_a_dns_prefix() {
        let mut e = base();
        e["metadata"]["labels"] = json!({"example.com/team": "", "plain": "v"});
        assert!(check(&e).is_ok());
        e["metadata"]["labels"] = json!({"Example.com/team": "x"});
        assert_eq!(
            check(&e).unwrap_err(),
            format!("\"labels.Example.com/team\" is not valid; expected a valid prefix and/or suffix but found \"Example.com/team\". {ADR_LINK}")
        );
        e["metadata"]["labels"] = json!({});
        e["metadata"]["annotations"] = json!({"a/b/c": "x"});
        assert!(check(&e).is_err());
        e["metadata"]["annotations"] = json!({"a": 3});
        assert!(check(&e).unwrap_err().contains("expected a string but found \"3\""));
    }

    #[test]
    fn tags_and_links() {
        let mut e = base();
        e["metadata"]["tags"] = json!(["java", "c++", "c#", "k8s:prod"]);
        assert!(check(&e).is_ok());
        e["metadata"]["tags"] = json!(["under_score"]);
        assert!(check(&e).unwrap_err().starts_with("\"tags.0\" is not valid"));
        e["metadata"]["tags"] = json!([]);
        e["metadata"]["links"] = json!([{"url": "/relative"}]);
        assert!(check(&e).unwrap_err().starts_with("\"links.0.url\" is not valid"));
        e["metadata"]["links"] = json!([{"url": "https://x.example", "title": "  "}]);
        assert!(check(&e).unwrap_err().starts_with("\"links.0.title\" is not valid"));
        e["metadata"]["links"] = json!([{}]);
        assert_eq!(check(&e).unwrap_err(), "links.0.url must have a value");
    }

    #[test]
    fn api_version_forms() {
        for (version, ok) in [
            ("v1", true),
            ("backstage.io/v1alpha1", true),
            ("a/b/c", false),
            ("Backstage.io/v1", false),
            ("x/v-1", false),
        ] {
            let mut e = base();
            e["apiVersion"] = json!(version);
            assert_eq!(check(&e).is_ok(), ok, "{version}");
        }
    }
}
