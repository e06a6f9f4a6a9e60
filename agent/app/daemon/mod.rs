//! `rigger run`: serve HTTP, feed the work queue from every trigger (jittered poll timers, file
//! changes of local sources, push webhooks, requests recorded before a restart), run its passes
//! on `sync.concurrency` workers, and stop within the grace period on SIGTERM/SIGINT. The loops
//! are in `triggers` (what asks for a pass), `worker` (what runs them), `cluster` (the API
//! server's checks and ingest); `http` wires the HTTP side.

mod cluster;
mod http;
mod triggers;
mod worker;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use super::context::Context;
use super::queue::WorkQueue;
use crate::serve::{self, Readiness};
use cluster::{cluster_checks, cluster_ingest};
use http::{api_auth, api_writes, github_webhook};
use triggers::{on_change, poll_timer, recorded_requests, start_watchers};
use worker::{worker, FirstPass};

/// Longest wait between attempts to reach the database at start-up.
const MAX_CONNECT_BACKOFF: Duration = Duration::from_secs(30);

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
            tracker.spawn(cluster_ingest(ctx.state.log_memory.clone(), reconciler.clone(), every, cancel.clone()));
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

/// Spreads sources sharing an interval over time: ±10 % of the interval.
fn jittered(interval: Duration) -> Duration {
    let spread = interval.as_secs_f64() * 0.1;
    let offset = (fastrand::f64() * 2.0 - 1.0) * spread;
    Duration::from_secs_f64((interval.as_secs_f64() + offset).max(0.1))
}
