//! Objects as sets of field paths: what server-side apply owns, compares and removes. A leaf is a
//! scalar, a list (lists are atomic here, unlike the real server's keyed lists) or an empty map.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

/// A field path such as `["data", "k"]` (`.data.k`).
pub type FieldPath = Vec<String>;

/// Which part of an object a write may own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The main resource; `status_subresource` leaves `.status` to the `/status` endpoint.
    Main { status_subresource: bool },
    /// The `/status` subresource: only `.status`.
    Status,
}

/// Metadata fields a manager can own; the rest are the server's (name, uid, resourceVersion…).
const OWNABLE_METADATA: [&str; 4] = ["labels", "annotations", "finalizers", "ownerReferences"];

/// The ownable part of `object` for `scope`, as leaves with their values.
pub fn leaves(object: &Value, scope: Scope) -> BTreeMap<FieldPath, Value> {
    let mut out = BTreeMap::new();
    let Some(fields) = object.as_object() else { return out };
    for (key, value) in fields {
        let ownable = match (scope, key.as_str()) {
            (_, "apiVersion" | "kind") => false,
            (Scope::Status, name) => name == "status",
            (Scope::Main { status_subresource }, "status") => !status_subresource,
            (Scope::Main { .. }, _) => true,
        };
        if !ownable {
            continue;
        }
        if key == "metadata" {
            for name in OWNABLE_METADATA {
                if let Some(inner) = value.get(name) {
                    collect(inner, vec![key.clone(), name.to_owned()], &mut out);
                }
            }
        } else {
            collect(value, vec![key.clone()], &mut out);
        }
    }
    out
}

fn collect(value: &Value, path: FieldPath, out: &mut BTreeMap<FieldPath, Value>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, inner) in map {
                let mut next = path.clone();
                next.push(key.clone());
                collect(inner, next, out);
            }
        }
        _ => {
            out.insert(path, value.clone());
        }
    }
}

pub fn get_path<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(object, |value, key| value.get(key))
}

/// Sets a leaf, creating maps on the way. An empty map never wipes a populated one: applying
/// `labels: {}` must not remove labels another manager owns.
pub fn set_path(object: &mut Value, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut cursor = object;
    for key in parents {
        cursor = ensure_map(cursor).entry(key.clone()).or_insert_with(|| Value::Object(Map::new()));
    }
    let map = ensure_map(cursor);
    let keep_existing = value.as_object().is_some_and(Map::is_empty) && map.get(last).is_some_and(Value::is_object);
    if !keep_existing {
        map.insert(last.clone(), value);
    }
}

fn ensure_map(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    match value {
        Value::Object(map) => map,
        _ => unreachable!("made an object just above"),
    }
}

/// Removes a field, then the maps the removal left empty (a label map without labels goes too).
pub fn remove_path(object: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else { return };
    if let Some(Value::Object(map)) = get_path_mut(object, parents) {
        map.remove(last);
        // `metadata` always stays: the object needs its name.
        if map.is_empty() && !parents.is_empty() && parents != ["metadata"] {
            remove_path(object, parents);
        }
    }
}

fn get_path_mut<'a>(object: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(object, |value, key| value.get_mut(key))
}

/// True when one path is the other or lies inside it: owning `.spec` covers `.spec.replicas`.
pub fn overlaps(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// The path as the real server prints it in conflicts: `.data.k`.
pub fn display(path: &[String]) -> String {
    path.iter().fold(String::new(), |mut out, key| {
        out.push('.');
        out.push_str(key);
        out
    })
}

/// RFC 7386 JSON merge patch: `null` removes, maps merge, everything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    let map = ensure_map(target);
    for (key, value) in patch {
        if value.is_null() {
            map.remove(key);
        } else {
            merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// A field set in the `FieldsV1` wire format: `{"f:data":{"f:k":{}}}`.
pub fn to_fields_v1(set: &BTreeSet<FieldPath>) -> Value {
    let mut root = Value::Object(Map::new());
    for path in set {
        let keys: Vec<String> = path.iter().map(|key| format!("f:{key}")).collect();
        set_path(&mut root, &keys, Value::Object(Map::new()));
    }
    root
}

/// Reads back what [`to_fields_v1`] wrote. Keyed-list entries (`k:`, `v:`, `i:`) and `.` never
/// appear in this server's own output, so they are skipped.
pub fn from_fields_v1(value: &Value) -> BTreeSet<FieldPath> {
    let mut out = BTreeSet::new();
    walk_fields_v1(value, &mut Vec::new(), &mut out);
    out
}

fn walk_fields_v1(value: &Value, path: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
    let children: Vec<(&str, &Value)> = value
        .as_object()
        .map(|map| map.iter().filter_map(|(k, v)| k.strip_prefix("f:").map(|name| (name, v))).collect())
        .unwrap_or_default();
    if children.is_empty() {
        if !path.is_empty() {
            out.insert(path.clone());
        }
        return;
    }
    for (name, inner) in children {
        path.push(name.to_owned());
        walk_fields_v1(inner, path, out);
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn path(text: &str) -> FieldPath {
        text.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn leaves_skip_server_metadata_and_respect_status_scope() {
        let object = json!({"apiVersion": "v1", "kind": "X",
            "metadata": {"name": "a", "uid": "u", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "ports": [1, 2], "empty": {}}, "status": {"ready": true}});
        let main: Vec<_> = leaves(&object, Scope::Main { status_subresource: true }).into_keys().collect();
        assert_eq!(
            main,
            vec![path("metadata.labels.app"), path("spec.empty"), path("spec.ports"), path("spec.replicas")]
        );
        let status: Vec<_> = leaves(&object, Scope::Status).into_keys().collect();
        assert_eq!(status, vec![path("status.ready")]);
    }

    #[test]
    fn removing_the_last_key_removes_the_maps_left_empty() {
        let mut object = json!({"metadata": {"name": "a", "labels": {"app": "web"}}, "data": {"k": "v"}});
        remove_path(&mut object, &path("metadata.labels.app"));
        remove_path(&mut object, &path("data.k"));
        assert_eq!(object, json!({"metadata": {"name": "a"}}));
    }

    #[test]
    fn applying_an_empty_map_keeps_a_populated_one() {
        let mut object = json!({"data": {"k": "v"}});
        set_path(&mut object, &path("data"), json!({}));
        assert_eq!(object, json!({"data": {"k": "v"}}));
    }

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut target, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(target, json!({"a": "z", "c": {"d": "e"}}));
    }

    #[test]
    fn fields_v1_round_trips() {
        let set: BTreeSet<FieldPath> = [path("data.k"), path("metadata.labels.app")].into();
        let wire = to_fields_v1(&set);
        assert_eq!(wire, json!({"f:data": {"f:k": {}}, "f:metadata": {"f:labels": {"f:app": {}}}}));
        assert_eq!(from_fields_v1(&wire), set);
    }
}
