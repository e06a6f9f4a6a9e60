//! One sync pass for one source: snapshot → catalog → store, with retries, metrics and history.

use std::sync::Arc;

use tracing::{debug, info, warn};

use super::context::Context;
use super::pass::{git_remote, limits, local_dir, Pass, SyncError};
use crate::catalog;
use crate::config::{GitSourceConfig, SourceConfig, SourceKind};
use crate::retry::retry;
use crate::source::git::{GitRemote, Tip};
use crate::source::local::LocalDir;
use crate::source::Snapshot;
use crate::store::stream::{self, Writer};
use crate::store::{Changes, SourceLease, SyncRun};
use crate::telemetry::Scope;

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
    let limits = limits(&ctx.config);
    let (changes, problems) = stream::write_walk(&writer(ctx), &source.name, snapshot, limits).await?;
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
            if changes.conflicts == 0 && changes.refused == 0 && ctx.config.catalog.placeholder_hosts.is_empty() =>
        {
            settled.insert(source.to_owned(), commit.to_owned());
        }
        _ => {
            settled.remove(source);
        }
    }
}

/// A local directory's pass when its watcher named the changed files: only those files are read
/// and written. `None` (a full rescan is needed) unless every changed file is a catalog file the
/// last walk reached, is still there, and neither declares nor declared a `Location` (whose
/// targets shape the tree). Nothing is pruned: the walk is partial.
async fn changed_files_pass(ctx: &Context, source: &SourceConfig, dir: &LocalDir) -> Result<Option<Pass>, SyncError> {
    let Some(paths) = ctx.state.changed.get(&source.name).and_then(|c| c.take()) else { return Ok(None) };
    if !ctx.config.catalog.placeholder_hosts.is_empty() {
        return Ok(None);
    }
    let snapshot = dir.snapshot()?;
    let limits = limits(&ctx.config);
    let Some(outcomes) = catalog::ingest_paths(&snapshot, &paths, limits) else { return Ok(None) };
    let known = ctx.store.location_keys_by_path(&source.name).await?;
    for outcome in &outcomes {
        if known.get(&outcome.path) != Some(&outcome.key)
            || ctx.store.location_holds_kind(&outcome.key, "location").await?
        {
            return Ok(None);
        }
    }
    ctx.metrics.local_rescans.with_label_values(&[source.name.as_str(), "changed_files"]).inc();
    let read: std::collections::HashSet<String> = outcomes.iter().map(|o| o.path.clone()).collect();
    let (total, problems) = stream::write_files(&writer(ctx), &source.name, outcomes).await?;
    ctx.state.log_memory.catalog_problems(&source.name, &Scope::Files(&read), &problems);
    let errors: Vec<String> = problems.iter().map(ToString::to_string).collect();
    if total.entity_writes() > 0 {
        retry(ctx.config.sync.retry, &ctx.metrics, "store", || ctx.store.bump_generation()).await?;
    }
    info!(source = %source.name, files = paths.len(), added = total.added, updated = total.updated,
        deleted = total.deleted, "changed files synced");
    Ok(Some(Pass::Synced { revision: None, changes: total, errors }))
}

/// The daemon's pass of a GitHub source: discovery alone, under the source's lease. The
/// repositories it keeps are returned for the work queue, so that the workers share them out
/// and each is one entry however it was asked for. `None`: another replica holds the source.
pub async fn discover_source(
    ctx: &Context,
    source: &SourceConfig,
    gh: &crate::config::GithubSourceConfig,
) -> Result<Option<Vec<String>>, SyncError> {
    let started = crate::store::now_millis();
    let Some(lease) = ctx.store.try_lease(&source.name).await? else {
        ctx.metrics.sync_runs.with_label_values(&[source.name.as_str(), "skipped"]).inc();
        return Ok(None);
    };
    let result = super::discovery::discover(ctx, source, gh).await;
    drop(lease);
    match result {
        Ok((repositories, _)) => {
            ctx.metrics.sync_runs.with_label_values(&[source.name.as_str(), "success"]).inc();
            ctx.metrics.sync_last_success.with_label_values(&[source.name.as_str()]).set(started / 1000);
            let recorded = ctx.store.record_source(&source.name, None, None).await;
            if let Err(err) = recorded {
                warn!(source = %source.name, error = %err, "cannot record the discovery");
            }
            Ok(Some(repositories.into_iter().map(|r| r.name).collect()))
        }
        Err(err) => {
            ctx.metrics.sync_runs.with_label_values(&[source.name.as_str(), "failure"]).inc();
            record_failure(ctx, source, started, &err).await;
            Err(err)
        }
    }
}

/// A GitHub source's pass: discovery, then each repository as its own git source (its own
/// lease, history and metrics), `sync.concurrency` at a time. Unchanged repositories cost one
/// ref advertisement each.
fn github_pass<'a>(
    ctx: &'a Context,
    source: &'a SourceConfig,
    gh: &'a crate::config::GithubSourceConfig,
) -> futures::future::BoxFuture<'a, Result<Pass, SyncError>> {
    // Boxed: its repositories' passes come back here for nothing (they are git sources), but
    // the compiler sees a cycle and needs the future's type written down.
    Box::pin(async move {
        let (repositories, mut changes) = super::discovery::discover(ctx, source, gh).await?;
        let mut errors = Vec::new();
        for (repository, (result, cluster)) in repositories.iter().zip(sync_all(ctx, &repositories).await?) {
            // The repository's cluster errors (refusals included) are the organisation's to report.
            for entity in cluster.iter().flat_map(|report| &report.entities) {
                errors.extend(
                    entity.errors.iter().map(|e| format!("{}: cluster: {}: {e}", repository.name, entity.entity_ref)),
                );
            }
            match result {
                Ok(Pass::Synced { changes: c, errors: e, .. }) => {
                    changes.absorb(c);
                    errors.extend(e.into_iter().map(|e| format!("{}: {e}", repository.name)));
                }
                Ok(Pass::Unchanged { .. } | Pass::Skipped) => {}
                Err(err) => errors.push(format!("{}: {err}", repository.name)),
            }
        }
        // The organisation's own row: a discovery error from an earlier pass is cleared.
        retry(ctx.config.sync.retry, &ctx.metrics, "store", || ctx.store.record_source(&source.name, None, None))
            .await?;
        if changes.entity_writes() > 0 {
            info!(source = %source.name, repositories = repositories.len(), "organisation synced");
        } else {
            debug!(source = %source.name, repositories = repositories.len(), "organisation synced; nothing changed");
        }
        Ok(Pass::Synced { revision: None, changes, errors })
    })
}

