//! What each source is doing right now — queued, fetching, reading and writing its catalog
//! files, settling, reconciling — with counts so far, for `/api/rigger/sources`, the
//! `rigger_sources_in_state` gauge and a progress line in the log while a pass runs long.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::info;

use super::Metrics;

/// The states a source passes through; a source not in any of them is idle.
pub const STATES: [&str; 5] = ["queued", "fetching", "writing", "settling", "reconciling"];

/// A pass that runs longer than this logs its progress, at most this often.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// One source's progress.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceProgress {
    pub state: &'static str,
    /// When the source entered this state (Unix ms).
    pub since: i64,
    /// Catalog files read and written so far in this pass.
    pub files: u64,
    /// Entities written (added, updated or deleted) so far in this pass.
    pub entities: u64,
    #[serde(skip)]
    started: Instant,
    #[serde(skip)]
    logged: Instant,
}

#[derive(Clone, Default)]
pub struct Progress {
    sources: Arc<Mutex<HashMap<String, SourceProgress>>>,
    metrics: Option<Metrics>,
}

impl Progress {
    pub fn new(metrics: Metrics) -> Self {
        for state in STATES {
            metrics.sources_in_state.with_label_values(&[state]).set(0);
        }
        Self { sources: Arc::default(), metrics: Some(metrics) }
    }

    fn sources(&self) -> std::sync::MutexGuard<'_, HashMap<String, SourceProgress>> {
        self.sources.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The source enters `state` (one of [`STATES`]); counts carry on within a pass and start
    /// over when it is queued again.
    pub fn enter(&self, source: &str, state: &'static str) {
        let now = Instant::now();
        let mut sources = self.sources();
        let mut entry =
            SourceProgress { state, since: super::now_millis(), files: 0, entities: 0, started: now, logged: now };
        if let Some(previous) = sources.get(source).filter(|_| state != "queued") {
            (entry.files, entry.entities, entry.started, entry.logged) =
                (previous.files, previous.entities, previous.started, previous.logged);
        }
        sources.insert(source.to_owned(), entry);
        self.count(&sources);
    }

    /// The source's pass is over.
    pub fn leave(&self, source: &str) {
        let mut sources = self.sources();
        if let Some(done) = sources.remove(source) {
            if done.started.elapsed() >= LOG_EVERY {
                info!(
                    source,
                    files = done.files,
                    entities = done.entities,
                    seconds = done.started.elapsed().as_secs(),
                    "pass finished"
                );
            }
        }
        self.count(&sources);
    }

    /// One more catalog file done, with `entities` entities written; logs now and then when the
    /// pass runs long.
    pub fn advance(&self, source: &str, entities: u64) {
        let mut sources = self.sources();
        let Some(entry) = sources.get_mut(source) else { return };
        entry.files += 1;
        entry.entities += entities;
        if entry.started.elapsed() >= LOG_EVERY && entry.logged.elapsed() >= LOG_EVERY {
            entry.logged = Instant::now();
            info!(source = %source, state = %entry.state, files = entry.files, entities = entry.entities, "pass in progress");
        }
    }

    /// Marks the source idle when the returned guard is dropped, however the pass ends.
    pub fn pass<'a>(&'a self, source: &'a str) -> PassGuard<'a> {
        PassGuard { progress: self, source }
    }

    /// Every source that is not idle, by name.
    pub fn snapshot(&self) -> HashMap<String, SourceProgress> {
        self.sources().clone()
    }

    fn count(&self, sources: &HashMap<String, SourceProgress>) {
        let Some(metrics) = &self.metrics else { return };
        for state in STATES {
            let n = sources.values().filter(|p| p.state == state).count();
            metrics.sources_in_state.with_label_values(&[state]).set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}

/// Leaves the source idle when dropped.
pub struct PassGuard<'a> {
    progress: &'a Progress,
    source: &'a str,
}

impl Drop for PassGuard<'_> {
    fn drop(&mut self) {
        self.progress.leave(self.source);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_is_followed_from_queued_to_idle() {
        let metrics = Metrics::new();
        let progress = Progress::new(metrics.clone());
        let gauge = |state| metrics.sources_in_state.with_label_values(&[state]).get();
        progress.enter("a", "queued");
        progress.enter("b", "queued");
        assert_eq!(gauge("queued"), 2);
        progress.enter("a", "writing");
        progress.advance("a", 10);
        progress.advance("a", 5);
        let a = &progress.snapshot()["a"];
        assert_eq!((a.state, a.files, a.entities), ("writing", 2, 15));
        progress.enter("a", "settling");
        assert_eq!(progress.snapshot()["a"].entities, 15, "counts carry on within the pass");
        progress.leave("a");
        assert!(!progress.snapshot().contains_key("a"));
        assert_eq!((gauge("queued"), gauge("writing"), gauge("settling")), (1, 0, 0));
        progress.enter("a", "queued");
        assert_eq!(progress.snapshot()["a"].files, 0, "a new pass starts over");
    }
}
