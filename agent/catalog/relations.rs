//! Relations between entities, exactly as Backstage's `BuiltinKindsEntityProcessor` (and the
//! scaffolder module, for Templates) emits them: every spec reference yields both directions,
//! with per-field default kinds. Targets are not checked for existence — dangling ones are kept.

use std::fmt;

use serde_json::Value;

use super::entity_ref::{EntityRef, DEFAULT_NAMESPACE};

/// One directed relation row. Both directions of a pair are separate rows attributed to the
/// entity that declared them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Relation {
    pub source: EntityRef,
    pub kind: &'static str,
    pub target: EntityRef,
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.source, self.kind, self.target)
    }
}

/// `(spec field, default kind, forward relation, reverse relation)` per entity kind.
type Rule = (&'static str, Option<&'static str>, &'static str, &'static str);

const COMPONENT: &[Rule] = &[
    ("owner", Some("Group"), "ownedBy", "ownerOf"),
    ("subcomponentOf", Some("Component"), "partOf", "hasPart"),
    ("providesApis", Some("API"), "providesApi", "apiProvidedBy"),
    ("consumesApis", Some("API"), "consumesApi", "apiConsumedBy"),
    ("dependsOn", None, "dependsOn", "dependencyOf"),
    ("dependencyOf", None, "dependencyOf", "dependsOn"),
    ("system", Some("System"), "partOf", "hasPart"),
];
const API: &[Rule] = &[("owner", Some("Group"), "ownedBy", "ownerOf"), ("system", Some("System"), "partOf", "hasPart")];
const RESOURCE: &[Rule] = &[
    ("owner", Some("Group"), "ownedBy", "ownerOf"),
    ("dependsOn", None, "dependsOn", "dependencyOf"),
    ("dependencyOf", None, "dependencyOf", "dependsOn"),
    ("system", Some("System"), "partOf", "hasPart"),
];
const USER: &[Rule] = &[("memberOf", Some("Group"), "memberOf", "hasMember")];
const GROUP: &[Rule] = &[
    ("parent", Some("Group"), "childOf", "parentOf"),
    ("children", Some("Group"), "parentOf", "childOf"),
    ("members", Some("User"), "hasMember", "memberOf"),
];
const SYSTEM: &[Rule] =
    &[("owner", Some("Group"), "ownedBy", "ownerOf"), ("domain", Some("Domain"), "partOf", "hasPart")];
const DOMAIN: &[Rule] =
    &[("owner", Some("Group"), "ownedBy", "ownerOf"), ("subdomainOf", Some("Domain"), "partOf", "hasPart")];
const TEMPLATE: &[Rule] = &[("owner", Some("Group"), "ownedBy", "ownerOf")];

/// Spec fields Backstage sorts before processing (string arrays only), so that reordering them
/// in a file is not a change.
const SORTED_FIELDS: [&str; 7] =
    ["providesApis", "consumesApis", "dependsOn", "dependencyOf", "memberOf", "children", "members"];

fn rules(entity: &Value) -> &'static [Rule] {
    match entity["kind"].as_str().unwrap_or_default() {
        "Component" => COMPONENT,
        "API" => API,
        "Resource" => RESOURCE,
        "User" => USER,
        "Group" => GROUP,
        "System" => SYSTEM,
        "Domain" => DOMAIN,
        "Template" if entity["apiVersion"] == "scaffolder.backstage.io/v1beta3" => TEMPLATE,
        _ => &[],
    }
}

