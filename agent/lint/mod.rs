//! The lint behind `rigger validate PATH...`: the catalog's verdict on each YAML document, for
//! developers' CI: which files of a directory are catalog files (`discover`), each error at the
//! line and column of the field it concerns (`pinpoint`), with a suggestion for near misses.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

mod discover;
mod pinpoint;

use crate::catalog::placeholders::Remote;
use crate::catalog::{self, ingest, parse, template_sources, EntityRef, Limits, LocationOutcome};
use crate::source::local::LocalDir;
use crate::yaml::{field_positions, FieldPositions, Position};

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
    let reached: std::collections::HashSet<&PathBuf> = seen.iter().map(|(file, _)| file).collect();
    for (file, why) in &plan.skipped {
        if !reached.contains(&identity(file)) {
            writeln!(skipped, "skipped {}: {why}", display(file)).or_else(ignore_broken_pipe)?;
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
/// (its path from the parent's folder, as targets are written, found in the parent's text;
/// else its file name), else the parent file.
fn naming_location(root: &Path, parent: &str, target: &str) -> String {
    let parent_file = root.join(parent);
    let folder = Path::new(parent).parent().unwrap_or(Path::new(""));
    let written = Path::new(target).strip_prefix(folder).ok().and_then(Path::to_str).unwrap_or(target);
    let name = Path::new(target).file_name().and_then(|n| n.to_str()).unwrap_or(target);
    let text = std::fs::read_to_string(&parent_file).unwrap_or_default();
    let find = |needle: &str| {
        text.lines().enumerate().find_map(|(i, line)| {
            // A target written `./x.yaml` is pointed at from its `./`.
            line.find(needle).map(|col| (i + 1, if line[..col].ends_with("./") { col - 1 } else { col + 1 }))
        })
    };
    let at = find(written).or_else(|| find(name));
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
    let name = file.display().to_string();
    // The file is read once, for its own verdicts and to place the errors following found.
    let (mut verdicts, parsed) = match &text {
        Some(text) => match ingest::confined(|| {
            let parsed = FileText::new(text);
            (verdicts_of(&name, &parsed), parsed)
        }) {
            Ok((verdicts, parsed)) => (verdicts, Some(parsed)),
            Err(error) => (vec![Verdict::failed(&name, 0, (1, 1), error)], None),
        },
        None if outcome.read => (validate_file(file), None),
        None => (Vec::new(), None),
    };
    for error in &outcome.errors {
        let index = error.index.unwrap_or(0);
        match verdicts.iter_mut().find(|v| v.index == index) {
            Some(verdict) if verdict.error.is_none() => {
                if let Some(parsed) = &parsed {
                    (verdict.line, verdict.column, verdict.hint) = parsed.position(index, &error.message);
                }
                verdict.error = Some(error.message.clone());
            }
            // A document with an error of its own: the one found by following is added to it.
            Some(verdict) => {
                if let Some(earlier) = verdict.error.as_mut().filter(|e| !e.contains(&error.message)) {
                    earlier.push_str("; ");
                    earlier.push_str(&error.message);
                }
            }
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
    ingest::confined(|| verdicts_of(file, &FileText::new(text)))
        .unwrap_or_else(|error| vec![Verdict::failed(file, 0, (1, 1), error)])
}

fn verdicts_of(file: &str, parsed: &FileText<'_>) -> Vec<Verdict> {
    parsed
        .documents
        .iter()
        .map(|doc| {
            let (entity_ref, error) = match &doc.parsed {
                Err(error) => (None, Some(error.clone())),
                Ok(value) => match ingest::check_document(value.clone(), Path::new(file)) {
                    Ok(entity) if entity.entity_ref.kind == "template" => {
                        let problems = template_sources::check_parameters(&entity.body);
                        (Some(entity.entity_ref.to_string()), (!problems.is_empty()).then(|| problems.join("; ")))
                    }
                    Ok(entity) => (Some(entity.entity_ref.to_string()), None),
                    Err(error) => (lenient_ref(value), Some(error)),
                },
            };
            let (line, column, hint) = if let Some(error) = &error {
                parsed.position(doc.index, error)
            } else {
                let (line, column) = parsed.start(doc.index);
                (line, column, None)
            };
            Verdict { file: file.to_owned(), index: doc.index, line, column, entity_ref, error, hint }
        })
        .collect()
}

/// One file's text, read once: its documents, and where each one's fields are written.
struct FileText<'a> {
    text: &'a str,
    documents: Vec<parse::Document>,
    /// By document index, up to a syntax error (the reader goes on after one; this map stops).
    fields: Vec<FieldPositions>,
}

impl<'a> FileText<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, documents: parse::documents(text), fields: field_positions(text) }
    }

    fn document(&self, index: usize) -> Option<&parse::Document> {
        self.documents.iter().find(|doc| doc.index == index)
    }

    /// Where document `index` starts: its first line of content (past `---`, comments and
    /// directives), column 1.
    fn start(&self, index: usize) -> Position {
        let Some(first) = self.document(index).and_then(|doc| doc.line) else { return (1, 1) };
        let content = self.text.lines().enumerate().skip(first - 1).find(|(_, line)| {
            let line = line.trim_start();
            !(line.is_empty() || line.starts_with('#') || line.starts_with("---") || line.starts_with('%'))
        });
        (content.map_or(first, |(i, _)| i + 1), 1)
    }

    /// Where an error about document `index` points: a position a YAML error carries, else the
    /// field the message names, else the document's start; and a hint for a near miss.
    fn position(&self, index: usize, message: &str) -> (usize, usize, Option<String>) {
        // A placeholder's message may carry a position in the file it read, not in this one.
        if let Some((line, column)) = position_in_message(message).filter(|_| !message.starts_with("Placeholder")) {
            return (line, column, None);
        }
        let start = self.start(index);
        let Some(Ok(document)) = self.document(index).map(|doc| &doc.parsed) else {
            return (start.0, start.1, None);
        };
        let found = pinpoint::pinpoint(message, document);
        let at = self.fields(index).and_then(|fields| fields.locate(&found.path)).unwrap_or(start);
        (at.0, at.1, found.hint)
    }

    /// The field positions of document `index`; after a syntax error, read from the document's
    /// own lines.
    fn fields(&self, index: usize) -> Option<std::borrow::Cow<'_, FieldPositions>> {
        if let Some(fields) = self.fields.get(index) {
            return Some(std::borrow::Cow::Borrowed(fields));
        }
        let first = self.document(index)?.line?;
        let next = self.documents.iter().filter(|doc| doc.index > index).find_map(|doc| doc.line);
        let lines: Vec<&str> =
            self.text.lines().skip(first - 1).take(next.map_or(usize::MAX, |next| next - first)).collect();
        let fields = field_positions(&lines.join("\n")).into_iter().next()?;
        Some(std::borrow::Cow::Owned(fields.shifted(first - 1)))
    }
}

/// `… (line 3, column 7)` or `… at line 3, column 7: …`, as the YAML reader words them.
fn position_in_message(message: &str) -> Option<Position> {
    let rest = &message[message.find("line ")? + "line ".len()..];
    let (line, rest) = rest.split_once(", column ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((line.trim().parse().ok()?, column.parse().ok()?))
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
    fn positions_hold_after_a_header_comment_and_a_syntax_error() {
        let text = "# yaml-language-server: $schema=x\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: -x-\n---\nkey: [\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: -y-\n";
        let verdicts = validate_text("c.yaml", text);
        let at: Vec<(usize, usize, usize)> = verdicts.iter().map(|v| (v.index, v.line, v.column)).collect();
        assert_eq!(at[0], (0, 6, 3), "{verdicts:?}");
        assert_eq!(at[2], (2, 13, 3), "a document after a syntax error: {verdicts:?}");
    }

    #[test]
    fn ref_is_null_when_none_can_be_formed() {
        let verdicts = validate_text("c.yaml", "- a list\n");
        assert_eq!(verdicts[0].entity_ref, None);
        assert!(verdicts[0].error.is_some());
    }
}
