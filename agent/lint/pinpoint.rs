//! Which field a catalog error is about, read from the error (Backstage's words, which name the
//! field in one of a few shapes) and the document, and a suggestion when the field looks like a
//! misspelling of what was expected.

use serde_json::Value;

use crate::catalog::validate::{KNOWN_API_VERSIONS, KNOWN_KINDS};
use crate::suggest::nearest as near;
use crate::yaml::join_field;

/// Root fields of an entity document.
const ROOT_FIELDS: [&str; 4] = ["apiVersion", "kind", "metadata", "spec"];

/// Where an error points, and what the author may have meant.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pinpoint {
    /// Dotted path of the field (`spec.owner`, `spec.targets[1]`); empty: the document.
    pub path: String,
    pub hint: Option<String>,
}

/// The field `message` is about in `document`, with a hint for near misses.
pub fn pinpoint(message: &str, document: &Value) -> Pinpoint {
    let message = message
        .strip_prefix("Entity envelope failed validation: ")
        .or_else(|| message.strip_prefix("Malformed envelope, "))
        .unwrap_or(message);
    if let Some(found) = missing_property(message, document) {
        return found;
    }
    if let Some(extra) = message.split("additionalProperty: ").nth(1).or_else(|| message.strip_prefix("Unknown field "))
    {
        let extra = extra.trim();
        let at = pointer_of(message).unwrap_or_default();
        let hint = at.is_empty().then(|| near(extra, &ROOT_FIELDS)).flatten().map(|f| format!("did you mean `{f}`?"));
        return Pinpoint { path: join_field(&at, extra), hint };
    }
    if message.starts_with("No processor recognized the entity") {
        return unrecognised(document);
    }
    if let Some(quoted) = message.strip_prefix('"').and_then(|rest| rest.split('"').next()) {
        return Pinpoint { path: quoted.to_owned(), hint: None };
    }
    if let Some(path) = pointer_of(message) {
        return Pinpoint { path, hint: None };
    }
    if let Some(field) = message.split(" must be ").next().filter(|f| f.starts_with("metadata.")) {
        return Pinpoint { path: field.to_owned(), hint: None };
    }
    if let Some(placeholder) = message.strip_prefix("Placeholder ").and_then(|rest| rest.split(' ').next()) {
        return Pinpoint { path: find(document, &|key, _| key == placeholder).unwrap_or_default(), hint: None };
    }
    // Last: a quoted value of the document (a Location target, a URL) named in the message.
    let quoted: Vec<&str> = message.split('"').skip(1).step_by(2).collect();
    let path = find(document, &|_, value| value.as_str().is_some_and(|v| quoted.contains(&v)));
    Pinpoint { path: path.unwrap_or_default(), hint: None }
}

/// `<root> must have required property 'apiVersion'`, `/spec must have required property
/// 'owner'`: the mapping that lacks it, or a key there that is a misspelling of it.
fn missing_property(message: &str, document: &Value) -> Option<Pinpoint> {
    let (at, property) = message.split_once(" must have required property '")?;
    let property = property.trim_end_matches('\'');
    let at = if at == "<root>" { String::new() } else { dotted(at) };
    let mapping = lookup(document, &at).and_then(Value::as_object);
    let misspelt = mapping.and_then(|m| m.keys().find(|key| near(key, &[property]).is_some()));
    Some(match misspelt {
        Some(key) => Pinpoint { path: join_field(&at, key), hint: Some(format!("did you mean `{property}`?")) },
        None => Pinpoint { path: at, hint: None },
    })
}

/// A kind or apiVersion no validator takes: which one, and what was probably meant.
fn unrecognised(document: &Value) -> Pinpoint {
    let kind = document.get("kind").and_then(Value::as_str).unwrap_or_default();
    if !KNOWN_KINDS.contains(&kind) {
        let hint = near(kind, &KNOWN_KINDS).map(|k| format!("did you mean kind `{k}`?"));
        return Pinpoint { path: "kind".into(), hint };
    }
    let api_version = document.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let expected = if kind == "Template" { "scaffolder.backstage.io/v1beta3" } else { "backstage.io/v1alpha1" };
    let hint = match near(api_version, &KNOWN_API_VERSIONS) {
        Some(meant) if meant != api_version => format!("did you mean `{meant}`?"),
        _ => format!("kind {kind} takes apiVersion `{expected}`"),
    };
    Pinpoint { path: "apiVersion".into(), hint: Some(hint) }
}

/// The JSON pointer a schema message starts with (`/spec/owner must be string`), dotted.
fn pointer_of(message: &str) -> Option<String> {
    let pointer = message.split(' ').next().filter(|p| p.starts_with('/'))?;
    Some(dotted(pointer))
}

