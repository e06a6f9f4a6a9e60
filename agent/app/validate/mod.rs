//! `rigger validate PATH...`: the catalog's verdict on each YAML document, for developers' CI:
//! each error at the line and column of the field it concerns, with a suggestion for near
//! misses.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

mod discover;
mod pinpoint;

use crate::catalog::placeholders::Remote;
use crate::catalog::yaml::{field_positions, FieldPositions, Position};
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
    /// 1-based line and column of what the verdict is about: the field in error, else the
    /// document's start.
    pub line: usize,
    pub column: usize,
    pub entity_ref: Option<String>,
    pub error: Option<String>,
    /// What the author probably meant (a near-miss kind, apiVersion or key).
    pub hint: Option<String>,
}

impl Verdict {
    fn failed(file: &str, index: usize, (line, column): Position, error: String) -> Self {
        Self { file: file.to_owned(), index, line, column, entity_ref: None, error: Some(error), hint: None }
    }
}

/// Validates the files named and the catalog files of the directories named, writes the
/// verdicts (each document once) and returns whether all documents passed. Files of a
/// directory that are not catalog files are named on `skipped`.
pub fn run(
    paths: &[PathBuf],
    format: Format,
    follow: Follow,
    out: &mut impl Write,
    skipped: &mut impl Write,
) -> std::io::Result<bool> {
    let plan = discover::plan(paths);
    let mut all_ok = true;
    let mut seen = std::collections::HashSet::new();
    for file in &plan.judged {
        let verdicts = match follow {
            Follow::No => validate_file(file),
            Follow::Yes => follow_file(file),
        };
        // A file reached from two roots, or named and reached, is reported once.
        for verdict in verdicts.into_iter().filter(|v| seen.insert((identity(Path::new(&v.file)), v.index))) {
            all_ok &= verdict.error.is_none();
            writeln!(out, "{}", render(&verdict, format)).or_else(ignore_broken_pipe)?;
        }
    }
    for file in &plan.skipped {
        if !seen.iter().any(|(reached, _)| *reached == identity(file)) {
            let file = display(file);
            writeln!(skipped, "skipped {file}: no document in it looks like a Backstage entity")
                .or_else(ignore_broken_pipe)?;
        }
    }
    Ok(all_ok)
}

/// The same file however it was named (`./a.yaml`, `a.yaml`, through a Location).
fn identity(file: &Path) -> PathBuf {
    std::fs::canonicalize(file).unwrap_or_else(|_| std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf()))
}

/// A file as the user sees it: relative to the working directory when under it.
fn display(file: &Path) -> String {
    let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    relative_to_cwd(&absolute).display().to_string()
}

fn ignore_broken_pipe(err: std::io::Error) -> std::io::Result<()> {
    if err.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(err)
    }
}

/// Validates `path` the way the agent reads it: from the root of its repository (the nearest
/// folder holding `.git`, else its own folder), following Location targets and reading
/// placeholders. Every file reached gets its own verdicts; a target that cannot be read names
/// the Location that named it.
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
    let paths_by_key: std::collections::HashMap<&str, &str> =
        ingest.locations.iter().map(|o| (o.key.as_str(), o.path.as_str())).collect();
    let mut verdicts = Vec::new();
    for outcome in &ingest.locations {
        let file = display(&root.join(&outcome.path));
        let named_by = outcome
            .parent
            .as_deref()
            .and_then(|parent| paths_by_key.get(parent))
            .map(|parent| naming_location(&root, parent, &outcome.path));
        let mut found = merge_follow_errors(Path::new(&file), outcome, named_by.as_deref());
        check_skeletons(outcome, snapshot.files.as_ref(), &mut found);
        verdicts.extend(found);
    }
    verdicts
}

