//! Walks a snapshot from its root catalog file through `Location` targets and turns every
//! document into an entity or an error. Pure: the only input is the snapshot's file tree.

use std::collections::{HashSet, VecDeque};

use serde_json::{Map, Value};

use super::entity_ref::EntityRef;
use super::location::{derived_annotations, location_ref, resolve_target, Reached};
use super::placeholders::{self, Reads, Remote};
use super::relations::{self, Relation};
use super::{parse, validate};
use crate::source::{Origin, Snapshot};

pub const ANNOTATION_LOCATION: &str = "backstage.io/managed-by-location";
pub const ANNOTATION_ORIGIN_LOCATION: &str = "backstage.io/managed-by-origin-location";

/// Bounds on a walk, so a hostile or mistaken repository cannot make it unbounded.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `Location` hops allowed below the root file.
    pub max_depth: u32,
    /// Largest catalog file read, in bytes.
    pub max_file_bytes: usize,
    /// Documents read from one file.
    pub max_documents: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // 10 hops is far beyond real trees; 8 MiB holds a 20,000-entity organisation file twice.
        Self { max_depth: 10, max_file_bytes: 8 * 1024 * 1024, max_documents: crate::yaml::DEFAULT_MAX_DOCUMENTS }
    }
}

/// An entity as ingested: validated, namespace defaulted, location annotations set, with the
/// relations it declares.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    pub entity_ref: EntityRef,
    pub body: Value,
    pub relations: Vec<Relation>,
}

/// A problem with one file or one document of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentError {
    /// The document's position in the file; `None` when the whole file failed.
    pub index: Option<usize>,
    /// The 1-based line the document starts on, when known (for logs).
    pub line: Option<usize>,
    pub message: String,
}

/// What one catalog file produced. (Its flags are independent facts, not a state machine.)
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone)]
pub struct LocationOutcome {
    /// The location reference, e.g. `url:https://github.com/o/r/blob/main/catalog-info.yaml`.
    pub key: String,
    /// Repository-relative path of the file.
    pub path: String,
    pub entities: Vec<Entity>,
    pub errors: Vec<DocumentError>,
    /// False when the file could not be read at all: nothing is known about its entities.
    pub read: bool,
    /// Documents that failed but name their entity: its last good version stays, with the error.
    pub failing: Vec<(EntityRef, String)>,
    /// A document failed without naming its entity, so the file's entity list is not known.
    pub unattributed: bool,
    /// A failure hides which files a Location leads to (bad Location document or target).
    pub hides_locations: bool,
    /// The location whose `Location` led here: `Some("")` for the root file, `None` when not
    /// known (a file re-read on its own).
    pub parent: Option<String>,
    /// Reading the file panicked: a bug, confined to this file (which then fails alone).
    pub panicked: bool,
}

impl LocationOutcome {
    /// An outcome for a file, before anything is known about it.
    pub fn new(key: String, path: String) -> Self {
        Self {
            key,
            path,
            entities: Vec::new(),
            errors: Vec::new(),
            read: false,
            failing: Vec::new(),
            unattributed: false,
            hides_locations: false,
            parent: None,
            panicked: false,
        }
    }

    /// No errors at all.
    pub fn is_clean(&self) -> bool {
        self.read && self.errors.is_empty()
    }

    /// Every entity the file declares is known (valid, or failing with its ref), so one that is
    /// missing really was removed.
    pub fn declares_all(&self) -> bool {
        self.read && !self.unattributed
    }

    /// Every file this one leads to is known.
    pub fn leads_are_known(&self) -> bool {
        self.declares_all() && !self.hides_locations
    }
}

/// Everything one snapshot produced, one entry per catalog file reached.
#[derive(Debug, Clone)]
pub struct Ingest {
    pub locations: Vec<LocationOutcome>,
}

