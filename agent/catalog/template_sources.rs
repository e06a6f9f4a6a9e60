//! The sources a Software Template scaffolds from: every `fetch:*` step whose `url` is a static
//! path in the template's repository (reference §7.2–7.3), resolved against the template file
//! and confined to the repository like `Location` targets, expanded to the files it holds at the
//! synced commit. Dynamic (`${{ … }}`) and absolute URLs are resolved only at scaffold time and
//! are not recorded. A diff of two file sets says which files changed.

use std::collections::BTreeMap;

use serde_json::Value;

use super::location::resolve_target;
use crate::source::{FileStat, FileTree};

/// One file a template scaffolds from, as of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Repository-relative.
    pub path: String,
    pub stat: FileStat,
}

/// A step input that names repository content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkeletonRef {
    pub step: String,
    /// Repository-relative directory (or file, for the `:file` actions).
    pub path: String,
    pub single_file: bool,
}

/// The skeleton paths a template's steps name, or every problem (a path leaving the
/// repository, a `targetPath` climbing out of the workspace).
pub fn skeleton_refs(template: &Value, template_file: &str) -> Result<Vec<SkeletonRef>, Vec<String>> {
    let mut refs = Vec::new();
    let mut errors = Vec::new();
    for (index, step) in template["spec"]["steps"].as_array().into_iter().flatten().enumerate() {
        let action = step["action"].as_str().unwrap_or_default();
        let name = step["id"].as_str().map_or_else(|| format!("steps[{index}]"), |id| format!("step {id}"));
        let single_file = match action {
            "fetch:template" | "fetch:plain" => false,
            "fetch:template:file" | "fetch:plain:file" => true,
            _ => continue,
        };
        let input = &step["input"];
        if let Some(target) = input["targetPath"].as_str() {
            if escapes(target) {
                errors.push(format!("{name}: targetPath {target:?} leaves the workspace"));
            }
        }
        let Some(url) = input["url"].as_str() else { continue };
        if url.contains("${{") || url.contains("://") {
            continue;
        }
        match resolve_target(template_file, url) {
            Ok(path) => refs.push(SkeletonRef { step: name, path, single_file }),
            Err(e) => errors.push(format!("{name}: url {url:?}: {e}")),
        }
    }
    if errors.is_empty() {
        Ok(refs)
    } else {
        Err(errors)
    }
}

fn escapes(path: &str) -> bool {
    let mut depth = 0i32;
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => depth -= 1,
            _ => depth += 1,
        }
        if depth < 0 {
            return true;
        }
    }
    path.starts_with('/')
}

/// The files the skeletons hold, sorted by path; a skeleton that does not exist is an error
/// (never an empty set, which would read as "every file removed").
pub fn collect(tree: &dyn FileTree, refs: &[SkeletonRef], max_bytes: usize) -> Result<Vec<SourceFile>, Vec<String>> {
    let listed =
        if refs.iter().any(|r| !r.single_file) { tree.list().map_err(|e| vec![e.to_string()])? } else { Vec::new() };
    let mut files = BTreeMap::new();
    let mut errors = Vec::new();
    for skeleton in refs {
        let paths: Vec<&String> = if skeleton.single_file {
            vec![&skeleton.path]
        } else {
            let prefix = if skeleton.path.is_empty() { String::new() } else { format!("{}/", skeleton.path) };
            listed.iter().filter(|p| p.starts_with(&prefix)).collect()
        };
        if paths.is_empty() {
            errors.push(format!("{}: {} does not exist or holds no files", skeleton.step, skeleton.path));
        }
        for path in paths {
            match tree.stat(path, max_bytes) {
                Ok(Some(stat)) => {
                    files.insert(path.clone(), stat);
                }
                Ok(None) => errors.push(format!("{}: {path} does not exist", skeleton.step)),
                Err(e) => errors.push(format!("{}: {e}", skeleton.step)),
            }
        }
    }
    if errors.is_empty() {
        Ok(files.into_iter().map(|(path, stat)| SourceFile { path, stat }).collect())
    } else {
        Err(errors)
    }
}

/// Problems with a template's form: every page of `spec.parameters` must be a well-formed JSON
/// Schema (react-jsonschema-form's `ui:*` keys are extra keywords, which JSON Schema allows).
pub fn check_parameters(template: &Value) -> Vec<String> {
    let parameters = &template["spec"]["parameters"];
    let pages: Vec<(String, &Value)> = match parameters {
        Value::Null => Vec::new(),
        Value::Array(pages) => pages.iter().enumerate().map(|(i, p)| (format!("spec.parameters[{i}]"), p)).collect(),
        page => vec![("spec.parameters".to_owned(), page)],
    };
    pages
        .into_iter()
        .filter_map(|(at, page)| {
            if !page.is_object() {
                return Some(format!("{at}: a form page must be a JSON Schema object"));
            }
            jsonschema::validator_for(page).err().map(|e| format!("{at}: not a valid JSON Schema: {e}"))
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    Added,
    Modified,
    Removed,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Modified => "modified",
            Self::Removed => "removed",
        }
    }
}

