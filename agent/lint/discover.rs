//! Which files of a directory `validate` judges: the ones a catalog would read — the root
//! catalog file, what its Locations reach (followed later), and any file with a document that
//! looks like a Backstage entity. The other YAML files of a repository (CI workflows,
//! Kubernetes manifests, compose files) are skipped, and named as skipped.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::catalog::parse;
use crate::catalog::validate::{KNOWN_API_VERSIONS, KNOWN_KINDS};
use crate::suggest::nearest;

/// The catalog file a repository's root holds, as Backstage's discovery and Rigger's sources
/// read by default.
pub const ROOT_CATALOG_FILES: [&str; 2] = ["catalog-info.yaml", "catalog-info.yml"];

/// Folders never searched: other tools' trees, not a repository's own files.
const NOT_SEARCHED: [&str; 3] = [".git", "node_modules", "target"];

/// What to judge, in order, and what was left alone.
#[derive(Debug, Default)]
pub struct Plan {
    pub judged: Vec<PathBuf>,
    /// Files left alone, each with why.
    pub skipped: Vec<(PathBuf, &'static str)>,
}

/// Files named are judged whatever they hold; directories are searched.
pub fn plan(paths: &[PathBuf]) -> Plan {
    let mut plan = Plan::default();
    for path in paths {
        if !path.is_dir() {
            plan.judged.push(path.clone());
            continue;
        }
        let mut found = Vec::new();
        collect_yaml(path, &mut found);
        // The root catalog files first: what they reach is then reported from them.
        let is_root = |file: &PathBuf| file.parent() == Some(path.as_path()) && is_root_catalog_file(file);
        let (roots, others): (Vec<PathBuf>, Vec<PathBuf>) = found.into_iter().partition(is_root);
        plan.judged.extend(roots);
        for file in others {
            // An unreadable file is judged: its verdict says why it cannot be read.
            match std::fs::read_to_string(&file).ok().and_then(|text| judge(&text)) {
                Some(why) => plan.skipped.push((file, why)),
                None => plan.judged.push(file),
            }
        }
    }
    plan
}

fn is_root_catalog_file(file: &Path) -> bool {
    file.file_name().and_then(|n| n.to_str()).is_some_and(|name| ROOT_CATALOG_FILES.contains(&name))
}

fn collect_yaml(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if path.is_dir() {
            if !NOT_SEARCHED.contains(&name) {
                collect_yaml(&path, files);
            }
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            files.push(path);
        }
    }
}

/// Why a file found in a directory is not judged, or `None` to judge it: a document looks like
/// a Backstage entity, even a broken one (an `apiVersion` of Backstage's or nearly, or no
/// `apiVersion` and a kind of Backstage's or nearly). A file whose YAML does not parse is
/// judged when it mentions Backstage (a catalog file with a typo); not otherwise (a Helm
/// template, say). A template skeleton is not a catalog file until it is rendered.
fn judge(text: &str) -> Option<&'static str> {
    let documents = parse::documents(text);
    let entities: Vec<&Value> =
        documents.iter().filter_map(|doc| doc.parsed.as_ref().ok()).filter(|doc| looks_like_entity(doc)).collect();
    let broken = documents.iter().any(|doc| doc.parsed.is_err());
    let mentions_backstage = text.to_ascii_lowercase().contains("backstage");
    // `${{ }}` in a file that is no Template itself (whose steps use them): a skeleton.
    let is_template = entities.iter().any(|doc| doc.get("kind") == Some(&"Template".into()))
        || (broken && text.lines().any(|line| line.trim() == "kind: Template"));
    let skeleton = text.contains("${{") && !is_template;
    match (entities.is_empty(), broken && mentions_backstage) {
        _ if skeleton && (!entities.is_empty() || (broken && mentions_backstage)) => Some(SKELETON),
        (false, _) | (true, true) => None,
        (true, false) if broken => Some("not valid YAML, and nothing in it mentions Backstage"),
        (true, false) => Some("no document in it looks like a Backstage entity"),
    }
}

const SKELETON: &str = "a Software Template skeleton (its ${{ }} expressions are rendered before it is read)";

#[cfg(test)]
fn looks_like_catalog(text: &str) -> bool {
    judge(text).is_none()
}

fn looks_like_entity(document: &Value) -> bool {
    match document.get("apiVersion") {
        Some(Value::String(api_version)) => is_backstage_api_version(api_version),
        _ => document.get("kind").and_then(Value::as_str).is_some_and(|kind| nearest(kind, &KNOWN_KINDS).is_some()),
    }
}

fn is_backstage_api_version(api_version: &str) -> bool {
    let group = api_version.split('/').next().unwrap_or_default().to_ascii_lowercase();
    group.ends_with("backstage.io") || nearest(api_version, &KNOWN_API_VERSIONS).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_files_are_told_from_other_yaml() {
        assert!(looks_like_catalog("apiVersion: backstage.io/v1alpha1\nkind: Component\n"));
        assert!(looks_like_catalog("apiVersion: backstag.io/v1alpha1\nkind: Component\n"), "a near miss");
        assert!(looks_like_catalog("kind: Compnent\nmetadata: { name: a }\n"), "no apiVersion, a near-miss kind");
        assert!(looks_like_catalog("apiVersion: v1\nkind: ConfigMap\n---\napiVersion: backstage.io/v1alpha1\n"));
        assert!(looks_like_catalog("apiVersion: backstage.io/v1alpha1\nkind: [\n"), "a broken catalog file");
        assert!(!looks_like_catalog("{{- if .Values.enabled }}\nkind: ConfigMap\n{{- end }}\n"), "a Helm template");
        assert!(!looks_like_catalog("apiVersion: apps/v1\nkind: Deployment\n"), "a Kubernetes manifest");
        assert!(!looks_like_catalog("apiVersion: template.openshift.io/v1\nkind: Template\n"));
        assert!(!looks_like_catalog("name: CI\non: [push]\njobs: {}\n"), "a GitHub workflow");
        assert!(!looks_like_catalog("services:\n  web: { image: nginx }\n"), "a compose file");
        let skeleton = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: ${{ values.name }}\n";
        assert!(!looks_like_catalog(skeleton), "a template skeleton");
        let template = "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata:\n  name: t\nspec:\n  steps:\n    - input:\n        name: ${{ parameters.name }}\n";
        assert!(looks_like_catalog(template), "a Template's own steps use ${{ }}");
        let workflow = "name: CI\njobs:\n  a:\n    if: ${{ github.ref }}\n";
        assert_eq!(judge(workflow), Some("no document in it looks like a Backstage entity"));
        let broken_template =
            "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nspec: { steps: [ ${{ x }} ] }\n";
        assert!(looks_like_catalog(broken_template), "a broken Template is judged, not taken for a skeleton");
        let broken_workflow = "name: CI\njobs: { a: { if: ${{ github.ref }} } }\n";
        assert_eq!(judge(broken_workflow), Some("not valid YAML, and nothing in it mentions Backstage"));
    }
}