impl Ingest {
    /// True when every file was read and every Location understood, so the set of locations
    /// reached is known to be complete (and an unreached stored location is really gone).
    pub fn is_complete(&self) -> bool {
        self.locations.iter().all(LocationOutcome::leads_are_known)
    }
}

struct Pending {
    path: String,
    depth: u32,
    reached: Reached,
    /// From a Location with `presence: optional`: a missing file is no error.
    optional: bool,
    /// The key of the file whose Location led here; empty for the root.
    parent: String,
}

/// A Location target after resolution: a repository path or a glob pattern over paths.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    path: String,
    optional: bool,
}

/// Reads the snapshot's tree, starting at its root catalog file.
pub fn ingest(snapshot: &Snapshot, limits: Limits) -> Ingest {
    ingest_with(snapshot, limits, None)
}

/// [`ingest`], with remote placeholder reads on the hosts `remote` allows.
pub fn ingest_with(snapshot: &Snapshot, limits: Limits, remote: Option<Remote<'_>>) -> Ingest {
    let mut locations = Vec::new();
    let _ = ingest_each(snapshot, limits, remote, |outcome| {
        locations.push(outcome);
        true
    });
    Ingest { locations }
}

/// Walks the snapshot and hands each file's outcome to `emit` as soon as it is read, so a
/// caller can write it and let it go: memory stays bounded by the largest file, not the
/// repository. `emit` returns false to stop the walk.
///
/// Returns the further parents found once a file was read: `(its key, the key of another
/// location whose Location also leads to it)` — an outcome names only the first.
pub fn ingest_each(
    snapshot: &Snapshot,
    limits: Limits,
    remote: Option<Remote<'_>>,
    mut emit: impl FnMut(LocationOutcome) -> bool,
) -> Vec<(String, String)> {
    let origin_key = location_ref(&snapshot.origin, &snapshot.catalog_path, Reached::Root);
    let root = Pending {
        path: snapshot.catalog_path.clone(),
        depth: 0,
        reached: Reached::Root,
        optional: false,
        parent: String::new(),
    };
    let mut queue = VecDeque::from([root]);
    let mut visited = HashSet::new();
    let mut keys: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut further_parents = Vec::new();
    let mut listing = Listing::default();
    while let Some(pending) = queue.pop_front() {
        // A file reached twice (a diamond or a cycle) is read once; that is what bounds cycles.
        if !visited.insert(pending.path.clone()) {
            if let Some(key) = keys.get(&pending.path).filter(|key| **key != pending.parent) {
                further_parents.push((key.clone(), pending.parent));
            }
            continue;
        }
        if pending.optional && matches!(snapshot.files.read(&pending.path, limits.max_file_bytes), Ok(None)) {
            continue;
        }
        let budget = placeholders::Budget::for_file(limits.max_file_bytes);
        let file = FileContext {
            origin: &snapshot.origin,
            origin_key: &origin_key,
            key: location_ref(&snapshot.origin, &pending.path, pending.reached),
            path: &pending.path,
            reads: Reads::Files {
                tree: snapshot.files.as_ref(),
                max_bytes: limits.max_file_bytes,
                remote,
                budget: &budget,
            },
        };
        let (mut outcome, targets) = read_confined(snapshot, &file, limits);
        outcome.parent = Some(pending.parent.clone());
        keys.insert(pending.path.clone(), file.key.clone());
        for (index, target) in targets {
            if pending.depth + 1 > limits.max_depth {
                let message =
                    format!("Location target {} exceeds the maximum depth of {}", target.path, limits.max_depth);
                outcome.errors.push(DocumentError { index: Some(index), line: None, message });
                outcome.hides_locations = true;
                continue;
            }
            match listing.expand(snapshot, &target) {
                Ok(paths) => queue.extend(paths.into_iter().map(|path| Pending {
                    path,
                    depth: pending.depth + 1,
                    reached: Reached::Target,
                    optional: target.optional,
                    parent: file.key.clone(),
                })),
                Err(message) => {
                    outcome.errors.push(DocumentError { index: Some(index), line: None, message });
                    outcome.hides_locations = true;
                }
            }
        }
        if !emit(outcome) {
            return further_parents;
        }
    }
    further_parents
}

