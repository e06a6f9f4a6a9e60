//! `rigger run`: serve HTTP, feed the work queue from every trigger (jittered poll timers, file
//! changes of local sources, push webhooks, requests recorded before a restart), run its passes
//! on `sync.concurrency` workers, and stop within the grace period on SIGTERM/SIGINT.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn, Instrument};

use super::context::Context;
use super::pass::Pass;
use super::queue::{Outcome, WorkQueue};
use super::sync::{discover_source, refresh_entity_gauge, sync_source};
use crate::config::{SourceConfig, SourceKind};
use crate::serve::{self, GithubWebhook, Readiness};
use crate::source::github::discovery::repository_of;
use crate::source::watch;

/// Long enough to coalesce a save or a checkout, short enough to feel immediate.
const DEBOUNCE: Duration = Duration::from_millis(500);
/// Longest wait between attempts to reach the database at start-up.
const MAX_CONNECT_BACKOFF: Duration = Duration::from_secs(30);
/// How often recorded requests are re-read: picks up what another replica accepted but did not
/// get to (it died, or another replica held the source at the time).
const PENDING_CHECK: Duration = Duration::from_secs(15);

pub async fn run(mut ctx: Context) -> anyhow::Result<()> {
    let _writer = ctx.store.lock_single_writer()?;
    if ctx.config.commit_statuses.is_some() {
        // The worker outlives no one: it ends with the last sender, or with the process.
        let (statuses, worker) = crate::notify::Statuses::start(ctx.store.clone(), ctx.metrics.clone());
        ctx.metrics.init_commit_statuses();
        tokio::spawn(worker);
        ctx.statuses = Some(statuses);
    }
    for warning in ctx.config.warnings() {
        warn!("config: {warning}");
    }
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let readiness = Arc::new(Readiness::default());
    readiness.set_sources(ctx.config.sources.iter().map(|s| s.name.clone()).collect());
    let queue = WorkQueue::new(ctx.metrics.clone(), ctx.config.sync.retry, ctx.state.progress.clone());
    let webhook = github_webhook(&ctx, &queue)?;
    let state = serve::State {
        store: ctx.store.clone(),
        metrics: ctx.metrics.clone(),
        readiness: readiness.clone(),
        facets: Arc::default(),
        progress: ctx.state.progress.clone(),
        webhook,
        writes: api_writes(&ctx, &queue),
        auth: api_auth(&ctx)?,
        repositories: Arc::new(serve::Repositories {
            configured: ctx.config.sources.iter().filter_map(super::discovered::tracked).collect(),
            discovered: ctx.state.discovery.tracked.clone(),
        }),
    };
    let (addr, server) = serve::bind(&ctx.config.server, state, cancel.clone()).await?;
    info!(%addr, "serving health, metrics and the catalog API");
    let server = tokio::spawn(server);
    let probe = ctx.store.probe()?;
    tracker.spawn(serve::check_store(probe, readiness.clone(), ctx.metrics.clone(), STORE_CHECK, cancel.clone()));

    spawn_signal_handler(cancel.clone(), ctx.interrupt.clone());
    if !migrate_until_ready(&ctx, &cancel).await {
        return shut_down(tracker, server, &ctx).await;
    }
    readiness.set_migrated();

    let triggers: Vec<Arc<Notify>> = ctx.config.sources.iter().map(|_| Arc::new(Notify::new())).collect();
    let _watchers = start_watchers(&ctx, &triggers);
    if let Some(reconciler) = &ctx.reconciler {
        readiness.set_cluster_configured();
        tracker.spawn(cluster_checks(reconciler.clone(), cancel.clone()));
        let drift_queue = queue.clone();
        let request: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(move |source| drift_queue.request(source, "drift"));
        tracker.spawn(crate::reconcile::drift::watch(reconciler.clone(), request, cancel.clone()));
        if let Some(every) = reconciler.config().ingest_interval {
            tracker.spawn(cluster_ingest(ctx.clone(), reconciler.clone(), every, cancel.clone()));
        }
    }
    // The first pass goes through the queue like any other, so a push that arrives while a
    // thousand repositories wait for their first pass goes ahead of them; readiness waits for
    // every configured source (and every repository an organisation discovers) to have had one.
    let first = Arc::new(FirstPass::new(ctx.config.sources.iter().map(|s| s.name.clone()), readiness.clone()));
    for _ in 0..ctx.config.sync.concurrency {
        tracker.spawn(worker(ctx.clone(), queue.clone(), cancel.clone(), first.clone()));
    }
    for source in &ctx.config.sources {
        queue.request(&source.name, "startup");
    }
    for (source, trigger) in ctx.config.sources.iter().zip(triggers) {
        tracker.spawn(poll_timer(source.clone(), queue.clone(), cancel.clone()));
        tracker.spawn(on_change(source.name.clone(), trigger, queue.clone(), cancel.clone()));
    }
    tracker.spawn(recorded_requests(ctx.clone(), queue.clone(), cancel.clone()));
    // Every task so far runs until shutdown; the watchdog counts itself too.
    let loops = tracker.len() + 1;
    let server_handle = server.abort_handle();
    let serving = move || !server_handle.is_finished();
    tracker.spawn(super::systemd::watchdog(tracker.clone(), loops, serving, cancel.clone()));
    cancel.cancelled().await;
    shut_down(tracker, server, &ctx).await
}