/// `/spec/dependsOn/0` → `spec.dependsOn[0]`.
fn dotted(pointer: &str) -> String {
    let mut path = String::new();
    for segment in pointer.split('/').filter(|s| !s.is_empty()) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.bytes().all(|b| b.is_ascii_digit()) {
            path = format!("{path}[{segment}]");
        } else {
            path = join_field(&path, &segment);
        }
    }
    path
}

/// The value at a dotted path (keys only; lists are not entered).
fn lookup<'a>(document: &'a Value, path: &str) -> Option<&'a Value> {
    if path.is_empty() {
        return Some(document);
    }
    path.split('.').try_fold(document, |value, key| value.get(key))
}

/// The path of the first field (depth first, in document order) that `wanted` accepts.
fn find(value: &Value, wanted: &dyn Fn(&str, &Value) -> bool) -> Option<String> {
    match value {
        Value::Object(map) => map.iter().find_map(|(key, child)| {
            if wanted(key, child) {
                Some(key.clone())
            } else {
                find(child, wanted)
                    .map(|inner| format!("{key}{}{inner}", if inner.starts_with('[') { "" } else { "." }))
            }
        }),
        Value::Array(items) => items.iter().enumerate().find_map(|(index, child)| {
            if wanted("", child) {
                Some(format!("[{index}]"))
            } else {
                find(child, wanted)
                    .map(|inner| format!("[{index}]{}{inner}", if inner.starts_with('[') { "" } else { "." }))
            }
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at(message: &str, document: &Value) -> (String, Option<String>) {
        let found = pinpoint(message, document);
        (found.path, found.hint)
    }

    #[test]
    fn each_shape_of_message_names_its_field() {
        let doc = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": "-x-"}, "spec": {"owner": 5, "lifecyle": "production",
            "definition": {"$text": "./nope.yaml"}, "targets": ["./a.yaml", "./missing.yaml"]}});
        assert_eq!(at("\"metadata.name\" is not valid; expected …", &doc), ("metadata.name".into(), None));
        assert_eq!(at("/spec/owner must be string", &doc), ("spec.owner".into(), None));
        assert_eq!(at("/spec/dependsOn/0 must be string", &doc), ("spec.dependsOn[0]".into(), None));
        assert_eq!(
            at("/spec must have required property 'lifecycle'", &doc),
            ("spec.lifecyle".into(), Some("did you mean `lifecycle`?".into()))
        );
        assert_eq!(at("/spec must have required property 'type'", &doc), ("spec".into(), None));
        assert_eq!(
            at("Malformed envelope, <root> must NOT have additional properties - additionalProperty: specs", &doc),
            ("specs".into(), Some("did you mean `spec`?".into()))
        );
        assert_eq!(at("Unknown field status", &doc), ("status".into(), None));
        assert_eq!(at("metadata.annotations must be a valid object", &doc), ("metadata.annotations".into(), None));
        assert_eq!(
            at("Placeholder $text could not read ./nope.yaml: not found", &doc),
            ("spec.definition.$text".into(), None)
        );
        assert_eq!(at("target \"./missing.yaml\" escapes the repository", &doc), ("spec.targets[1]".into(), None));
    }

    #[test]
    fn unrecognised_kinds_and_api_versions_get_suggestions() {
        let message = "No processor recognized the entity compnent:default/a as valid, possibly caused by a foreign kind or apiVersion";
        let doc = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Compnent", "metadata": {"name": "a"}});
        assert_eq!(at(message, &doc), ("kind".into(), Some("did you mean kind `Component`?".into())));
        let doc = json!({"apiVersion": "backstage.io/v1alpa1", "kind": "Component", "metadata": {"name": "a"}});
        assert_eq!(at(message, &doc), ("apiVersion".into(), Some("did you mean `backstage.io/v1alpha1`?".into())));
        let doc = json!({"apiVersion": "backstage.io/v1beta1", "kind": "Template", "metadata": {"name": "a"}});
        assert_eq!(
            at(message, &doc),
            ("apiVersion".into(), Some("kind Template takes apiVersion `scaffolder.backstage.io/v1beta3`".into()))
        );
        let doc = json!({"kind": "Component"});
        assert_eq!(
            at("Entity envelope failed validation: <root> must have required property 'apiVersion'", &doc),
            (String::new(), None)
        );
        let doc = json!({"apiversion": "backstage.io/v1alpha1", "kind": "Component"});
        assert_eq!(
            at("Entity envelope failed validation: <root> must have required property 'apiVersion'", &doc),
            ("apiversion".into(), Some("did you mean `apiVersion`?".into()))
        );
    }
}
