//! The Kubernetes objects in an entity's manifest files: every YAML document must be an object
//! with `apiVersion`, `kind` and `metadata.name`; problems name the file and document.

use serde_json::Value;

use crate::catalog::location::resolve_target;
use crate::catalog::parse;
use crate::source::FileTree;

/// One object as declared, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub file: String,
    pub index: usize,
    pub object: Value,
}

/// Reads the objects of one manifest file. All or nothing: a file with any bad document yields
/// only errors, so a half-read file can never look like objects were removed.
pub fn read(file: &str, text: &str) -> Result<Vec<Manifest>, Vec<String>> {
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    for doc in parse::documents(text) {
        let at = format!("{file} document {}", doc.index);
        match doc.parsed {
            Ok(object) => match missing_field(&object) {
                Some(field) => errors.push(format!("{at}: a Kubernetes object needs {field}")),
                None => objects.push(Manifest { file: file.to_owned(), index: doc.index, object }),
            },
            Err(message) => errors.push(format!("{at}: {message}")),
        }
    }
    if errors.is_empty() {
        Ok(objects)
    } else {
        Err(errors)
    }
}

/// The objects an entity declares with `rigger.dev/manifests`: `pattern` (a path or glob) is
/// resolved against the entity's catalog file `entity_file` and confined to the repository, as
/// `Location` targets are. All or nothing: one unreadable or malformed file, or a pattern that
/// matches nothing, yields only errors — never a smaller set that would look like deletions.
pub fn collect(
    files: &dyn FileTree,
    entity_file: &str,
    pattern: &str,
    max_bytes: usize,
) -> Result<Vec<Manifest>, Vec<String>> {
    let annotation = super::MANIFESTS_ANNOTATION;
    let resolved = resolve_target(entity_file, pattern).map_err(|e| vec![format!("{annotation}: {e}")])?;
    let paths = if resolved.contains(['*', '?', '[', '{']) {
        let glob = globset::GlobBuilder::new(&resolved)
            .literal_separator(true)
            .build()
            .map_err(|e| vec![format!("{annotation}: {pattern:?} is not a valid glob: {e}")])?
            .compile_matcher();
        let listed = files.list().map_err(|e| vec![format!("{annotation}: {e}")])?;
        listed.into_iter().filter(|p| glob.is_match(p.as_str())).collect()
    } else {
        vec![resolved]
    };
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    for path in &paths {
        match files.read(path, max_bytes) {
            Ok(Some(bytes)) => match String::from_utf8(bytes) {
                Ok(text) => match read(path, &text) {
                    Ok(found) => objects.extend(found),
                    Err(found) => errors.extend(found),
                },
                Err(_) => errors.push(format!("{path}: not UTF-8 text")),
            },
            Ok(None) => errors.push(format!("{annotation}: {path} does not exist")),
            Err(e) => errors.push(format!("{annotation}: {e}")),
        }
    }
    if paths.is_empty() {
        errors.push(format!("{annotation}: {pattern:?} matches no file"));
    }
    if errors.is_empty() {
        Ok(objects)
    } else {
        Err(errors)
    }
}

fn missing_field(object: &Value) -> Option<&'static str> {
    let text = |v: &Value| v.as_str().is_some_and(|s| !s.is_empty());
    if !text(&object["apiVersion"]) {
        Some("apiVersion")
    } else if !text(&object["kind"]) {
        Some("kind")
    } else if !text(&object["metadata"]["name"]) {
        Some("metadata.name")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_are_found_relative_to_the_entity_file_and_confined_to_the_repository() {
        use crate::source::MemoryTree;
        let cm = |name: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{ name: {name} }}\n");
        let tree = MemoryTree::default()
            .with("services/pay/catalog-info.yaml", "")
            .with("services/pay/deploy/a.yaml", &cm("a"))
            .with("services/pay/deploy/b.yaml", &cm("b"))
            .with("services/pay/deploy/nested/c.yaml", &cm("c"))
            .with("services/other/deploy/x.yaml", &cm("x"));
        let names = |found: Vec<Manifest>| {
            found.iter().map(|m| m.object["metadata"]["name"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
        };
        let entity = "services/pay/catalog-info.yaml";
        assert_eq!(
            names(collect(&tree, entity, "./deploy/*.yaml", 1 << 20).unwrap()),
            ["a", "b"],
            "* stays in one directory"
        );
        assert_eq!(names(collect(&tree, entity, "deploy/**/*.yaml", 1 << 20).unwrap()), ["a", "b", "c"]);
        assert_eq!(names(collect(&tree, entity, "deploy/a.yaml", 1 << 20).unwrap()), ["a"]);
        assert!(
            collect(&tree, entity, "../../../etc/*.yaml", 1 << 20).unwrap_err()[0].contains("escapes the repository")
        );
        assert!(collect(&tree, entity, "deploy/*.json", 1 << 20).unwrap_err()[0].contains("matches no file"));
        assert!(collect(&tree, entity, "deploy/missing.yaml", 1 << 20).unwrap_err()[0].contains("does not exist"));
        let broken = tree.with("services/pay/deploy/z.yaml", "kind: Secret\n");
        let errors = collect(&broken, entity, "deploy/*.yaml", 1 << 20).unwrap_err();
        assert_eq!(
            errors,
            ["services/pay/deploy/z.yaml document 0: a Kubernetes object needs apiVersion"],
            "all or nothing"
        );
    }

    #[test]
    fn objects_are_read_per_document_and_problems_name_file_and_document() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: a }\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\n";
        let objects = read("deploy/app.yaml", text).unwrap();
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[1].object["kind"], "Deployment");
        let errors =
            read("deploy/bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: a }\n---\nkind: Secret\n")
                .unwrap_err();
        assert_eq!(errors, ["deploy/bad.yaml document 1: a Kubernetes object needs apiVersion"]);
    }
}
