//! One sync pass for one source: snapshot → catalog → store, with retries, metrics and history.
//! A git source's side is in `git`, a watched directory's changed files in `changed`, a GitHub
//! organisation's discovery and repositories in `organisation`.

mod changed;
mod git;
mod organisation;

use tracing::{debug, info, warn};

use super::context::Context;
use super::pass::{limits, local_dir, Pass, SyncError};
use crate::catalog::placeholders::Remote;
use crate::catalog::{self, Limits, LocationOutcome};
use crate::config::{SourceConfig, SourceKind};
use crate::retry::retry;
use crate::source::remote::HttpReader;
use crate::source::Snapshot;
use crate::store::stream::{self, Writer};
use crate::store::{Changes, SourceLease, SyncRun};
use crate::telemetry::Scope;
use changed::changed_files_pass;
use git::git_snapshot_or_unchanged;
pub use organisation::discover_source;
use organisation::github_pass;

/// A pass that wrote this many entities has changed the tables enough that query plans made
/// for the old statistics (say, an empty catalog) can be badly wrong.
const ANALYZE_AFTER_WRITES: u64 = 5_000;

/// Syncs one source and records the outcome in metrics and the sync history; then, with a
/// cluster configured, reconciles its objects (see [`sync_and_reconcile`]).
pub async fn sync_source(ctx: &Context, source: &SourceConfig) -> Result<Pass, SyncError> {
    sync_and_reconcile(ctx, source).await.0
}

/// [`sync_source`], with the cluster report. The catalog's outcome (metrics, history, the
/// source's error) is the catalog's alone; a reconcile that could not reach the API server
/// turns the result into a transient error, so the queue retries the source with backoff.
pub async fn sync_and_reconcile(
    ctx: &Context,
    source: &SourceConfig,
) -> (Result<Pass, SyncError>, Option<crate::reconcile::SourceReport>) {
    let _idle = ctx.state.progress.pass(&source.name);
    let (result, lease) = sync_catalog(ctx, source).await;
    if let Ok(pass) = &result {
        super::statuses::catalog(ctx, source, pass);
    }
    if matches!(result, Ok(Pass::Unchanged { .. } | Pass::Synced { .. })) {
        if let Err(err) = super::template_sources::sync(ctx, source).await {
            warn!(source = %source.name, error = %err, "cannot record template sources; the next pass tries again");
        }
    }
    let Some(reconciler) =
        ctx.reconciler.as_ref().filter(|_| matches!(result, Ok(Pass::Unchanged { .. } | Pass::Synced { .. })))
    else {
        return (result, None);
    };
    ctx.state.progress.enter(&source.name, "reconciling");
    let outcome = crate::reconcile::reconcile_stored(reconciler, source, super::pass::synced_tree(ctx, source)).await;
    drop(lease);
    match outcome {
        Ok(report) if report.unavailable => {
            let error = crate::reconcile::cluster::ClusterError::Unavailable {
                message: "some objects could not be reconciled; retrying".into(),
                retry_after: None,
            };
            (Err(SyncError::Reconcile(error.into())), Some(report))
        }
        Ok(report) => {
            ctx.state.log_memory.clear(&cluster_subject(&source.name));
            if let Ok(pass) = &result {
                super::statuses::cluster(ctx, source, pass, &report);
            }
            (result, Some(report))
        }
        Err(err) => {
            if ctx.state.log_memory.is_news(&cluster_subject(&source.name), &err.to_string()) {
                warn!(source = %source.name, error = %err, "cluster reconcile failed; the cluster keeps its objects");
            }
            (Err(err.into()), None)
        }
    }
}

