//! The Kubernetes objects in an entity's manifest files: every YAML document must be an object
//! with `apiVersion`, `kind` and `metadata.name`; problems name the file and document.

use serde_json::Value;

use crate::catalog::parse;

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
