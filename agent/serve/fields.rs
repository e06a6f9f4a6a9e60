//! Backstage's `fields` parameter: keep only the listed dotted paths of each entity
//! (`fields=kind,metadata.name,spec.owner`).

use serde_json::{Map, Value};

/// Parses repeated, comma-separated `fields` values. Array selectors (`[`) are rejected, as in
/// Backstage.
pub fn parse<S: AsRef<str>>(params: &[S]) -> Result<Vec<Vec<String>>, String> {
    let mut paths = Vec::new();
    for param in params {
        for field in param.as_ref().split(',').map(str::trim).filter(|f| !f.is_empty()) {
            if field.contains('[') {
                return Err(format!("Invalid field \"{field}\": array selectors are not supported"));
            }
            paths.push(field.split('.').map(str::to_owned).collect());
        }
    }
    Ok(paths)
}

/// The parts of `entity` named by `paths`; everything when `paths` is empty.
pub fn select(entity: Value, paths: &[Vec<String>]) -> Value {
    if paths.is_empty() {
        return entity;
    }
    let mut out = Value::Object(Map::new());
    for path in paths {
        if let Some(found) = lookup(&entity, path) {
            insert(&mut out, path, found.clone());
        }
    }
    out
}

fn lookup<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |node, key| node.get(key))
}

fn insert(out: &mut Value, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut node = out;
    for key in parents {
        let Value::Object(map) = node else { return };
        node = map.entry(key.clone()).or_insert_with(|| Value::Object(Map::new()));
    }
    if let Value::Object(map) = node {
        map.insert(last.clone(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_only_the_named_paths() {
        let entity = json!({"kind": "Component", "metadata": {"name": "a", "uid": "u"}, "spec": {"owner": "t"}});
        let paths = parse(&["kind,metadata.name", "spec.missing"]).unwrap();
        assert_eq!(select(entity, &paths), json!({"kind": "Component", "metadata": {"name": "a"}}));
    }

    #[test]
    fn array_selectors_are_rejected() {
        assert!(parse(&["relations[0]"]).is_err());
    }
}