/// The catalog half, returning the source's lease (still held) for the cluster half.
async fn sync_catalog(ctx: &Context, source: &SourceConfig) -> (Result<Pass, SyncError>, Option<SourceLease>) {
    let started = crate::store::now_millis();
    let lease = match ctx.store.try_lease(&source.name).await {
        Ok(Some(lease)) => lease,
        Ok(None) => {
            ctx.metrics.sync_runs.with_label_values(&[source.name.as_str(), "skipped"]).inc();
            return (Ok(Pass::Skipped), None);
        }
        Err(err) => {
            ctx.metrics.sync_runs.with_label_values(&[source.name.as_str(), "failure"]).inc();
            warn!(source = %source.name, error = %err, "cannot take the source lease; the catalog keeps its last good state");
            return (Err(err.into()), None);
        }
    };
    let timer = ctx.metrics.sync_duration.with_label_values(&[source.name.as_str()]).start_timer();
    let result = run_pass(ctx, source, started).await;
    let outcome = match &result {
        Ok(Pass::Unchanged { .. } | Pass::Skipped) => {
            timer.stop_and_discard();
            "unchanged"
        }
        Ok(_) => "success",
        Err(_) => "failure",
    };
    ctx.metrics.sync_runs.with_label_values(&[source.name.as_str(), outcome]).inc();
    match &result {
        Ok(pass) => {
            // Another replica's pass says nothing of whether this source still fails.
            if !matches!(pass, Pass::Skipped) {
                ctx.state.log_memory.succeeded(&source.name);
            }
            let now = started / 1000;
            ctx.metrics.sync_last_success.with_label_values(&[source.name.as_str()]).set(now);
            if let Ok(count) = ctx.store.locations_in_error(&source.name).await {
                let gauge = ctx.metrics.location_errors.with_label_values(&[source.name.as_str()]);
                gauge.set(i64::try_from(count).unwrap_or(i64::MAX));
            }
        }
        Err(err) => record_failure(ctx, source, started, err).await,
    }
    (result, Some(lease))
}

/// A failed pass is remembered (error on the source, a history row) when the error is new.
async fn record_failure(ctx: &Context, source: &SourceConfig, started: i64, err: &SyncError) {
    let message = err.to_string();
    ctx.state.log_memory.failure(&source.name, &message);
    let revision = ctx.store.source_revision(&source.name).await.ok().flatten();
    if let Ok(true) = ctx.store.record_source(&source.name, revision.as_deref(), Some(&message)).await {
        let run = SyncRun {
            source: source.name.clone(),
            revision,
            started_at: started,
            finished_at: crate::store::now_millis(),
            changes: Changes::default(),
            errors: 0,
            error: Some(message),
        };
        if let Err(e) = ctx.store.record_run(&run).await {
            warn!(source = %source.name, error = %e, "cannot record the failed run");
        }
    }
}

async fn run_pass(ctx: &Context, source: &SourceConfig, started: i64) -> Result<Pass, SyncError> {
    let policy = ctx.config.sync.retry;
    let last = retry(policy, &ctx.metrics, "store", || ctx.store.source_revision(&source.name)).await?;
    ctx.state.progress.enter(&source.name, "fetching");
    let snapshot = match &source.kind {
        SourceKind::Git(git) => match git_snapshot_or_unchanged(ctx, source, git, last.clone()).await? {
            Ok(snapshot) => snapshot,
            Err(unchanged) => return Ok(unchanged),
        },
        SourceKind::Local(local) => {
            let dir = local_dir(&source.name, local);
            if let Some(pass) = changed_files_pass(ctx, source, &dir).await? {
                return Ok(pass);
            }
            ctx.metrics.local_rescans.with_label_values(&[source.name.as_str(), "full"]).inc();
            dir.snapshot()?
        }
        SourceKind::Github(gh) => return github_pass(ctx, source, gh).await,
    };
    let revision = snapshot.revision.clone();
    let walk = walk(snapshot, limits(&ctx.config), ctx.config.catalog.placeholder_hosts.clone());
    let (changes, problems) = stream::write_walk(&writer(ctx), &source.name, walk).await?;
    let problems_changed = ctx.state.log_memory.catalog_problems(&source.name, &Scope::Whole, &problems);
    let errors: Vec<String> = problems.iter().map(ToString::to_string).collect();
    remember_settled(ctx, &source.name, revision.as_deref(), changes);
    // The source's own error is for failed passes; document errors live on their locations.
    let source_changed =
        retry(policy, &ctx.metrics, "store", || ctx.store.record_source(&source.name, revision.as_deref(), None))
            .await?;
    if changes.entity_writes() > 0 {
        retry(policy, &ctx.metrics, "store", || ctx.store.bump_generation()).await?;
    }
    if changes.entity_writes() >= ANALYZE_AFTER_WRITES {
        if let Err(err) = ctx.store.analyze().await {
            warn!(error = %err, "cannot refresh planner statistics");
        }
    }
    if changes.entity_writes() > 0 || source_changed || last != revision {
        let run = SyncRun {
            source: source.name.clone(),
            revision: revision.clone(),
            started_at: started,
            finished_at: crate::store::now_millis(),
            changes,
            errors: errors.len() as u64,
            error: None,
        };
        retry(policy, &ctx.metrics, "store", || ctx.store.record_run(&run)).await?;
    }
    // A pass that found what the last one did is not news (a local directory polled, say).
    if changes.entity_writes() > 0 || problems_changed || last != revision {
        info!(source = %source.name, revision = revision.as_deref().unwrap_or("-"), added = changes.added,
            updated = changes.updated, deleted = changes.deleted, unchanged = changes.unchanged, errors = errors.len(), "synced");
    } else {
        debug!(source = %source.name, unchanged = changes.unchanged, errors = errors.len(), "synced; nothing changed");
    }
    Ok(Pass::Synced { revision, changes, errors })
}