/// `the Location at catalog-info.yaml:5:14`: where the file that leads to `target` names it
/// (found by the target's file name in the parent's text), else the parent file.
fn naming_location(root: &Path, parent: &str, target: &str) -> String {
    let parent_file = root.join(parent);
    let name = Path::new(target).file_name().and_then(|n| n.to_str()).unwrap_or(target);
    let text = std::fs::read_to_string(&parent_file).unwrap_or_default();
    let at = text.lines().enumerate().find_map(|(i, line)| line.find(name).map(|col| (i + 1, col + 1)));
    match at {
        Some((line, column)) => format!("the Location at {}:{line}:{column}", display(&parent_file)),
        None => format!("the Location in {}", display(&parent_file)),
    }
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
fn merge_follow_errors(file: &Path, outcome: &LocationOutcome, named_by: Option<&str>) -> Vec<Verdict> {
    let text = if outcome.read { std::fs::read_to_string(file).ok() } else { None };
    let mut verdicts = match &text {
        Some(text) => validate_text(&file.display().to_string(), text),
        None if outcome.read => validate_file(file),
        None => Vec::new(),
    };
    for error in &outcome.errors {
        let index = error.index.unwrap_or(0);
        match verdicts.iter_mut().find(|v| v.index == index) {
            Some(verdict) if verdict.error.is_none() => {
                let document = text.as_deref().and_then(|t| document_value(t, index));
                let at = text.as_deref().map(|t| field_position(t, index, &error.message, document.as_ref()));
                if let Some((line, column, hint)) = at {
                    (verdict.line, verdict.column, verdict.hint) = (line, column, hint);
                }
                verdict.error = Some(error.message.clone());
            }
            Some(_) => {}
            None => {
                let message = match named_by {
                    Some(location) if !outcome.read => format!("{} (named by {location})", error.message),
                    _ => error.message.clone(),
                };
                verdicts.push(Verdict::failed(&file.display().to_string(), index, (1, 1), message));
            }
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
    match std::fs::read_to_string(path) {
        Ok(text) => validate_text(&file, &text),
        Err(err) => vec![Verdict::failed(&file, 0, (1, 1), format!("cannot read {file}: {err}"))],
    }
}

/// The verdicts on one file's text; a panic (a bug) fails this file alone.
pub fn validate_text(file: &str, text: &str) -> Vec<Verdict> {
    ingest::confined(|| verdicts_of(file, text)).unwrap_or_else(|error| vec![Verdict::failed(file, 0, (1, 1), error)])
}

fn verdicts_of(file: &str, text: &str) -> Vec<Verdict> {
    parse::documents(text)
        .into_iter()
        .map(|doc| {
            let (entity_ref, error, document) = match doc.parsed {
                Err(error) => (None, Some(error), None),
                Ok(value) => {
                    let best_ref = lenient_ref(&value);
                    match ingest::check_document(value.clone(), Path::new(file)) {
                        Ok(entity) if entity.entity_ref.kind == "template" => {
                            let problems = template_sources::check_parameters(&entity.body);
                            let error = (!problems.is_empty()).then(|| problems.join("; "));
                            (Some(entity.entity_ref.to_string()), error, Some(value))
                        }
                        Ok(entity) => (Some(entity.entity_ref.to_string()), None, Some(value)),
                        Err(error) => (best_ref, Some(error), Some(value)),
                    }
                }
            };
            let (line, column, hint) = if let Some(error) = &error {
                field_position(text, doc.index, error, document.as_ref())
            } else {
                let (line, column) = document_start(text, doc.index);
                (line, column, None)
            };
            Verdict { file: file.to_owned(), index: doc.index, line, column, entity_ref, error, hint }
        })
        .collect()
}

/// Where an error about document `index` points: a position the message carries (a YAML
/// error's), else the field it names, else the document's start; and a hint.
fn field_position(text: &str, index: usize, message: &str, document: Option<&Value>) -> (usize, usize, Option<String>) {
    if let Some((line, column)) = position_in_message(message) {
        return (line, column, None);
    }
    let start = document_start(text, index);
    let Some(document) = document else { return (start.0, start.1, None) };
    let found = pinpoint::pinpoint(message, document);
    let at = document_fields(text, index).and_then(|fields| fields.locate(&found.path)).unwrap_or(start);
    (at.0, at.1, found.hint)
}

/// `… (line 3, column 7)` or `… at line 3, column 7: …`, as the YAML reader words them.
fn position_in_message(message: &str) -> Option<Position> {
    let rest = &message[message.find("line ")? + "line ".len()..];
    let (line, rest) = rest.split_once(", column ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((line.trim().parse().ok()?, column.parse().ok()?))
}

/// The parsed value of document `index`, for errors found while following.
fn document_value(text: &str, index: usize) -> Option<Value> {
    parse::documents(text).into_iter().nth(index).and_then(|doc| doc.parsed.ok())
}

/// The lines each document of `text` spans: `(first line, last line)`, 1-based; a `---` line
/// opens a new document.
fn document_spans(text: &str) -> Vec<(usize, usize)> {
    let mut starts = vec![1];
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("---") {
            if i == 0 {
                starts[0] = 2;
            } else {
                starts.push(i + 2);
            }
        }
    }
    let total = text.lines().count().max(1);
    starts.iter().enumerate().map(|(i, start)| (*start, starts.get(i + 1).map_or(total, |next| next - 2))).collect()
}

/// Where document `index` starts (its first line, column 1).
fn document_start(text: &str, index: usize) -> Position {
    (document_spans(text).get(index).map_or(1, |span| span.0), 1)
}

/// The fields of document `index` and where they are written, read from its own lines (so a
/// syntax error elsewhere in the file does not hide them).
fn document_fields(text: &str, index: usize) -> Option<FieldPositions> {
    let (first, last) = *document_spans(text).get(index)?;
    let lines: Vec<&str> = text.lines().skip(first - 1).take(last + 1 - first).collect();
    let fields = field_positions(&lines.join("\n")).into_iter().next()?;
    Some(fields.shifted(first - 1))
}

/// A ref for the error report when kind and name are at least strings.
fn lenient_ref(value: &Value) -> Option<String> {
    EntityRef::lenient(value).map(|r| r.to_string())
}

fn render(verdict: &Verdict, format: Format) -> String {
    let at = format!("{}:{}:{}", verdict.file, verdict.line, verdict.column);
    let hint = verdict.hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default();
    let entity = verdict.entity_ref.as_deref();
    match format {
        Format::Json => json!({
            "file": verdict.file,
            "index": verdict.index,
            "line": verdict.line,
            "column": verdict.column,
            "ok": verdict.error.is_none(),
            "ref": verdict.entity_ref,
            "error": verdict.error,
            "hint": verdict.hint,
        })
        .to_string(),
        Format::Human => match &verdict.error {
            None => format!("ok    {at} {}", entity.unwrap_or("-")),
            Some(error) => {
                format!("error {at} {}: {error}{hint}", entity.unwrap_or(&format!("document {}", verdict.index)))
            }
        },
        Format::Github => match &verdict.error {
            None => format!(
                "::notice file={},line={},col={}::{} is valid",
                verdict.file,
                verdict.line,
                verdict.column,
                entity.unwrap_or("document")
            ),
            Some(error) => format!(
                "::error file={},line={},col={}::document {}: {}",
                verdict.file,
                verdict.line,
                verdict.column,
                verdict.index,
                escape_github(&format!("{error}{hint}"))
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
            json!({"file": "c.yaml", "index": 0, "line": 1, "column": 1, "ok": true, "ref": "component:default/foo",
                   "error": null, "hint": null})
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
    fn github_format_points_at_the_field() {
        let text = "kind: A\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: -x-\n";
        let verdicts = validate_text("c.yaml", text);
        assert_eq!((verdicts[1].line, verdicts[1].column), (6, 3));
        assert!(render(&verdicts[1], Format::Github).starts_with("::error file=c.yaml,line=6,col=3::document 1: "));
        assert_eq!((verdicts[0].line, verdicts[0].column), (1, 1), "a missing apiVersion: the document");
    }

    #[test]
    fn ref_is_null_when_none_can_be_formed() {
        let verdicts = validate_text("c.yaml", "- a list\n");
        assert_eq!(verdicts[0].entity_ref, None);
        assert!(verdicts[0].error.is_some());
    }
}
