//! What the HTTP side reads: the store, the metrics, and readiness flags the app sets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::store::Store;
use crate::telemetry::Metrics;

#[derive(Clone)]
pub struct State {
    pub store: Store,
    pub metrics: Metrics,
    pub readiness: Arc<Readiness>,
    pub facets: Arc<FacetCache>,
    /// What each source is doing now.
    pub progress: crate::telemetry::Progress,
    /// Set when `webhooks.github` is configured.
    pub webhook: Option<Arc<super::GithubWebhook>>,
    /// The queue the API's changes go to.
    pub writes: Arc<super::Writes>,
    /// Who is calling, and what they may do.
    pub auth: Arc<super::Auth>,
    /// Where each git source's repository lives, for links to commits and files.
    pub repositories: Arc<Repositories>,
}

/// The repositories git sources track: configured ones, and those the organisations'
/// discovery keeps (refreshed by each discovery).
#[derive(Default)]
pub struct Repositories {
    pub configured: Vec<super::Tracked>,
    pub discovered: Arc<std::sync::RwLock<Vec<super::Tracked>>>,
}

impl Repositories {
    /// The repository's web address (`https://github.com/acme/platform`), for a git source.
    pub fn web_url(&self, source: &str) -> Option<String> {
        if let Some(tracked) = self.configured.iter().find(|t| t.source == source) {
            return Some(tracked.url.web_url());
        }
        let discovered = self.discovered.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        discovered.iter().find(|t| t.source == source).map(|t| t.url.web_url())
    }
}

/// Facet counts by (facet, filter), valid for one catalog generation. Catalog pages ask for the
/// same facets over and over; between sync passes that change entities the answer is the same.
#[derive(Debug, Default)]
pub struct FacetCache {
    entries: Mutex<HashMap<FacetKey, (i64, Counts)>>,
}

/// `(facet, filter)`.
type FacetKey = (String, String);
/// `(value, entities)` pairs, in value order.
type Counts = Vec<(String, i64)>;

/// Distinct (facet, filter) pairs kept; beyond it the cache starts over (it refills cheaply).
const FACET_CACHE_ENTRIES: usize = 512;

impl FacetCache {
    pub fn get(&self, facet: &str, filter: &str, generation: i64) -> Option<Counts> {
        let entries = self.entries.lock().ok()?;
        entries.get(&(facet.to_owned(), filter.to_owned())).filter(|(g, _)| *g == generation).map(|(_, v)| v.clone())
    }

    pub fn put(&self, facet: &str, filter: &str, generation: i64, counts: Counts) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= FACET_CACHE_ENTRIES {
                entries.clear();
            }
            entries.insert((facet.to_owned(), filter.to_owned()), (generation, counts));
        }
    }
}

/// Facts readiness depends on that only the app knows.
#[derive(Debug, Default)]
pub struct Readiness {
    migrated: AtomicBool,
    /// Wakes requests waiting for the schema (see [`Readiness::migrated_within`]).
    migrated_signal: tokio::sync::Notify,
    first_pass_done: AtomicBool,
    /// A `kubernetes` section is configured: `/readyz` reports the API server too.
    cluster_configured: AtomicBool,
    /// The configured sources, so `/readyz` can name those that have not synced yet.
    sources: Mutex<Vec<String>>,
    /// The last store check (`None` before the first): `/readyz` reads it and never waits on
    /// the store itself.
    store: Mutex<Option<StoreCheck>>,
}

#[derive(Debug, Clone)]
struct StoreCheck {
    result: Result<(), String>,
    at: std::time::Instant,
}

/// A store check older than this is no evidence: the checker itself is stuck.
const STORE_CHECK_STALE: std::time::Duration = std::time::Duration::from_secs(15);

impl Readiness {
    pub fn set_migrated(&self) {
        self.migrated.store(true, Ordering::Release);
        self.migrated_signal.notify_waiters();
    }

    /// Whether the schema is in place, waiting up to `limit` for the migrations to finish: a
    /// request that arrives while the agent is starting is answered once the store can take
    /// it, rather than refused.
    pub async fn migrated_within(&self, limit: std::time::Duration) -> bool {
        // Created before the check: `notify_waiters` wakes it even if it is not polled yet.
        let signal = self.migrated_signal.notified();
        if self.migrated() {
            return true;
        }
        tokio::time::timeout(limit, signal).await.is_ok() || self.migrated()
    }

    pub fn set_first_pass_done(&self) {
        self.first_pass_done.store(true, Ordering::Release);
    }

    pub fn set_cluster_configured(&self) {
        self.cluster_configured.store(true, Ordering::Release);
    }

    pub fn record_store(&self, result: Result<(), String>) {
        if let Ok(mut store) = self.store.lock() {
            *store = Some(StoreCheck { result, at: std::time::Instant::now() });
        }
    }

    /// The store as last checked: `Err` when the check failed, is missing, or is stale.
    pub fn store(&self) -> Result<(), String> {
        let check = self.store.lock().ok().and_then(|s| s.clone());
        match check {
            None => Err("not checked yet".to_owned()),
            Some(check) if check.at.elapsed() > STORE_CHECK_STALE => {
                Err(format!("no check finished for {}s", check.at.elapsed().as_secs()))
            }
            Some(check) => check.result,
        }
    }

    pub fn set_sources(&self, names: Vec<String>) {
        if let Ok(mut sources) = self.sources.lock() {
            *sources = names;
        }
    }

    pub fn sources(&self) -> Vec<String> {
        self.sources.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn cluster_configured(&self) -> bool {
        self.cluster_configured.load(Ordering::Acquire)
    }

    pub fn migrated(&self) -> bool {
        self.migrated.load(Ordering::Acquire)
    }

    pub fn first_pass_done(&self) -> bool {
        self.first_pass_done.load(Ordering::Acquire)
    }
}