/// Re-reads only `paths`, each as the walk would read it (same location key, same origin), for a
/// local directory whose watcher saw just these files change. `None` when that cannot stand in
/// for a walk: a file is gone, or declares `Location` targets (the tree's shape may have
/// changed). The caller also checks the files were reached by the last walk.
pub fn ingest_paths(snapshot: &Snapshot, paths: &[String], limits: Limits) -> Option<Vec<LocationOutcome>> {
    let origin_key = location_ref(&snapshot.origin, &snapshot.catalog_path, Reached::Root);
    let mut outcomes = Vec::new();
    for path in paths {
        if !matches!(snapshot.files.read(path, limits.max_file_bytes), Ok(Some(_))) {
            return None;
        }
        let reached = if *path == snapshot.catalog_path { Reached::Root } else { Reached::Target };
        let budget = placeholders::Budget::for_file(limits.max_file_bytes);
        let file = FileContext {
            origin: &snapshot.origin,
            origin_key: &origin_key,
            key: location_ref(&snapshot.origin, path, reached),
            path,
            reads: Reads::Files {
                tree: snapshot.files.as_ref(),
                max_bytes: limits.max_file_bytes,
                remote: None,
                budget: &budget,
            },
        };
        let (outcome, targets) = read_confined(snapshot, &file, limits);
        let declares_locations = outcome.entities.iter().any(|e| e.entity_ref.kind == "location");
        if !targets.is_empty() || outcome.hides_locations || declares_locations {
            return None;
        }
        outcomes.push(outcome);
    }
    Some(outcomes)
}

/// The snapshot's file list, read once and only if a glob target needs it.
#[derive(Default)]
struct Listing(Option<Vec<String>>);

impl Listing {
    /// The paths a target names: itself, or every file its glob matches (none is no error,
    /// as for Backstage's URL reader search).
    fn expand(&mut self, snapshot: &Snapshot, target: &Target) -> Result<Vec<String>, String> {
        if !target.path.contains(['*', '?', '[', '{']) {
            return Ok(vec![target.path.clone()]);
        }
        let glob = globset::GlobBuilder::new(&target.path)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("Location target {} is not a valid glob: {e}", target.path))?
            .compile_matcher();
        if self.0.is_none() {
            self.0 = Some(snapshot.files.list().map_err(|e| e.to_string())?);
        }
        Ok(self.0.iter().flatten().filter(|path| glob.is_match(path.as_str())).cloned().collect())
    }
}

/// Checks one document the way the agent would if it read it from `path` of a plain
/// directory, without reading anything else (`rigger validate --no-follow`).
pub fn check_document(value: Value, path: &std::path::Path) -> Result<Entity, String> {
    let root = path.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let origin = Origin::Local { root };
    let key = location_ref(&origin, &name, Reached::Root);
    let file = FileContext { origin: &origin, origin_key: &key, key: key.clone(), path: &name, reads: Reads::FormOnly };
    entity_from(value, &file)
}

/// An entity read from the cluster rather than a file (a Crossplane claim or a labelled
/// workload, mapped by the reconcile stage): the same validation and relations as a document,
/// managed by the location `key` that stands for the cluster.
pub fn cluster_entity(mut value: Value, key: &str) -> Result<Entity, String> {
    let entity_ref = validate::envelope(&mut value)?;
    let metadata = value.get_mut("metadata").and_then(Value::as_object_mut).ok_or("metadata must have a value")?;
    let annotations = metadata.entry("annotations").or_insert_with(|| Value::Object(Map::new()));
    let annotations = annotations.as_object_mut().ok_or("metadata.annotations must be a mapping")?;
    annotations.insert(ANNOTATION_LOCATION.into(), Value::String(key.to_owned()));
    annotations.insert(ANNOTATION_ORIGIN_LOCATION.into(), Value::String(key.to_owned()));
    relations::sort_arrays(&mut value);
    validate::policies_and_kind(&mut value, &entity_ref)?;
    let relations = relations::declared(&value, &entity_ref)?;
    Ok(Entity { entity_ref, body: value, relations })
}

