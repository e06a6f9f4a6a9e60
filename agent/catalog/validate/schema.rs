//! Backstage's JSON Schemas (`schemas/`, copied verbatim from `@backstage/catalog-model` 1.10.3 and
//! `@backstage/plugin-scaffolder-common` 2.4.0, Apache-2.0) compiled once with the `jsonschema`
//! crate, and Backstage's way of reading their verdicts (`entityKindSchemaValidator`).

use std::sync::LazyLock;

use jsonschema::{Draft, Registry, Validator};
use serde_json::Value;

/// The schemas' `$id`s are relative (`Entity`, `common`); we root them here so references resolve.
const BASE: &str = "https://rigger.dev/schemas/backstage/";

const SHARED: [(&str, &str); 4] = [
    ("Entity", include_str!("../schemas/Entity.schema.json")),
    ("EntityEnvelope", include_str!("../schemas/EntityEnvelope.schema.json")),
    ("EntityMeta", include_str!("../schemas/EntityMeta.schema.json")),
    ("common", include_str!("../schemas/common.schema.json")),
];

/// Kind schemas in the order Backstage's processors try them: `BuiltinKindsEntityProcessor`'s
/// list, then the scaffolder module's Template.
const KINDS: [&str; 9] = [
    include_str!("../schemas/API.schema.json"),
    include_str!("../schemas/Component.schema.json"),
    include_str!("../schemas/Resource.schema.json"),
    include_str!("../schemas/Group.schema.json"),
    include_str!("../schemas/Location.schema.json"),
    include_str!("../schemas/User.schema.json"),
    include_str!("../schemas/System.schema.json"),
    include_str!("../schemas/Domain.schema.json"),
    include_str!("../schemas/Template.schema.json"),
];

/// Parses a bundled schema and roots its relative `$id` and `$ref`s at [`BASE`].
#[allow(clippy::expect_used)] // the schemas are compiled into the binary and tested
fn load(text: &str) -> Value {
    let mut schema: Value = serde_json::from_str(text).expect("bundled schema is JSON");
    if let Some(id) = schema.get("$id").and_then(Value::as_str) {
        schema["$id"] = Value::String(format!("{BASE}{id}"));
    }
    root_refs(&mut schema);
    schema
}

fn root_refs(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match child {
                    Value::String(target) if key == "$ref" && !target.starts_with('#') => {
                        *target = format!("{BASE}{target}");
                    }
                    _ => root_refs(child),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(root_refs),
        _ => {}
    }
}

#[allow(clippy::expect_used)]
static REGISTRY: LazyLock<Registry<'static>> = LazyLock::new(|| {
    let mut builder = Registry::new().draft(Draft::Draft7);
    for (id, text) in SHARED {
        builder = builder.add(format!("{BASE}{id}"), load(text)).expect("schema URI");
    }
    builder.prepare().expect("shared schemas resolve")
});

#[allow(clippy::expect_used)]
fn compile(text: &str) -> Validator {
    jsonschema::options()
        .with_draft(Draft::Draft7)
        .with_registry(&REGISTRY)
        .build(&load(text))
        .expect("bundled schema compiles")
}

static ENVELOPE: LazyLock<Validator> = LazyLock::new(|| compile(SHARED[1].1));
static ENTITY: LazyLock<Validator> = LazyLock::new(|| compile(SHARED[0].1));
static KIND_VALIDATORS: LazyLock<Vec<Validator>> = LazyLock::new(|| KINDS.iter().map(|t| compile(t)).collect());

/// The envelope every entity needs before anything else: `apiVersion`, `kind`, `metadata.name`.
pub fn envelope(entity: &Value) -> Result<(), String> {
    first_error(&ENVELOPE, entity)
}

/// The whole-entity schema (`SchemaValidEntityPolicy`).
pub fn entity(entity: &Value) -> Result<(), String> {
    first_error(&ENTITY, entity)
}

/// What the kind validators make of an entity.
#[derive(Debug, PartialEq, Eq)]
pub enum KindVerdict {
    /// A validator claimed the entity and it is valid.
    Valid,
    /// No validator claimed it (foreign kind or apiVersion).
    Unrecognized,
    /// A validator claimed it and found it invalid.
    Invalid(String),
}

