//! File-change triggers for local directories. Only events that change content count (create,
//! modify, remove): reading the files during a sync must not trigger the next sync. Bursts are
//! coalesced by the caller's debounce (see `app::daemon`).

use std::path::Path;
use std::sync::Arc;

use notify::{Event, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::Notify;

/// Keeps the watch alive; dropping it stops watching.
pub struct Watcher {
    _inner: RecommendedWatcher,
}

/// Watches `path` recursively and wakes `trigger` on every content change.
pub fn watch(path: &Path, trigger: Arc<Notify>) -> Result<Watcher, notify::Error> {
    let mut inner = notify::recommended_watcher(move |result: notify::Result<Event>| {
        if let Ok(event) = result {
            if changes_content(&event) {
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