struct FileContext<'a> {
    origin: &'a Origin,
    origin_key: &'a str,
    key: String,
    path: &'a str,
    /// What placeholders may read.
    reads: Reads<'a>,
}

/// [`read_location`] behind a boundary: a panic while reading untrusted input is a bug, and it
/// must cost only this file — nothing of it is written or deleted, and its error says so.
fn read_confined(
    snapshot: &Snapshot,
    file: &FileContext<'_>,
    limits: Limits,
) -> (LocationOutcome, Vec<(usize, Target)>) {
    match confined(|| read_location(snapshot, file, limits)) {
        Ok(read) => read,
        Err(message) => {
            let mut outcome = LocationOutcome::new(file.key.clone(), file.path.to_owned());
            outcome.panicked = true;
            outcome.errors.push(DocumentError { index: None, line: None, message });
            (outcome, Vec::new())
        }
    }
}

/// Runs `work`, turning a panic into an error message.
pub fn confined<T>(work: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).map_err(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        format!("reading this file failed unexpectedly (a bug in Rigger, please report it): {what}")
    })
}

/// Reads one catalog file. Returns its outcome and the `Location` targets it declares, each with
/// the index of the declaring document.
fn read_location(
    snapshot: &Snapshot,
    file: &FileContext<'_>,
    limits: Limits,
) -> (LocationOutcome, Vec<(usize, Target)>) {
    let mut outcome = LocationOutcome::new(file.key.clone(), file.path.to_owned());
    let text = match read_text(snapshot, file.path, limits) {
        Ok(text) => text,
        Err(message) => {
            outcome.errors.push(DocumentError { index: None, line: None, message });
            return (outcome, Vec::new());
        }
    };
    outcome.read = true;
    let mut targets = Vec::new();
    let mut seen = HashSet::new();
    let read_limits = crate::yaml::ReadLimits { max_documents: limits.max_documents };
    for doc in parse::documents_with(&text, read_limits) {
        let named = doc.parsed.as_ref().ok().and_then(validate::attributable);
        match doc.parsed.and_then(|value| entity_and_targets(value, file)) {
            Ok((entity, declared)) if seen.insert(entity.entity_ref.clone()) => {
                for target in declared {
                    match target {
                        Ok(target) => targets.push((doc.index, target)),
                        Err(message) => {
                            outcome.errors.push(DocumentError { index: Some(doc.index), line: doc.line, message });
                            outcome.hides_locations = true;
                        }
                    }
                }
                outcome.entities.push(entity);
            }
            Ok((entity, _)) => {
                // The duplicate's own targets are dropped, so the walk below it is not known.
                outcome.hides_locations = true;
                outcome.errors.push(DocumentError {
                    index: Some(doc.index),
                    line: doc.line,
                    message: format!("duplicate entity {} in the same file", entity.entity_ref),
                });
            }
            Err(message) => record_failure(&mut outcome, (doc.index, doc.line), named, message),
        }
    }
    (outcome, targets)
}

/// A failing document: on its entity when it names one (the last good version stays), else on
/// the file as a whole.
fn record_failure(
    outcome: &mut LocationOutcome,
    (index, line): (usize, Option<usize>),
    named: Option<EntityRef>,
    message: String,
) {
    if let Some(entity_ref) = named {
        outcome.hides_locations |= entity_ref.kind == "location";
        outcome.failing.push((entity_ref, message.clone()));
    } else {
        outcome.unattributed = true;
        outcome.hides_locations = true;
    }
    outcome.errors.push(DocumentError { index: Some(index), line, message });
}