/// Backstage's kind validation: each validator answers "not mine" when the only complaints about
/// `/kind` or `/apiVersion` are enum mismatches; otherwise an error is thrown.
pub fn kind(entity: &Value) -> KindVerdict {
    for validator in KIND_VALIDATORS.iter() {
        let errors: Vec<_> = validator.iter_errors(entity).collect();
        if errors.is_empty() {
            return KindVerdict::Valid;
        }
        let soft: Vec<_> =
            errors.iter().filter(|e| matches!(e.instance_path().as_str(), "/kind" | "/apiVersion")).collect();
        let not_mine = !soft.is_empty()
            && soft.iter().all(|e| matches!(e.kind(), jsonschema::error::ValidationErrorKind::Enum { .. }));
        if !not_mine {
            return KindVerdict::Invalid(describe(&errors[0]));
        }
    }
    KindVerdict::Unrecognized
}

fn first_error(validator: &Validator, entity: &Value) -> Result<(), String> {
    match validator.iter_errors(entity).next() {
        None => Ok(()),
        Some(error) => Err(describe(&error)),
    }
}

/// Ajv's wording, which Backstage passes through: `<path> <message>`, `<root>` for the root.
fn describe(error: &jsonschema::ValidationError<'_>) -> String {
    use jsonschema::error::ValidationErrorKind as K;
    let path = error.instance_path().as_str();
    let path = if path.is_empty() { "<root>" } else { path };
    let message = match error.kind() {
        K::Required { property } => format!("must have required property '{}'", property.as_str().unwrap_or_default()),
        K::Type { kind } => format!("must be {}", type_words(kind)),
        K::MinLength { limit } => format!("must NOT have fewer than {limit} characters"),
        K::AdditionalProperties { unexpected } => {
            format!("must NOT have additional properties - additionalProperty: {}", unexpected.join(", "))
        }
        K::Enum { options } => format!("must be equal to one of the allowed values - allowedValues: {options}"),
        K::MinItems { limit } => format!("must NOT have fewer than {limit} items"),
        K::Pattern { pattern } => format!("must match pattern \"{pattern}\""),
        _ => error.to_string(),
    };
    format!("{path} {message}")
}

fn type_words(kind: &jsonschema::error::TypeKind) -> String {
    use jsonschema::error::TypeKind;
    let name = |t: &jsonschema::JsonType| t.to_string();
    match kind {
        TypeKind::Single(t) => name(t),
        TypeKind::Multiple(types) => types.iter().map(|t| name(&t)).collect::<Vec<_>>().join(","),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_bundled_schema_compiles() {
        assert!(envelope(&json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "a"}})).is_ok());
        assert_eq!(KIND_VALIDATORS.len(), KINDS.len());
    }

    #[test]
    fn envelope_names_the_missing_field() {
        assert_eq!(
            envelope(&json!({"kind": "X", "metadata": {"name": "a"}})).unwrap_err(),
            "<root> must have required property 'apiVersion'"
        );
        assert_eq!(
            envelope(&json!({"apiVersion": "v1", "kind": "X", "metadata": {}})).unwrap_err(),
            "/metadata must have required property 'name'"
        );
    }

    #[test]
    fn kind_validators_claim_or_pass() {
        let component = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": "a"},
            "spec": {"type": "service", "lifecycle": "production", "owner": "team"}});
        assert_eq!(kind(&component), KindVerdict::Valid);
        let mut missing_owner = component.clone();
        missing_owner["spec"].as_object_mut().unwrap().remove("owner");
        assert_eq!(kind(&missing_owner), KindVerdict::Invalid("/spec must have required property 'owner'".into()));
        let mut foreign = component.clone();
        foreign["kind"] = json!("Widget");
        assert_eq!(kind(&foreign), KindVerdict::Unrecognized);
        let mut lower = component;
        lower["kind"] = json!("component");
        assert_eq!(kind(&lower), KindVerdict::Unrecognized, "kind enums are case-sensitive");
    }

    #[test]
    fn templates_are_recognised() {
        let template = json!({"apiVersion": "scaffolder.backstage.io/v1beta3", "kind": "Template", "metadata": {"name": "t"},
            "spec": {"type": "service", "steps": []}});
        assert_eq!(kind(&template), KindVerdict::Valid);
    }
}