/// How often readiness checks the store.
const STORE_CHECK: Duration = Duration::from_secs(2);

async fn shut_down(
    tracker: TaskTracker,
    server: tokio::task::JoinHandle<Result<(), serve::ServeError>>,
    ctx: &Context,
) -> anyhow::Result<()> {
    super::systemd::stopping();
    tracker.close();
    // One deadline for everything, so the whole shutdown is bounded by the grace period.
    let grace = ctx.config.sync.shutdown_grace;
    let deadline = tokio::time::Instant::now() + grace;
    if tokio::time::timeout_at(deadline, tracker.wait()).await.is_err() {
        warn!(grace = %crate::telemetry::Rounded(grace), "sync tasks did not finish within the grace period; abandoning them");
    }
    if let Ok(joined) = tokio::time::timeout_at(deadline, server).await {
        joined.context("HTTP server task")??;
    } else {
        warn!("HTTP server did not drain within the grace period");
    }
    ctx.store.close().await;
    info!("stopped");
    Ok(())
}

fn spawn_signal_handler(cancel: CancellationToken, interrupt: Arc<std::sync::atomic::AtomicBool>) {
    tokio::spawn(async move {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(err) => {
                    error!(error = %err, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => info!("SIGINT received; shutting down"),
            () = terminate => info!("SIGTERM received; shutting down"),
        }
        interrupt.store(true, Ordering::Relaxed);
        cancel.cancel();
    });
}

/// Keeps trying to reach and migrate the database; HTTP is already up and `/readyz` says why
/// we are not ready. Returns false when shutdown came first.
async fn migrate_until_ready(ctx: &Context, cancel: &CancellationToken) -> bool {
    let mut delay = Duration::from_millis(500);
    loop {
        match ctx.store.migrate().await {
            Ok(()) => {
                ctx.metrics.store_up.set(1);
                return true;
            }
            Err(err) => {
                ctx.metrics.store_up.set(0);
                ctx.metrics.retries.with_label_values(&["migrate"]).inc();
                warn!(error = %err, retry_in = %crate::telemetry::Rounded(delay), "database not ready");
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return false,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(MAX_CONNECT_BACKOFF);
    }
}

/// How often the API server is checked for `/readyz` and `rigger_cluster_up`.
const CLUSTER_CHECK: Duration = Duration::from_secs(15);

/// Keeps `rigger_cluster_up` current (every API call also updates it), so `/readyz` can report
/// the cluster without calling it, and tells passes whether to try the cluster at all.
async fn cluster_checks(reconciler: Arc<crate::reconcile::Reconciler>, cancel: CancellationToken) {
    // A cluster that stays away is logged when it goes, hourly while away, and when it is back.
    let memory = crate::telemetry::LogMemory::default();
    loop {
        let problem = match reconciler.cluster(None).await {
            Ok(cluster) => match cluster.ping().await {
                Ok(()) => {
                    reconciler.set_reachable(true);
                    None
                }
                Err(err) => {
                    reconciler.set_reachable(!err.is_transient());
                    Some(format!("the Kubernetes API server does not answer ({err}); the catalog keeps syncing"))
                }
            },
            // The error says "cannot configure the Kubernetes client" itself.
            Err(err) => Some(err.to_string()),
        };
        match problem {
            Some(problem) if memory.is_news("cluster", &problem) => warn!("{problem}"),
            None if memory.clear("cluster") => info!("the Kubernetes API server answers again"),
            Some(_) | None => {}
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(CLUSTER_CHECK) => {}
        }
    }
}

/// Claims, XRs and labelled workloads into the catalog, every `kubernetes.ingest_interval`.
async fn cluster_ingest(
    ctx: Context,
    reconciler: Arc<crate::reconcile::Reconciler>,
    every: Duration,
    cancel: CancellationToken,
) {
    loop {
        match crate::reconcile::ingest::ingest(&reconciler).await {
            Err(err) if ctx.state.log_memory.is_news("cluster ingest", &err.to_string()) => {
                warn!(error = %err, "cannot ingest cluster resources; the catalog keeps the last ones");
            }
            Err(_) | Ok(None) => {}
            // Ingested (not skipped for another replica): a standing failure is over.
            Ok(Some(_)) => {
                if ctx.state.log_memory.clear("cluster ingest") {
                    info!("cluster resources ingested again");
                }
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(jittered(every)) => {}
        }
    }
}

/// Which sources still wait for their first pass; readiness follows when none does.
struct FirstPass {
    waiting: std::sync::Mutex<std::collections::HashSet<String>>,
    readiness: Arc<Readiness>,
}

impl FirstPass {
    fn new(sources: impl Iterator<Item = String>, readiness: Arc<Readiness>) -> Self {
        let first = Self { waiting: std::sync::Mutex::new(sources.collect()), readiness };
        first.check();
        first
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// An organisation's discovery found these: they are part of the first pass too.
    fn expect(&self, repositories: &[String]) {
        if !self.readiness.first_pass_done() {
            self.waiting().extend(repositories.iter().cloned());
        }
    }

    /// A pass of `source` ended, however it ended. True when that was the last first pass.
    fn finished(&self, source: &str) -> bool {
        let removed = self.waiting().remove(source);
        removed && self.check()
    }

    fn check(&self) -> bool {
        let done = self.waiting().is_empty() && !self.readiness.first_pass_done();
        if done {
            self.readiness.set_first_pass_done();
            info!("initial sync pass finished; ready");
            super::systemd::ready();
        }
        done
    }
}

/// Takes sources off the queue one at a time and syncs them. A pass in flight finishes (bounded
/// by the grace period) rather than being torn mid-write.
async fn worker(ctx: Context, queue: WorkQueue, cancel: CancellationToken, first: Arc<FirstPass>) {
    loop {
        let source_name = tokio::select! {
            () = cancel.cancelled() => return,
            name = queue.next() => name,
        };
        let _idle = ctx.state.progress.pass(&source_name);
        let configured = ctx.config.sources.iter().find(|s| s.name == source_name).cloned();
        let Some(source) = configured.or_else(|| ctx.state.discovery.repository(&source_name)) else {
            queue.finish(&source_name, Outcome::Done);
            continue;
        };
        let source = &source;
        let started = crate::store::now_millis();
        let span = tracing::info_span!("source", source = %source.name);
        let result = match &source.kind {
            // An organisation's repositories become queue entries of their own.
            SourceKind::Github(gh) => {
                ctx.state.progress.enter(&source.name, "fetching");
                match discover_source(&ctx, source, gh).instrument(span).await {
                    Ok(Some(repositories)) => {
                        first.expect(&repositories);
                        for repository in &repositories {
                            queue.request(repository, "discovery");
                        }
                        Ok(Pass::Synced {
                            revision: None,
                            changes: crate::store::Changes::default(),
                            errors: Vec::new(),
                        })
                    }
                    Ok(None) => Ok(Pass::Skipped),
                    Err(err) => Err(err),
                }
            }
            _ => sync_source(&ctx, source).instrument(span).await,
        };
        let outcome = match &result {
            Ok(_) => Outcome::Done,
            Err(err) if crate::retry::Transient::is_transient(err) => Outcome::Transient,
            Err(_) => Outcome::Permanent,
        };
        // A request is served by a pass that started after it arrived; a transient failure keeps
        // it for the retry, and a replica that skipped the source leaves it to the holder.
        if outcome != Outcome::Transient && !matches!(result, Ok(Pass::Skipped)) {
            if let Err(err) = ctx.store.clear_pending(&source.name, started).await {
                warn!(source = %source.name, error = %err, "cannot clear the served sync request; it will run once more");
            }
        }
        refresh_entity_gauge(&ctx).await;
        first.finished(&source.name);
        queue.finish(&source.name, outcome);
    }
}

/// The safety net: a pass every interval (±10 %), whatever else happens.
async fn poll_timer(source: SourceConfig, queue: WorkQueue, cancel: CancellationToken) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(jittered(source.interval)) => queue.request(&source.name, "poll"),
        }
    }
}

/// File changes of a local source, debounced into one request.
async fn on_change(source: String, trigger: Arc<Notify>, queue: WorkQueue, cancel: CancellationToken) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = trigger.notified() => {}
        }
        settle(&trigger, &cancel).await;
        info!(source = %source, "change detected");
        queue.request(&source, "change");
    }
}