/// What changed from `before` to `after` (a mode change counts as a modification), by path.
pub fn diff(before: &[SourceFile], after: &[SourceFile]) -> Vec<(String, Change)> {
    let old: BTreeMap<&str, &FileStat> = before.iter().map(|f| (f.path.as_str(), &f.stat)).collect();
    let new: BTreeMap<&str, &FileStat> = after.iter().map(|f| (f.path.as_str(), &f.stat)).collect();
    let mut changes: Vec<(String, Change)> = new
        .iter()
        .filter_map(|(path, stat)| match old.get(path) {
            None => Some(((*path).to_owned(), Change::Added)),
            Some(was) if was != stat => Some(((*path).to_owned(), Change::Modified)),
            Some(_) => None,
        })
        .collect();
    changes.extend(old.keys().filter(|p| !new.contains_key(*p)).map(|p| ((*p).to_owned(), Change::Removed)));
    changes.sort();
    changes
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::source::MemoryTree;

    fn template(steps: &Value) -> Value {
        json!({"apiVersion": "scaffolder.backstage.io/v1beta3", "kind": "Template", "spec": {"steps": steps}})
    }

    #[test]
    fn static_fetch_urls_are_resolved_against_the_template_file_and_confined() {
        let t = template(&json!([
            {"id": "base", "action": "fetch:template", "input": {"url": "./skeleton", "targetPath": "./out"}},
            {"id": "docs", "action": "fetch:plain", "input": {"url": "../shared/docs"}},
            {"id": "one", "action": "fetch:template:file", "input": {"url": "./extra/LICENSE"}},
            {"id": "dyn", "action": "fetch:template", "input": {"url": "${{ parameters.skeleton }}"}},
            {"id": "remote", "action": "fetch:plain", "input": {"url": "https://github.com/o/r/tree/main/x"}},
            {"id": "publish", "action": "publish:github", "input": {"repoUrl": "x"}}
        ]));
        let refs = skeleton_refs(&t, "templates/web/template.yaml").unwrap();
        let paths: Vec<(&str, bool)> = refs.iter().map(|r| (r.path.as_str(), r.single_file)).collect();
        assert_eq!(
            paths,
            [
                ("templates/web/skeleton", false),
                ("templates/shared/docs", false),
                ("templates/web/extra/LICENSE", true)
            ]
        );
        let bad = template(&json!([
            {"id": "evil", "action": "fetch:plain", "input": {"url": "../../../etc"}},
            {"id": "out", "action": "fetch:template", "input": {"url": "./s", "targetPath": "../../elsewhere"}}
        ]));
        let errors = skeleton_refs(&bad, "templates/web/template.yaml").unwrap_err();
        assert!(errors[0].contains("step evil") && errors[0].contains("escapes the repository"), "{errors:?}");
        assert!(errors[1].contains("targetPath") && errors[1].contains("leaves the workspace"), "{errors:?}");
    }

    #[test]
    fn parameters_must_be_well_formed_json_schemas() {
        let ok = json!({"spec": {"parameters": [
            {"title": "Basics", "required": ["name"], "properties": {"name": {"type": "string", "ui:autofocus": true}}}
        ]}});
        assert!(check_parameters(&ok).is_empty());
        let bad = json!({"spec": {"parameters": [
            {"properties": {"name": {"type": "strin"}}},
            "not a page",
            {"properties": {"age": {"type": "integer", "minimum": "ten"}}}
        ]}});
        let errors = check_parameters(&bad);
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].starts_with("spec.parameters[0]: not a valid JSON Schema"), "{errors:?}");
        assert!(errors[1].contains("must be a JSON Schema object"));
        assert!(errors[2].starts_with("spec.parameters[2]"));
    }

    #[test]
    fn skeleton_files_are_listed_with_git_blob_ids_and_diffed() {
        let tree = MemoryTree::default()
            .with("t/template.yaml", "")
            .with("t/skeleton/README.md", "hello\n")
            .with("t/skeleton/src/main.rs", "fn main() {}\n")
            .with("t/skeleton-other/x", "not this one");
        let refs = vec![SkeletonRef { step: "step a".into(), path: "t/skeleton".into(), single_file: false }];
        let files = collect(&tree, &refs, 1 << 20).unwrap();
        assert_eq!(
            files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
            ["t/skeleton/README.md", "t/skeleton/src/main.rs"]
        );
        // `git hash-object` of "hello\n".
        assert_eq!(files[0].stat.blob_id, "ce013625030ba8dba906f756967f9e9ca394464a");
        let edited = collect(&tree.clone().with("t/skeleton/README.md", "hello!\n"), &refs, 1 << 20).unwrap();
        assert_eq!(diff(&files, &edited), [("t/skeleton/README.md".to_owned(), Change::Modified)]);
        assert!(diff(&files, &files).is_empty());
        let missing = vec![SkeletonRef { step: "step b".into(), path: "t/nope".into(), single_file: false }];
        assert!(collect(&tree, &missing, 1 << 20).unwrap_err()[0].contains("does not exist"));
    }
}