/// Sorts the string arrays Backstage sorts (`BuiltinKindsEntityProcessor.preProcessEntity`).
pub fn sort_arrays(entity: &mut Value) {
    let Some(spec) = entity.get_mut("spec").and_then(Value::as_object_mut) else { return };
    for field in SORTED_FIELDS {
        if let Some(Value::Array(items)) = spec.get_mut(field) {
            if items.iter().all(Value::is_string) {
                items.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
    }
}

/// Every relation an entity declares, both directions. An unparsable reference is an error for
/// the entity, as in Backstage.
pub fn declared(entity: &Value, source: &EntityRef) -> Result<Vec<Relation>, String> {
    let mut out = Vec::new();
    for (field, default_kind, forward, reverse) in rules(entity) {
        let targets = &entity["spec"][field];
        if !is_truthy(targets) {
            continue;
        }
        let items = match targets {
            Value::Array(items) => items.clone(),
            single => vec![single.clone()],
        };
        for item in &items {
            let target = parse_target(item, *default_kind, &source.namespace)?;
            out.push(Relation { source: source.clone(), kind: forward, target: target.clone() });
            out.push(Relation { source: target, kind: reverse, target: source.clone() });
        }
    }
    Ok(out)
}

/// JavaScript truthiness, which decides whether Backstage looks at a field at all.
fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// `parseEntityRef`: strings in `[kind:][namespace/]name` form, or `{kind, namespace, name}`.
fn parse_target(value: &Value, default_kind: Option<&str>, default_namespace: &str) -> Result<EntityRef, String> {
    let default_namespace = if default_namespace.is_empty() { DEFAULT_NAMESPACE } else { default_namespace };
    if !is_truthy(value) {
        return Err("Entity reference must not be empty".to_owned());
    }
    if let Value::String(text) = value {
        return EntityRef::parse(text, default_kind, default_namespace);
    }
    let field = |key: &str| value.get(key).and_then(Value::as_str).filter(|s| !s.is_empty());
    let textual = value.to_string();
    let kind = field("kind").or(default_kind).ok_or_else(|| {
        format!(
            "Entity reference {textual} had missing or empty kind (e.g. did not start with \"component:\" or similar)"
        )
    })?;
    let namespace = field("namespace").unwrap_or(default_namespace);
    let name = field("name").ok_or_else(|| format!("Entity reference {textual} had missing or empty name"))?;
    Ok(EntityRef::new(kind, namespace, name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn relations(entity: &Value) -> Result<Vec<String>, String> {
        let source =
            EntityRef::new(entity["kind"].as_str().unwrap(), "ns", entity["metadata"]["name"].as_str().unwrap());
        Ok(declared(entity, &source)?.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn component_fields_emit_both_directions_with_default_kinds() {
        let c = json!({"kind": "Component", "metadata": {"name": "web"},
            "spec": {"owner": "team-a", "system": "other/shop", "providesApis": ["api-a"], "dependsOn": ["resource:db"]}});
        assert_eq!(
            relations(&c).unwrap(),
            [
                "component:ns/web ownedBy group:ns/team-a",
                "group:ns/team-a ownerOf component:ns/web",
                "component:ns/web providesApi api:ns/api-a",
                "api:ns/api-a apiProvidedBy component:ns/web",
                "component:ns/web dependsOn resource:ns/db",
                "resource:ns/db dependencyOf component:ns/web",
                "component:ns/web partOf system:other/shop",
                "system:other/shop hasPart component:ns/web",
            ]
        );
    }

    #[test]
    fn depends_on_has_no_default_kind() {
        let c = json!({"kind": "Component", "metadata": {"name": "web"}, "spec": {"dependsOn": ["db"]}});
        assert!(relations(&c).unwrap_err().contains("had missing or empty kind"));
    }

    #[test]
    fn group_members_and_user_groups() {
        let g = json!({"kind": "Group", "metadata": {"name": "g"}, "spec": {"parent": "root", "children": [], "members": ["jane"]}});
        assert_eq!(
            relations(&g).unwrap(),
            [
                "group:ns/g childOf group:ns/root",
                "group:ns/root parentOf group:ns/g",
                "group:ns/g hasMember user:ns/jane",
                "user:ns/jane memberOf group:ns/g",
            ]
        );
    }

    #[test]
    fn compound_and_bad_references() {
        let r = json!({"kind": "Resource", "metadata": {"name": "r"}, "spec": {"dependencyOf": {"kind": "Component", "name": "X"}}});
        assert_eq!(relations(&r).unwrap()[0], "resource:ns/r dependencyOf component:ns/x");
        let r = json!({"kind": "Resource", "metadata": {"name": "r"}, "spec": {"dependencyOf": [5]}});
        assert_eq!(
            relations(&r).unwrap_err(),
            "Entity reference 5 had missing or empty kind (e.g. did not start with \"component:\" or similar)"
        );
        let r = json!({"kind": "Resource", "metadata": {"name": "r"}, "spec": {"owner": "group:"}});
        assert!(relations(&r).unwrap_err().contains("was not on the form"));
    }

    #[test]
    fn templates_only_relate_their_owner() {
        let t = json!({"apiVersion": "scaffolder.backstage.io/v1beta3", "kind": "Template", "metadata": {"name": "t"}, "spec": {"owner": "me"}});
        assert_eq!(relations(&t).unwrap(), ["template:ns/t ownedBy group:ns/me", "group:ns/me ownerOf template:ns/t"]);
    }

    #[test]
    fn string_arrays_are_sorted_before_hashing() {
        let mut c = json!({"spec": {"providesApis": ["b", "a"], "tags": ["z", "y"]}});
        sort_arrays(&mut c);
        assert_eq!(c["spec"]["providesApis"], json!(["a", "b"]));
    }
}