/// Requests recorded in the store (webhooks accepted before a restart, or by another replica).
async fn recorded_requests(ctx: Context, queue: WorkQueue, cancel: CancellationToken) {
    loop {
        match ctx.store.pending_syncs().await {
            Ok(pending) => {
                for request in pending {
                    if ctx.config.sources.iter().any(|s| s.name == request.source)
                        || ctx.state.discovery.repository(&request.source).is_some()
                    {
                        queue.request(&request.source, "recorded");
                    } else if !is_discoverable(&ctx, &request.source) {
                        // A source removed from the config: nothing can serve it any more.
                        drop(ctx.store.clear_pending(&request.source, i64::MAX).await);
                    }
                }
            }
            Err(err) => warn!(error = %err, "cannot read recorded sync requests"),
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(PENDING_CHECK) => {}
        }
    }
}

/// A repository name a configured GitHub source could discover (`<source>/<repository>`): kept
/// for when discovery answers again.
fn is_discoverable(ctx: &Context, name: &str) -> bool {
    ctx.config.sources.iter().any(|s| matches!(s.kind, SourceKind::Github(_)) && repository_of(&s.name, name).is_some())
}

/// The webhook endpoint's half of the wiring, when `webhooks.github` is configured: the secret,
/// the repositories git sources track, and a channel into the queue.
fn github_webhook(ctx: &Context, queue: &WorkQueue) -> anyhow::Result<Option<Arc<GithubWebhook>>> {
    let Some(secret) = ctx.config.webhooks.as_ref().and_then(|w| w.github_secret.as_ref()) else {
        return Ok(None);
    };
    let secret = secret.resolve().context("webhooks.github.secret")?;
    let tracked = ctx.config.sources.iter().filter_map(super::discovered::tracked).collect();
    let requests = forward_to_queue(queue, "webhook");
    let discovered = ctx.state.discovery.tracked.clone();
    let orgs = ctx
        .config
        .sources
        .iter()
        .filter_map(|s| match &s.kind {
            SourceKind::Github(gh) => Some((gh.org.clone(), s.name.clone())),
            _ => None,
        })
        .collect();
    let verifying = tokio::sync::Semaphore::new(serve::MAX_WEBHOOK_VERIFYING);
    Ok(Some(Arc::new(GithubWebhook { secret, tracked, discovered, orgs, requests, verifying })))
}

