//! File-change triggers for local directories: notify, debounced so that an editor's burst of
//! writes (or git-sync's symlink swap) becomes one rescan.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use notify_debouncer_mini::{new_debouncer, notify::RecursiveMode, DebounceEventResult, Debouncer};
use tokio::sync::Notify;

/// Long enough to coalesce a save or a checkout, short enough to feel immediate.
const DEBOUNCE: Duration = Duration::from_millis(500);

/// Keeps the watch alive; dropping it stops watching.
pub struct Watcher {
    _debouncer: Debouncer<notify_debouncer_mini::notify::RecommendedWatcher>,
}

/// Watches `path` recursively and wakes `trigger` after each debounced burst of changes.
pub fn watch(path: &Path, trigger: Arc<Notify>) -> Result<Watcher, notify_debouncer_mini::notify::Error> {
    let mut debouncer = new_debouncer(DEBOUNCE, move |result: DebounceEventResult| {
        if result.is_ok() {
            trigger.notify_one();
        }
    })?;
    debouncer.watcher().watch(path, RecursiveMode::Recursive)?;
    Ok(Watcher { _debouncer: debouncer })
}
