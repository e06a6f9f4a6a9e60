//! `rigger validate PATH...`: the catalog's verdict on each YAML document, for developers' CI.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::catalog::placeholders::Remote;
use crate::catalog::{self, ingest, parse, template_sources, EntityRef, Limits, LocationOutcome};
use crate::source::local::LocalDir;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
    /// GitHub Actions workflow commands (`::error file=…,line=…::…`).
    Github,
}

/// Whether `validate` reads what documents point at (Location targets, placeholders).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    Yes,
    No,
}

/// The verdict on one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub file: String,
    pub index: usize,
    /// 1-based line where the document starts, for annotations.
    pub line: usize,
    pub entity_ref: Option<String>,
    pub error: Option<String>,
}

/// Validates every file (directories are searched for `*.yaml`/`*.yml`), writes the verdicts
/// and returns whether all documents passed.
pub fn run(paths: &[PathBuf], format: Format, follow: Follow, out: &mut impl Write) -> std::io::Result<bool> {
    let mut all_ok = true;
    let mut seen = std::collections::HashSet::new();
    for file in expand(paths) {
        let verdicts = match follow {
            Follow::No => validate_file(&file),
            Follow::Yes => follow_file(&file),
        };
        // A file reached from two named roots is reported once.
        for verdict in verdicts.into_iter().filter(|v| seen.insert((v.file.clone(), v.index))) {
            all_ok &= verdict.error.is_none();
            writeln!(out, "{}", render(&verdict, format)).or_else(ignore_broken_pipe)?;
        }
    }
    Ok(all_ok)
}

fn ignore_broken_pipe(err: std::io::Error) -> std::io::Result<()> {
    if err.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(err)
    }
}

fn expand(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            collect_yaml(path, &mut files);
        } else {
            files.push(path.clone());
        }
    }
    files
}

fn collect_yaml(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_yaml(&path, files);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            files.push(path);
        }
    }
}

/// Validates `path` the way the agent reads it: from the root of its repository (the nearest
/// folder holding `.git`, else its own folder), following Location targets and reading
/// placeholders. Every file reached gets its own verdicts.
pub fn follow_file(path: &Path) -> Vec<Verdict> {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let root = repository_root(&absolute);
    let Ok(relative) = absolute.strip_prefix(&root) else { return validate_file(path) };
    let dir = LocalDir {
        source: "validate".into(),
        root: root.clone(),
        catalog_path: relative.to_string_lossy().into_owned(),
    };
    let Ok(snapshot) = dir.snapshot() else { return validate_file(path) };
    // Remote placeholder targets are checked for form only: validate has no allow-list.
    let ingest = catalog::ingest_with(&snapshot, Limits::default(), Some(Remote::FormOnly));
    let mut verdicts = Vec::new();
    for outcome in &ingest.locations {
        let file = if outcome.path == dir.catalog_path {
            path.to_path_buf()
        } else {
            relative_to_cwd(&root.join(&outcome.path))
        };
        let mut found = merge_follow_errors(&file, outcome);
        check_skeletons(outcome, snapshot.files.as_ref(), &mut found);
        verdicts.extend(found);
    }
    verdicts
}

/// Templates of a followed file: every skeleton they name must exist in the repository.
fn check_skeletons(outcome: &LocationOutcome, tree: &dyn crate::source::FileTree, verdicts: &mut [Verdict]) {
    for entity in outcome.entities.iter().filter(|e| e.entity_ref.kind == "template") {
        let refs = template_sources::skeleton_refs(&entity.body, &outcome.path);
        let limit = Limits::default().max_file_bytes;
        let errors = match refs {
            Ok(refs) => template_sources::collect(tree, &refs, limit).err().unwrap_or_default(),
            Err(errors) => errors,
        };
        let this = entity.entity_ref.to_string();
        let verdict = verdicts.iter_mut().find(|v| v.entity_ref.as_deref() == Some(this.as_str()) && v.error.is_none());
        if let (Some(verdict), false) = (verdict, errors.is_empty()) {
            verdict.error = Some(errors.join("; "));
        }
    }
}

/// The file's own verdicts, with the errors found by following (unreadable placeholder targets,
/// bad Location targets, a missing file) laid over them.
fn merge_follow_errors(file: &Path, outcome: &LocationOutcome) -> Vec<Verdict> {
    let mut verdicts = if outcome.read { validate_file(file) } else { Vec::new() };
    for error in &outcome.errors {
        let index = error.index.unwrap_or(0);
        match verdicts.iter_mut().find(|v| v.index == index) {
            Some(verdict) if verdict.error.is_none() => verdict.error = Some(error.message.clone()),
            Some(_) => {}
            None => verdicts.push(Verdict {
                file: file.display().to_string(),
                index,
                line: 1,
                entity_ref: None,
                error: Some(error.message.clone()),
            }),
        }
    }
    verdicts
}

/// Paths under the working directory are shown relative to it, as the user typed the root.
fn relative_to_cwd(path: &Path) -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_default();
    path.strip_prefix(&cwd).map_or_else(|_| path.to_path_buf(), Path::to_path_buf)
}