fn read_text(snapshot: &Snapshot, path: &str, limits: Limits) -> Result<String, String> {
    let bytes = match snapshot.files.read(path, limits.max_file_bytes) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Err(format!("not found in {} at this revision", snapshot.repo)),
        Err(err) => return Err(err.to_string()),
    };
    String::from_utf8(bytes).map_err(|_| "file is not valid UTF-8".to_owned())
}

type Targets = Vec<Result<Target, String>>;

/// One document through Backstage's processing order: envelope, location annotations,
/// pre-processing, policies and kind validation, then relations.
fn entity_from(mut value: Value, file: &FileContext<'_>) -> Result<Entity, String> {
    let entity_ref = validate::envelope(&mut value)?;
    annotate(&mut value, file)?;
    placeholders::resolve(&mut value, file.path, &file.reads)?;
    relations::sort_arrays(&mut value);
    validate::policies_and_kind(&mut value, &entity_ref)?;
    let relations = relations::declared(&value, &entity_ref)?;
    Ok(Entity { entity_ref, body: value, relations })
}

/// An entity plus, for a Location, the targets it asks us to read.
fn entity_and_targets(value: Value, file: &FileContext<'_>) -> Result<(Entity, Targets), String> {
    let entity = entity_from(value, file)?;
    let targets = if entity.entity_ref.kind == "location" { location_targets(&entity.body, file)? } else { Vec::new() };
    Ok((entity, targets))
}

/// Stamps the managed-by annotations (always ours) and the derived URL annotations (authors'
/// values win, as in Backstage's AnnotateLocationEntityProcessor).
fn annotate(value: &mut Value, file: &FileContext<'_>) -> Result<(), String> {
    let metadata = value.get_mut("metadata").and_then(Value::as_object_mut).ok_or("metadata must have a value")?;
    let annotations = metadata.entry("annotations").or_insert_with(|| Value::Object(Map::new()));
    let annotations =
        annotations.as_object_mut().ok_or("\"metadata.annotations\" is not valid; expected a mapping of strings")?;
    for (key, value) in derived_annotations(file.origin, file.path, &file.key) {
        annotations.entry(key).or_insert(Value::String(value));
    }
    annotations.insert(ANNOTATION_LOCATION.into(), Value::String(file.key.clone()));
    annotations.insert(ANNOTATION_ORIGIN_LOCATION.into(), Value::String(file.origin_key.to_owned()));
    Ok(())
}

/// `spec.target` and `spec.targets` of a Location, resolved inside the repository.
fn location_targets(value: &Value, file: &FileContext<'_>) -> Result<Targets, String> {
    let spec = value.get("spec").and_then(Value::as_object);
    let Some(spec) = spec else { return Ok(Vec::new()) };
    let expected_type = match file.origin {
        Origin::Git { .. } => "url",
        Origin::Local { .. } => "file",
    };
    if let Some(kind) = spec.get("type").and_then(Value::as_str) {
        if kind != expected_type {
            return Err(format!(
                "Location spec.type {kind:?} is not supported here; this source reads {expected_type:?} locations"
            ));
        }
    }
    let mut raw = Vec::new();
    match spec.get("target") {
        None => {}
        Some(Value::String(t)) => raw.push(t.clone()),
        Some(_) => return Err("\"spec.target\" is not valid; expected a string".to_owned()),
    }
    match spec.get("targets") {
        None => {}
        Some(Value::Array(items)) => {
            for item in items {
                let t = item.as_str().ok_or("\"spec.targets\" is not valid; expected a list of strings")?;
                raw.push(t.to_owned());
            }
        }
        Some(_) => return Err("\"spec.targets\" is not valid; expected a list of strings".to_owned()),
    }
    let optional = spec.get("presence").and_then(Value::as_str) == Some("optional");
    Ok(raw.iter().map(|t| resolve_target(file.path, t).map(|path| Target { path, optional })).collect())
}

#[cfg(test)]
mod tests;
