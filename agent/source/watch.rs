//! File-change triggers for local directories. Only events that change content count (create,
//! modify, remove): reading the files during a sync must not trigger the next sync. Bursts are
//! coalesced by the caller's debounce (see `app::daemon::triggers`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use notify::{Event, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::Notify;

/// Keeps the watch alive; dropping it stops watching.
pub struct Watcher {
    _inner: RecommendedWatcher,
}

/// The files that changed since the last pass took them, relative to the watched directory.
#[derive(Debug, Default)]
pub struct ChangedFiles {
    inner: Mutex<Changed>,
}

#[derive(Debug, Default)]
struct Changed {
    paths: BTreeSet<String>,
    /// Something changed that cannot be named (an event without a path under the root).
    unknown: bool,
}

impl ChangedFiles {
    fn note(&self, roots: &[PathBuf], event: &Event) {
        let mut changed = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if event.paths.is_empty() {
            changed.unknown = true;
        }
        for path in &event.paths {
            match roots.iter().find_map(|root| path.strip_prefix(root).ok()) {
                Some(relative) => {
                    let parts: Vec<String> =
                        relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
                    changed.paths.insert(parts.join("/"));
                }
                None => changed.unknown = true,
            }
        }
    }

    /// The changed files, clearing them; `None` when nothing is known to have changed or when
    /// something unnamed did (then only a full rescan will do).
    pub fn take(&self) -> Option<Vec<String>> {
        let mut changed = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let taken = std::mem::take(&mut *changed);
        (!taken.unknown && !taken.paths.is_empty()).then(|| taken.paths.into_iter().collect())
    }
}

/// Watches `path` recursively, records what changed in `changed`, and wakes `trigger`.
pub fn watch(path: &Path, trigger: Arc<Notify>, changed: Arc<ChangedFiles>) -> Result<Watcher, notify::Error> {
    // Events may name files under the path as given or as resolved (symlinks): accept both.
    let roots: Vec<PathBuf> = [Some(path.to_path_buf()), path.canonicalize().ok()].into_iter().flatten().collect();
    let mut inner = notify::recommended_watcher(move |result: notify::Result<Event>| {
        if let Ok(event) = result {
            if changes_content(&event) {
                changed.note(&roots, &event);
                trigger.notify_one();
            }
        }
    })?;
    inner.watch(path, RecursiveMode::Recursive)?;
    Ok(Watcher { _inner: inner })
}

fn changes_content(event: &Event) -> bool {
    event.kind.is_create() || event.kind.is_modify() || event.kind.is_remove()
}
