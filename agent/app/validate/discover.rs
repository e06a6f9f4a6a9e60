//! Which files of a directory `validate` judges: the ones a catalog would read — the root
//! catalog file, what its Locations reach (followed later), and any file with a document that
//! looks like a Backstage entity. The other YAML files of a repository (CI workflows,
//! Kubernetes manifests, compose files) are skipped, and named as skipped.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::catalog::parse;
use crate::catalog::validate::{KNOWN_API_VERSIONS, KNOWN_KINDS};

/// The catalog file a repository's root holds, as Backstage's discovery and Rigger's sources
/// read by default.
pub const ROOT_CATALOG_FILES: [&str; 2] = ["catalog-info.yaml", "catalog-info.yml"];

/// Folders never searched: other tools' trees, not a repository's own files.
const NOT_SEARCHED: [&str; 3] = [".git", "node_modules", "target"];

/// What to judge, in order, and what was left alone.
#[derive(Debug, Default)]
pub struct Plan {
    pub judged: Vec<PathBuf>,
    pub skipped: Vec<PathBuf>,
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
            if std::fs::read_to_string(&file).is_ok_and(|text| looks_like_catalog(&text)) {
                plan.judged.push(file);
            } else {
                plan.skipped.push(file);
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

/// Whether any document of the file looks like a Backstage entity, even a broken one: an
/// `apiVersion` of Backstage's (or nearly), or no `apiVersion` and a kind of Backstage's (or
/// nearly). A file that does not parse is judged: it may be a catalog file with a typo.
pub fn looks_like_catalog(text: &str) -> bool {
    parse::documents(text).into_iter().any(|doc| match doc.parsed {
        Err(_) => true,
        Ok(value) => looks_like_entity(&value),
    })
}

fn looks_like_entity(document: &Value) -> bool {
    match document.get("apiVersion") {
        Some(Value::String(api_version)) => is_backstage_api_version(api_version),
        _ => document.get("kind").and_then(Value::as_str).is_some_and(|kind| near(kind, &KNOWN_KINDS).is_some()),
    }
}

fn is_backstage_api_version(api_version: &str) -> bool {
    let group = api_version.split('/').next().unwrap_or_default().to_ascii_lowercase();
    group.ends_with("backstage.io") || near(api_version, &KNOWN_API_VERSIONS).is_some()
}

/// The known word nearest to `word` when it is close enough to be a misspelling of it (or the
/// same word in another case).
pub fn near<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    known
        .iter()
        .map(|candidate| (strsim::damerau_levenshtein(&word, &candidate.to_ascii_lowercase()), *candidate))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 5))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
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
        assert!(looks_like_catalog("a: [\n"), "a file that does not parse may be a broken catalog file");
        assert!(!looks_like_catalog("apiVersion: apps/v1\nkind: Deployment\n"), "a Kubernetes manifest");
        assert!(!looks_like_catalog("apiVersion: template.openshift.io/v1\nkind: Template\n"));
        assert!(!looks_like_catalog("name: CI\non: [push]\njobs: {}\n"), "a GitHub workflow");
        assert!(!looks_like_catalog("services:\n  web: { image: nginx }\n"), "a compose file");
    }

    #[test]
    fn near_misses_are_found_and_strangers_are_not() {
        assert_eq!(near("Compnent", &KNOWN_KINDS), Some("Component"));
        assert_eq!(near("component", &KNOWN_KINDS), Some("Component"));
        assert_eq!(near("backstage.io/v1alpa1", &KNOWN_API_VERSIONS), Some("backstage.io/v1alpha1"));
        assert_eq!(near("Deployment", &KNOWN_KINDS), None);
        assert_eq!(near("ConfigMap", &KNOWN_KINDS), None);
    }
}
