//! What a pass reads and what passes remember, kept apart: [`Context`] holds the configuration
//! and the clients every stage talks through, set up before the first pass and not changed
//! after (but for the shutdown flag); [`State`] holds what passes learn as they go (discovered
//! repositories, changed files, what was checked or logged, progress), each part behind its
//! own lock.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use super::discovered::Discovery;
use super::exit::EXIT_USAGE;
use crate::config::{Config, SourceKind};
use crate::reconcile::Reconciler;
use crate::source::watch::ChangedFiles;
use crate::store::Store;
use crate::telemetry::{LogMemory, Metrics, Progress};

/// What a sync needs, shared by every pass and cloned into every task; passes only read it.
#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub store: Store,
    pub metrics: Metrics,
    /// Set when `kubernetes` is configured: each pass also reconciles the source's objects.
    pub reconciler: Option<Arc<Reconciler>>,
    /// Set when `commit_statuses` is configured: each pass tells GitHub about its commit.
    pub statuses: Option<crate::notify::Statuses>,
    /// Set once, on shutdown; long blocking git work polls it.
    pub interrupt: Arc<AtomicBool>,
    /// What passes remember between them.
    pub state: Arc<State>,
}

/// What changes as passes run, apart from what the store keeps.
pub struct State {
    /// GitHub sources' clients and discovered repositories.
    pub discovery: Discovery,
    /// Files the watcher saw change, per local source.
    pub changed: HashMap<String, Arc<ChangedFiles>>,
    /// Source → the commit whose template sources were last checked by this process, so a
    /// pass at the same commit skips the check (kept in memory: remembering it must not be a
    /// write).
    pub templates_checked: Mutex<HashMap<String, String>>,
    /// Source → a commit whose catalog errors only a new commit can change (no contested
    /// entities, no remote placeholder reads), so a pass at that commit reads nothing again: a
    /// refused or hostile file costs its reading once per commit, not once per poll.
    pub settled: Mutex<HashMap<String, String>>,
    /// What each source is doing now, for the status API, a gauge and progress logs.
    pub progress: Progress,
    /// What was last logged per source: passes log what changed, not what they found again.
    /// Shared with the reconciler.
    pub log_memory: Arc<LogMemory>,
}

impl Context {
    /// Builds the shared context: resolves the database secret and opens the store lazily, so the
    /// daemon can start (and report not-ready) while the database is still down.
    pub fn open(config: Arc<Config>) -> Result<Self, ExitCode> {
        let url = config.database.resolve().map_err(|err| {
            eprintln!("rigger: database.url: {err}");
            ExitCode::from(EXIT_USAGE)
        })?;
        let store = Store::open_lazy_for(url.expose(), config.sync.concurrency).map_err(|err| {
            eprintln!("rigger: {err}");
            ExitCode::from(EXIT_USAGE)
        })?;
        let metrics = Metrics::new();
        metrics.init_sources(config.sources.iter().map(|s| s.name.as_str()));
        metrics
            .init_git(config.sources.iter().filter(|s| matches!(s.kind, SourceKind::Git(_))).map(|s| s.name.as_str()));
        metrics.init_local(
            config.sources.iter().filter(|s| matches!(s.kind, SourceKind::Local(_))).map(|s| s.name.as_str()),
        );
        if config.webhooks.as_ref().is_some_and(|w| w.github_secret.is_some()) {
            metrics.init_webhooks();
        }
        if config.kubernetes.is_some() {
            let health = crate::reconcile::health::Health::NAMES;
            metrics.init_reconcile(config.sources.iter().map(|s| s.name.as_str()), &health);
        }
        let locals = config.sources.iter().filter(|s| matches!(s.kind, SourceKind::Local(_))).map(|s| s.name.as_str());
        let state = Arc::new(State::new(locals, metrics.clone()));
        let reconciler = Reconciler::new(&config, store.clone(), metrics.clone(), Arc::clone(&state.log_memory));
        Ok(Self {
            interrupt: Arc::new(AtomicBool::new(false)),
            statuses: None,
            reconciler: reconciler.map(Arc::new),
            state,
            config,
            store,
            metrics,
        })
    }
}

impl State {
    /// Nothing remembered yet; `local_sources` are the sources the watcher reports on.
    pub fn new<'a>(local_sources: impl Iterator<Item = &'a str>, metrics: Metrics) -> Self {
        Self {
            discovery: Discovery::default(),
            changed: local_sources.map(|name| (name.to_owned(), Arc::default())).collect(),
            templates_checked: Mutex::default(),
            settled: Mutex::default(),
            progress: Progress::new(metrics),
            log_memory: Arc::default(),
        }
    }
}
