//! Backstage's validation of one entity, in the catalog's order: the envelope, the default policy
//! chain (schema, default namespace, no foreign root fields, field formats), then kind validation.
//! Messages name the field and the rule, in Backstage's words where Backstage has words.

mod field_format;
mod schema;

use serde_json::{Map, Value};

use super::entity_ref::{EntityRef, DEFAULT_NAMESPACE};
use schema::KindVerdict;

/// Root fields an entity file may carry (`NoForeignRootFieldsEntityPolicy`'s default list).
const KNOWN_ROOT_FIELDS: [&str; 4] = ["apiVersion", "kind", "metadata", "spec"];

/// Step one, before anything reads the entity: the envelope schema (`apiVersion`, `kind`,
/// `metadata.name`) and an annotations mapping (a missing or falsy one becomes `{}`, as the
/// catalog does when it stamps location annotations). Returns the canonical ref.
pub fn envelope(entity: &mut Value) -> Result<EntityRef, String> {
    if !entity.is_object() {
        return Err("document is not a mapping".to_owned());
    }
    schema::envelope(entity).map_err(|e| format!("Entity envelope failed validation: {e}"))?;
    let metadata = entity.get_mut("metadata").and_then(Value::as_object_mut).ok_or("metadata must be a mapping")?;
    let falsy = match metadata.get("annotations") {
        None | Some(Value::Null | Value::Bool(false)) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(_) => false,
    };
    if falsy {
        metadata.insert("annotations".into(), Value::Object(Map::new()));
    } else if !metadata.get("annotations").is_some_and(Value::is_object) {
        return Err("metadata.annotations must be a valid object".to_owned());
    }
    Ok(reference(entity))
}

/// Step two, after pre-processing: the policy chain (schema, default namespace, no foreign root
/// fields, field formats) and kind validation.
pub fn policies_and_kind(entity: &mut Value, entity_ref: &EntityRef) -> Result<(), String> {
    schema::entity(entity).map_err(|e| format!("Malformed envelope, {e}"))?;
    let root = entity.as_object_mut().ok_or("document is not a mapping")?;
    default_namespace(root);
    if let Some(field) = root.keys().find(|k| !KNOWN_ROOT_FIELDS.contains(&k.as_str())) {
        return Err(format!("Unknown field {field}"));
    }
    field_format::enforce(root)?;
    match schema::kind(entity) {
        KindVerdict::Valid => Ok(()),
        KindVerdict::Invalid(message) => Err(message),
        KindVerdict::Unrecognized => Err(format!(
            "No processor recognized the entity {entity_ref} as valid, possibly caused by a foreign kind or apiVersion"
        )),
    }
}

/// Both steps with nothing in between, for callers without a location to stamp.
pub fn entity(entity: &mut Value) -> Result<EntityRef, String> {
    let entity_ref = envelope(entity)?;
    policies_and_kind(entity, &entity_ref)?;
    Ok(entity_ref)
}

/// Kinds whose documents can be attributed to a stored entity when they fail: the kinds the
/// catalog's validators know.
pub const KNOWN_KINDS: [&str; 9] =
    ["Component", "API", "Resource", "System", "Domain", "Group", "User", "Location", "Template"];

/// The `apiVersion`s those validators accept (`Template`: the scaffolder's).
pub const KNOWN_API_VERSIONS: [&str; 3] =
    ["backstage.io/v1alpha1", "backstage.io/v1beta1", "scaffolder.backstage.io/v1beta3"];

/// The entity a failing document stands for — only when that is beyond doubt: a known kind and
/// a name and namespace that pass their formats. A typo in `kind` must not make the stored
/// entity look undeclared (and so deleted); such a document hides what its file declares.
pub fn attributable(document: &Value) -> Option<EntityRef> {
    let kind = document.get("kind")?.as_str()?;
    let metadata = document.get("metadata")?;
    let name = metadata.get("name")?;
    let namespace = metadata.get("namespace");
    let formats_hold = field_format::is_valid_name(name) && namespace.is_none_or(field_format::is_valid_namespace);
    (KNOWN_KINDS.contains(&kind) && formats_hold).then(|| EntityRef::lenient(document)).flatten()
}

/// The ref of an entity that passed the envelope: kind and name are non-empty strings.
fn reference(entity: &Value) -> EntityRef {
    let kind = entity["kind"].as_str().unwrap_or_default();
    let name = entity["metadata"]["name"].as_str().unwrap_or_default();
    let namespace = entity["metadata"]["namespace"].as_str().filter(|n| !n.is_empty()).unwrap_or(DEFAULT_NAMESPACE);
    EntityRef::new(kind, namespace, name)
}

/// `DefaultNamespaceEntityPolicy`: a missing (or empty) namespace becomes `default`.
fn default_namespace(root: &mut Map<String, Value>) {
    if let Some(Value::Object(metadata)) = root.get_mut("metadata") {
        let empty = metadata.get("namespace").is_none_or(|ns| ns.as_str() == Some(""));
        if empty {
            metadata.insert("namespace".into(), Value::String(DEFAULT_NAMESPACE.into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn component() -> Value {
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": "Foo"},
               "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"}})
    }

    #[test]
    fn a_valid_component_gets_its_namespace_and_ref() {
        let mut e = component();
        assert_eq!(entity(&mut e).unwrap().to_string(), "component:default/foo");
        assert_eq!(e["metadata"]["namespace"], "default");
    }

    #[test]
    fn foreign_root_fields_are_rejected() {
        let mut e = component();
        e["status"] = json!({});
        assert!(entity(&mut e).is_err());
        let mut e = component();
        e["extra"] = json!(1);
        assert_eq!(
            entity(&mut e).unwrap_err(),
            "Malformed envelope, <root> must NOT have additional properties - additionalProperty: extra"
        );
    }

    #[test]
    fn unknown_kinds_are_not_recognised() {
        let mut e = component();
        e["kind"] = json!("Widget");
        assert_eq!(
            entity(&mut e).unwrap_err(),
            "No processor recognized the entity widget:default/foo as valid, possibly caused by a foreign kind or apiVersion"
        );
    }

    #[test]
    fn only_unambiguous_failures_are_attributed() {
        let mut missing_owner = component();
        missing_owner["spec"].as_object_mut().unwrap().remove("owner");
        assert_eq!(attributable(&missing_owner).unwrap().to_string(), "component:default/foo");
        let mut typo = component();
        typo["kind"] = json!("Compnent");
        assert!(attributable(&typo).is_none());
        let mut bad_namespace = component();
        bad_namespace["metadata"]["namespace"] = json!("Bad NS");
        assert!(attributable(&bad_namespace).is_none());
    }

    #[test]
    fn missing_spec_fields_name_the_field() {
        let mut e = component();
        e["spec"] = json!({"type": "service", "owner": "a"});
        assert_eq!(entity(&mut e).unwrap_err(), "/spec must have required property 'lifecycle'");
    }
}