fn repository_root(absolute: &Path) -> PathBuf {
    let folder = absolute.parent().map(Path::to_path_buf).unwrap_or_default();
    folder.ancestors().find(|dir| dir.join(".git").exists()).map_or(folder.clone(), Path::to_path_buf)
}

pub fn validate_file(path: &Path) -> Vec<Verdict> {
    let file = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) => {
            let error = Some(format!("cannot read {file}: {err}"));
            return vec![Verdict { file, index: 0, line: 1, entity_ref: None, error }];
        }
    };
    validate_text(&file, &text)
}

/// The verdicts on one file's text; a panic (a bug) fails this file alone.
pub fn validate_text(file: &str, text: &str) -> Vec<Verdict> {
    ingest::confined(|| verdicts_of(file, text)).unwrap_or_else(|error| {
        vec![Verdict { file: file.to_owned(), index: 0, line: 1, entity_ref: None, error: Some(error) }]
    })
}

fn verdicts_of(file: &str, text: &str) -> Vec<Verdict> {
    let starts = document_lines(text);
    parse::documents(text)
        .into_iter()
        .map(|doc| {
            let line = starts.get(doc.index).copied().unwrap_or(1);
            let (entity_ref, error) = match doc.parsed {
                Err(error) => (None, Some(error)),
                Ok(value) => {
                    let best_ref = lenient_ref(&value);
                    match ingest::check_document(value, Path::new(file)) {
                        Ok(entity) if entity.entity_ref.kind == "template" => {
                            let problems = template_sources::check_parameters(&entity.body);
                            (Some(entity.entity_ref.to_string()), (!problems.is_empty()).then(|| problems.join("; ")))
                        }
                        Ok(entity) => (Some(entity.entity_ref.to_string()), None),
                        Err(error) => (best_ref, Some(error)),
                    }
                }
            };
            Verdict { file: file.to_owned(), index: doc.index, line, entity_ref, error }
        })
        .collect()
}

/// A ref for the error report when kind and name are at least strings.
fn lenient_ref(value: &Value) -> Option<String> {
    EntityRef::lenient(value).map(|r| r.to_string())
}

/// The 1-based line on which each document starts (a `---` line opens a new one).
fn document_lines(text: &str) -> Vec<usize> {
    let mut starts = vec![1];
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("---") && i > 0 {
            starts.push(i + 2);
        } else if line.starts_with("---") && i == 0 {
            starts[0] = 2;
        }
    }
    starts
}

fn render(verdict: &Verdict, format: Format) -> String {
    match format {
        Format::Json => json!({
            "file": verdict.file,
            "index": verdict.index,
            "ok": verdict.error.is_none(),
            "ref": verdict.entity_ref,
            "error": verdict.error,
        })
        .to_string(),
        Format::Human => match &verdict.error {
            None => {
                format!("ok    {}#{} {}", verdict.file, verdict.index, verdict.entity_ref.as_deref().unwrap_or("-"))
            }
            Some(error) => format!(
                "error {}#{} {}: {error}",
                verdict.file,
                verdict.index,
                verdict.entity_ref.as_deref().unwrap_or("-")
            ),
        },
        Format::Github => match &verdict.error {
            None => format!(
                "::notice file={},line={}::{} is valid",
                verdict.file,
                verdict.line,
                verdict.entity_ref.as_deref().unwrap_or("document")
            ),
            Some(error) => format!(
                "::error file={},line={}::document {}: {}",
                verdict.file,
                verdict.line,
                verdict.index,
                escape_github(error)
            ),
        },
    }
}

/// Workflow commands end at a newline; GitHub's escapes keep multi-line messages intact.
fn escape_github(message: &str) -> String {
    message.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_follow_the_contract() {
        let text = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: { name: foo }\nspec: { type: service, lifecycle: production, owner: team-a }\n---\nkind: Component\nmetadata: { name: bar }\n";
        let verdicts = validate_text("c.yaml", text);
        let lines: Vec<String> = verdicts.iter().map(|v| render(v, Format::Json)).collect();
        let first: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(
            first,
            json!({"file": "c.yaml", "index": 0, "ok": true, "ref": "component:default/foo", "error": null})
        );
        let second: Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(second["ok"], false);
        assert_eq!(second["ref"], "component:default/bar");
        assert_eq!(
            second["error"],
            "Entity envelope failed validation: <root> must have required property 'apiVersion'"
        );
    }

    #[test]
    fn github_format_points_at_the_document_line() {
        let text = "kind: A\n---\nkind: B\n";
        let verdicts = validate_text("c.yaml", text);
        assert_eq!(verdicts[1].line, 3);
        assert!(render(&verdicts[1], Format::Github).starts_with("::error file=c.yaml,line=3::document 1: "));
    }

    #[test]
    fn ref_is_null_when_none_can_be_formed() {
        let verdicts = validate_text("c.yaml", "- a list\n");
        assert_eq!(verdicts[0].entity_ref, None);
        assert!(verdicts[0].error.is_some());
    }
}
