//! The entity envelope: the checks every entity passes before anything reads its `spec`
//! (`apiVersion`, `kind`, `metadata.name`, namespace defaulting, name formats).
//! Per-kind schemas and the rest of Backstage's policy chain plug in after this step.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use super::entity_ref::{EntityRef, DEFAULT_NAMESPACE};

static KIND: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-zA-Z][a-z0-9A-Z]*$").expect("kind regex"));
static NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$").expect("name regex"));
static NAMESPACE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]+(?:-+[a-z0-9]+)*$").expect("namespace regex"));

/// Checks the envelope of one parsed document and fills in the default namespace.
/// Returns the entity's canonical reference.
pub fn check(entity: &mut Value) -> Result<EntityRef, String> {
    let root = entity.as_object_mut().ok_or("document is not a mapping")?;
    let api_version = required_string(root, "apiVersion")?;
    if api_version.matches('/').count() > 1 || api_version.is_empty() {
        return Err(invalid("apiVersion", "an optional DNS subdomain prefix and a version", api_version));
    }
    let kind = required_string(root, "kind")?.to_owned();
    if kind.len() > 63 || !KIND.is_match(&kind) {
        return Err(invalid("kind", "a string that is sequences of [a-zA-Z0-9] of at most 63 characters", &kind));
    }
    let metadata = match root.get_mut("metadata") {
        Some(Value::Object(metadata)) => metadata,
        Some(_) => return Err("\"metadata\" is not valid; expected a mapping".to_owned()),
        None => return Err("metadata must have a value".to_owned()),
    };
    let name = match metadata.get("name") {
        Some(Value::String(name)) if !name.is_empty() => name.clone(),
        Some(Value::String(_)) | None => return Err("metadata.name must have a value".to_owned()),
        Some(other) => return Err(invalid("metadata.name", "a string", &other.to_string())),
    };
    if name.len() > 63 || !NAME.is_match(&name) {
        return Err(invalid(
            "metadata.name",
            "a string that is sequences of [a-zA-Z0-9] separated by any of [-_.], at most 63 characters in total",
            &name,
        ));
    }
    let namespace = default_namespace(metadata)?;
    Ok(EntityRef::new(&kind, &namespace, &name))
}

fn default_namespace(metadata: &mut Map<String, Value>) -> Result<String, String> {
    match metadata.get("namespace") {
        None => {
            metadata.insert("namespace".into(), Value::String(DEFAULT_NAMESPACE.into()));
            Ok(DEFAULT_NAMESPACE.to_owned())
        }
        Some(Value::String(ns)) if ns.len() <= 63 && NAMESPACE.is_match(ns) => Ok(ns.clone()),
        Some(Value::String(ns)) => Err(invalid(
            "metadata.namespace",
            "a string that is sequences of [a-z0-9] separated by [-], at most 63 characters in total",
            ns,
        )),
        Some(other) => Err(invalid("metadata.namespace", "a string", &other.to_string())),
    }
}

fn required_string<'a>(root: &'a Map<String, Value>, field: &str) -> Result<&'a str, String> {
    match root.get(field) {
        Some(Value::String(text)) if !text.is_empty() => Ok(text),
        Some(Value::String(_)) | None => Err(format!("{field} must have a value")),
        Some(other) => Err(invalid(field, "a string", &other.to_string())),
    }
}

/// Backstage's wording: `"<field>" is not valid; expected <description> but found "<value>".`
fn invalid(field: &str, expected: &str, found: &str) -> String {
    format!("\"{field}\" is not valid; expected {expected} but found \"{found}\".")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn namespace_defaults_to_default() {
        let mut e = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": "Foo"}});
        assert_eq!(check(&mut e).unwrap().to_string(), "component:default/foo");
        assert_eq!(e["metadata"]["namespace"], "default");
    }

    #[test]
    fn missing_name_is_reported() {
        let mut e = json!({"apiVersion": "v1", "kind": "Component", "metadata": {}});
        assert_eq!(check(&mut e).unwrap_err(), "metadata.name must have a value");
    }

    #[test]
    fn bad_formats_name_the_field() {
        let mut e = json!({"apiVersion": "a/b/c", "kind": "Component", "metadata": {"name": "x"}});
        assert!(check(&mut e).unwrap_err().starts_with("\"apiVersion\" is not valid"));
        let mut e = json!({"apiVersion": "v1", "kind": "Component", "metadata": {"name": "-x"}});
        assert!(check(&mut e).unwrap_err().starts_with("\"metadata.name\" is not valid"));
        let mut e = json!({"apiVersion": "v1", "kind": "Component", "metadata": {"name": "x", "namespace": "Upper"}});
        assert!(check(&mut e).unwrap_err().starts_with("\"metadata.namespace\" is not valid"));
        let mut e = json!({"apiVersion": "v1", "kind": 3, "metadata": {"name": "x"}});
        assert!(check(&mut e).unwrap_err().starts_with("\"kind\" is not valid"));
    }

    #[test]
    fn non_mapping_is_rejected() {
        assert_eq!(check(&mut json!(["a"])).unwrap_err(), "document is not a mapping");
    }
}