fn is_settled(ctx: &Context, source: &str, commit: &str) -> bool {
    ctx.state.settled.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(source).is_some_and(|c| c == commit)
}

fn remember_settled(ctx: &Context, source: &str, revision: Option<&str>, changes: Changes) {
    let mut settled = ctx.state.settled.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    match revision {
        Some(commit)
            // Remote placeholders may answer differently without a new commit.
            if changes.is_final() && ctx.config.catalog.placeholder_hosts.is_empty() =>
        {
            settled.insert(source.to_owned(), commit.to_owned());
        }
        _ => {
            settled.remove(source);
        }
    }
}

/// The log memory's subject for a source's whole cluster reconcile.
fn cluster_subject(source: &str) -> String {
    format!("cluster reconcile of source {source}")
}

/// The store's writer for a walk, as configured.
fn writer(ctx: &Context) -> Writer {
    Writer {
        store: ctx.store.clone(),
        retry: ctx.config.sync.retry,
        metrics: ctx.metrics.clone(),
        progress: ctx.state.progress.clone(),
        orphans: ctx.config.catalog.orphan_strategy,
    }
}

/// The catalog's walk of a snapshot, for the store's writer to run on a blocking thread: each
/// file's outcome goes to `emit` as it is read, and the walk stops when `emit` says so.
/// Placeholders may read `hosts` over HTTP.
fn walk(
    snapshot: Snapshot,
    limits: Limits,
    hosts: Vec<String>,
) -> impl FnOnce(&mut dyn FnMut(LocationOutcome) -> bool) -> Vec<(String, String)> + Send + 'static {
    move |emit| {
        let reader = if hosts.is_empty() { None } else { HttpReader::new().ok() };
        let remote = reader.as_ref().map(|reader| Remote::Read { allowed_hosts: &hosts, reader });
        catalog::ingest_each(&snapshot, limits, remote, emit)
    }
}

/// Refreshes the per-kind entity gauge from the store.
pub async fn refresh_entity_gauge(ctx: &Context) {
    match ctx.store.entity_counts().await {
        Ok(counts) => {
            ctx.metrics.store_up.set(1);
            ctx.metrics.entities.reset();
            for (kind, count) in counts {
                ctx.metrics.entities.with_label_values(&[kind.as_str()]).set(count);
            }
            if let Ok(dangling) = ctx.store.unresolved_relations().await {
                ctx.metrics.unresolved_relations.set(i64::try_from(dangling.len()).unwrap_or(i64::MAX));
            }
        }
        Err(err) => {
            ctx.metrics.store_up.set(0);
            warn!(error = %err, "cannot count entities");
        }
    }
}
