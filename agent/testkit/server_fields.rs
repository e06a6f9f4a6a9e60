//! What the server itself writes into objects: identity and timestamps on create, the fields a
//! client cannot change, `metadata.generation`, and what the real server's own controllers add
//! (a CRD's accepted names and conditions, a namespace's label, phase and finalizer).

use serde_json::{json, Value};

use super::errors::ApiError;
use super::resources::{types_from_crd, CRD_GROUP, CRD_PLURAL};
use super::world::{now, Target};

/// A non-empty string at `pointer`.
pub fn text<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object.pointer(pointer).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Server-owned metadata of a new object; a resource with a status subresource starts without
/// status, as the real server resets it on create.
pub fn prepare_new(target: &Target, object: &mut Value) {
    object["apiVersion"] = json!(target.rt.api_version());
    object["kind"] = json!(target.rt.kind);
    if target.rt.status {
        if let Some(map) = object.as_object_mut() {
            map.remove("status");
        }
    }
    let metadata = &mut object["metadata"];
    if let Some(map) = metadata.as_object_mut() {
        for server_field in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
            "generation",
            "namespace",
        ] {
            map.remove(server_field);
        }
    }
    metadata["name"] = json!(target.name);
    if let Some(namespace) = &target.namespace {
        metadata["namespace"] = json!(namespace);
    }
    metadata["uid"] = json!(uuid::Uuid::new_v4().to_string());
    metadata["creationTimestamp"] = json!(now());
    if target.rt.generation {
        metadata["generation"] = json!(1);
    }
}

/// Fields a client cannot change through an update.
pub fn carry_server_fields(target: &Target, old: &Value, new: &mut Value) {
    new["apiVersion"] = json!(target.rt.api_version());
    new["kind"] = json!(target.rt.kind);
    if !new.get("metadata").is_some_and(Value::is_object) {
        new["metadata"] = json!({});
    }
    let fixed = [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "generation",
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
    ];
    for field in fixed {
        match old["metadata"].get(field) {
            Some(value) => new["metadata"][field] = value.clone(),
            None => {
                if let Some(map) = new["metadata"].as_object_mut() {
                    map.remove(field);
                }
            }
        }
    }
}

/// `metadata.generation` counts changes to the desired state: everything but metadata (and
/// status, when a status subresource keeps it apart).
pub fn bump_generation(target: &Target, old: &Value, new: &mut Value) {
    if !target.rt.generation {
        return;
    }
    let desired = |object: &Value| {
        let mut object = object.clone();
        if let Some(map) = object.as_object_mut() {
            map.remove("metadata");
            if target.rt.status {
                map.remove("status");
            }
        }
        object
    };
    if desired(old) != desired(new) {
        let generation = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
        new["metadata"]["generation"] = json!(generation + 1);
    }
}

/// What the real server's own controllers add: a CRD's names accepted and Established, a
/// namespace's name label, phase and finalizer.
pub fn server_effects(target: &Target, old: Option<&Value>, new: &mut Value) -> Result<(), ApiError> {
    match (target.rt.group.as_str(), target.rt.plural.as_str()) {
        (CRD_GROUP, CRD_PLURAL) if !target.status => {
            types_from_crd(new).map_err(|problem| ApiError::invalid(&target.rt, &target.name, &problem))?;
            new["status"] = crd_status(new, old);
        }
        ("", "namespaces") => {
            new["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(target.name);
            if old.is_none() {
                new["spec"]["finalizers"] = json!(["kubernetes"]);
                new["status"] = json!({"phase": "Active"});
            }
        }
        _ => {}
    }
    Ok(())
}

fn crd_status(crd: &Value, old: Option<&Value>) -> Value {
    let since = old.and_then(|o| text(o, "/status/conditions/0/lastTransitionTime")).map_or_else(now, str::to_owned);
    let mut names = crd.pointer("/spec/names").cloned().unwrap_or_else(|| json!({}));
    if names.get("singular").is_none() {
        let kind = text(crd, "/spec/names/kind").unwrap_or_default().to_lowercase();
        names["singular"] = json!(kind);
    }
    let stored: Vec<&str> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|versions| {
            versions.iter().filter(|v| v["storage"] == json!(true)).filter_map(|v| v["name"].as_str()).collect()
        })
        .unwrap_or_default();
    json!({
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": since},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": since},
        ],
        "acceptedNames": names,
        "storedVersions": stored,
    })
}