/// Who may call the API: its tokens (resolved at start; `run` has checked they resolve) and the
/// Backstage backend whose tokens and permission policy it honours.
fn api_auth(ctx: &Context) -> anyhow::Result<Arc<serve::Auth>> {
    let tokens = ctx
        .config
        .server
        .api_tokens
        .iter()
        .enumerate()
        .map(|(i, token)| token.resolve().with_context(|| format!("server.api_tokens[{i}]")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let auth =
        serve::Auth::new(tokens, ctx.config.server.backstage.as_ref(), &ctx.store).map_err(anyhow::Error::msg)?;
    Ok(Arc::new(auth))
}

/// The API's state-changing side: a channel into the queue, whose requests jump the backlog as
/// webhooks do.
fn api_writes(ctx: &Context, queue: &WorkQueue) -> Arc<serve::Writes> {
    let requests = forward_to_queue(queue, "refresh");
    let configured = ctx.config.sources.iter().map(|s| s.name.clone()).collect();
    Arc::new(serve::Writes { requests, configured, discovered: ctx.state.discovery.tracked.clone() })
}

/// A channel whose source names become queue requests with `reason`: how the HTTP side asks
/// for passes without knowing the queue.
fn forward_to_queue(queue: &WorkQueue, reason: &'static str) -> tokio::sync::mpsc::UnboundedSender<String> {
    let (requests, mut received) = tokio::sync::mpsc::unbounded_channel::<String>();
    let queue = queue.clone();
    tokio::spawn(async move {
        while let Some(source) = received.recv().await {
            queue.request(&source, reason);
        }
    });
    requests
}

/// Waits until changes stop arriving for [`DEBOUNCE`], so an editor's burst of writes or a
/// git-sync checkout becomes one pass.
async fn settle(trigger: &Notify, cancel: &CancellationToken) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(DEBOUNCE) => return,
            () = trigger.notified() => {}
        }
    }
}

/// Spreads sources sharing an interval over time: ±10 % of the interval.
fn jittered(interval: Duration) -> Duration {
    let spread = interval.as_secs_f64() * 0.1;
    let offset = (fastrand::f64() * 2.0 - 1.0) * spread;
    Duration::from_secs_f64((interval.as_secs_f64() + offset).max(0.1))
}

fn start_watchers(ctx: &Context, triggers: &[Arc<Notify>]) -> Vec<watch::Watcher> {
    let mut watchers = Vec::new();
    for (source, trigger) in ctx.config.sources.iter().zip(triggers) {
        if let SourceKind::Local(local) = &source.kind {
            let changed = ctx.state.changed.get(&source.name).cloned().unwrap_or_default();
            match watch::watch(&local.path, trigger.clone(), changed) {
                Ok(watcher) => watchers.push(watcher),
                Err(err) => {
                    warn!(source = %source.name, error = %err, "cannot watch directory; relying on the poll interval");
                }
            }
        }
    }
    watchers
}