/// Syncs `sources`, `sync.concurrency` at a time as the daemon's workers take them; the
/// outcomes in the order given.
async fn sync_all(ctx: &Context, sources: &[SourceConfig]) -> Result<Vec<Synced>, SyncError> {
    let permits = Arc::new(tokio::sync::Semaphore::new(ctx.config.sync.concurrency.max(1)));
    let mut passes = tokio::task::JoinSet::new();
    for (index, source) in sources.iter().cloned().enumerate() {
        let (ctx, permits) = (ctx.clone(), permits.clone());
        passes.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (index, Box::pin(sync_and_reconcile(&ctx, &source)).await)
        });
    }
    let mut outcomes: Vec<Option<Synced>> = sources.iter().map(|_| None).collect();
    while let Some(joined) = passes.join_next().await {
        let (index, outcome) = joined.map_err(|e| SyncError::Join(e.to_string()))?;
        outcomes[index] = Some(outcome);
    }
    Ok(outcomes.into_iter().flatten().collect())
}

/// A source's pass and, with a cluster, its reconcile report.
type Synced = (Result<Pass, SyncError>, Option<crate::reconcile::SourceReport>);

/// Fetches (when the remote moved) and snapshots a git source; `Err(pass)` when nothing is to
/// be done: the remote did not move and nothing of the source is in error.
async fn git_snapshot_or_unchanged(
    ctx: &Context,
    source: &SourceConfig,
    git: &GitSourceConfig,
    last: Option<String>,
) -> Result<Result<Snapshot, Pass>, SyncError> {
    let policy = ctx.config.sync.retry;
    let token = match &git.token {
        Some(secret) => {
            Some(secret.resolve().map_err(|error| SyncError::Secret { source_name: source.name.clone(), error })?)
        }
        None => None,
    };
    let remote = git_remote(&source.name, git, token);
    let tip = fetch_git(ctx, &remote, last.clone()).await?;
    if !tip.fetched && last.as_deref() == Some(tip.commit.as_str()) {
        let files_in_error =
            retry(policy, &ctx.metrics, "store", || ctx.store.locations_in_error(&source.name)).await?;
        if files_in_error == 0 || is_settled(ctx, &source.name, &tip.commit) {
            // A stale fetch error from an earlier pass is cleared (a write only if there was one).
            let clear = || ctx.store.record_source(&source.name, Some(&tip.commit), None);
            retry(policy, &ctx.metrics, "store", clear).await?;
            return Ok(Err(Pass::Unchanged { revision: tip.commit, files_in_error }));
        }
        // Errors may resolve without a new commit (a conflicting claim released by another
        // source, a remote placeholder answering again), so the cached commit is read again;
        // unchanged entities cost no write.
    }
    let new_commit = (last.as_deref() != Some(tip.commit.as_str())).then(|| tip.commit.clone());
    let snapshot = git_snapshot(remote, ctx.config.cache_dir.clone(), tip).await?;
    // Read, so its verdict follows: `pending` until then.
    if let Some(commit) = new_commit {
        super::statuses::picked_up(ctx, source, &commit);
    }
    Ok(Ok(snapshot))
}

async fn fetch_git(ctx: &Context, remote: &GitRemote, last: Option<String>) -> Result<Tip, SyncError> {
    let cache = ctx.config.cache_dir.clone();
    let tip = retry(ctx.config.sync.retry, &ctx.metrics, "git_fetch", || {
        let (remote, cache, last, interrupt) = (remote.clone(), cache.clone(), last.clone(), ctx.interrupt.clone());
        async move {
            tokio::task::spawn_blocking(move || remote.fetch(&cache, last.as_deref(), &interrupt))
                .await
                .map_err(|e| SyncError::Join(e.to_string()))?
                .map_err(SyncError::from)
        }
    })
    .await?;
    if tip.rebuilt {
        warn!(source = %remote.source, "the git cache did not open; it was moved aside (.broken) and cloned again");
        ctx.metrics.git_cache_rebuilds.with_label_values(&[remote.source.as_str()]).inc();
    }
    let result = if tip.fetched { "fetched" } else { "unchanged" };
    ctx.metrics.git_fetches.with_label_values(&[remote.source.as_str(), result]).inc();
    Ok(tip)
}

async fn git_snapshot(remote: GitRemote, cache: std::path::PathBuf, tip: Tip) -> Result<Snapshot, SyncError> {
    tokio::task::spawn_blocking(move || remote.snapshot(&cache, &tip))
        .await
        .map_err(|e| SyncError::Join(e.to_string()))?
        .map_err(SyncError::from)
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
        placeholder_hosts: ctx.config.catalog.placeholder_hosts.clone(),
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
