//! One sync pass for one source: snapshot → catalog → store, with retries, metrics and history.

use std::sync::Arc;

use tracing::{debug, info, warn};

use super::context::Context;
use super::pass::{git_remote, limits, local_dir, Pass, SyncError};
use super::retry::retry;
use crate::catalog::placeholders::Remote;
use crate::catalog::{self, DocumentError, Limits, LocationOutcome};
use crate::config::{GitSourceConfig, SourceConfig, SourceKind};
use crate::source::git::{GitRemote, Tip};
use crate::source::local::LocalDir;
use crate::source::remote::HttpReader;
use crate::source::Snapshot;
use crate::store::diff::{Declared, Walk};
use crate::store::{Backend, Changes, Deferred, SourceLease, StoreError, SyncRun};
use crate::telemetry::{Problem, Scope};

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
    let (changes, problems) = stream(ctx, &source.name, snapshot, limits).await?;
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
    let mut walk =
        Walk { source: source.name.clone(), complete: false, reached: std::collections::HashMap::new(), gone: None };
    let read: std::collections::HashSet<String> = outcomes.iter().map(|o| o.path.clone()).collect();
    let (mut total, mut problems, mut deferred) = (Changes::default(), Vec::new(), Vec::new());
    for location in outcomes {
        if location.panicked {
            ctx.metrics.catalog_panics.with_label_values(&[source.name.as_str()]).inc();
        }
        let declared = Declared::of(&location);
        let write = || ctx.store.apply_location_streamed(&source.name, &location, &declared);
        let (changes, left) = retry(ctx.config.sync.retry, &ctx.metrics, "store", write).await?;
        total.absorb(changes);
        report(&location.path, &location.errors, &mut problems);
        walk.reached.insert(location.key.clone(), declared);
        if !left.is_empty() {
            deferred.push(left);
        }
    }
    settle(ctx, &walk, &deferred, &mut total, &mut problems).await?;
    ctx.state.log_memory.catalog_problems(&source.name, &Scope::Files(&read), &problems);
    let errors: Vec<String> = problems.iter().map(ToString::to_string).collect();
    // Not the conflicts gauge: a partial pass sees only the files it re-read.
    count_entity_writes(ctx, total);
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

/// Files in flight between the walk and the writer: enough for small files to share a
/// transaction (see [`batch_after`]) while parsing overlaps writing.
const LOCATIONS_IN_FLIGHT: usize = 64;

/// Entities in flight between the walk and each writer, whatever the number of files: large
/// files wait for a writer, so memory stays bounded by about one of them per writer (a single
/// larger file goes through alone). Beyond that, more only adds memory: twice this with one
/// SQLite writer cost a 20,000-entity ingest about 27 MiB of peak RSS and no time, while
/// PostgreSQL's second writer needs its own file in flight or it idles.
const ENTITIES_IN_FLIGHT_PER_WRITER: usize = 5_000;

/// A parsed file and its share of the in-flight budget, released once it is written.
type Parsed = (LocationOutcome, Option<tokio::sync::OwnedSemaphorePermit>);

/// Walks the snapshot on a blocking thread and writes files as they arrive (small ones
/// several to a transaction), so memory is bounded by the in-flight budget. What needs the whole walk — handing
/// entities over between files, removing ones that left — is settled at the end, then
/// locations the walk no longer reaches are pruned, only when the walk was complete.
async fn stream(
    ctx: &Context,
    source: &str,
    snapshot: Snapshot,
    limits: Limits,
) -> Result<(Changes, Vec<Problem>), SyncError> {
    let hosts = ctx.config.catalog.placeholder_hosts.clone();
    ctx.state.progress.enter(source, "writing");
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Parsed>(LOCATIONS_IN_FLIGHT);
    let writers = concurrent_writers(ctx.store.backend());
    let entities_in_flight = ENTITIES_IN_FLIGHT_PER_WRITER * writers;
    let budget = Arc::new(tokio::sync::Semaphore::new(entities_in_flight));
    let runtime = tokio::runtime::Handle::current();
    let walker = tokio::task::spawn_blocking(move || {
        let reader = if hosts.is_empty() { None } else { HttpReader::new().ok() };
        let remote = reader.as_ref().map(|reader| Remote::Read { allowed_hosts: &hosts, reader });
        // A closed channel means the writer failed: stop walking.
        catalog::ingest_each(&snapshot, limits, remote, |outcome| {
            let weight = u32::try_from(outcome.entities.len().clamp(1, entities_in_flight)).unwrap_or(1);
            let permit = runtime.block_on(budget.clone().acquire_many_owned(weight)).ok();
            sender.blocking_send((outcome, permit)).is_ok()
        })
    });
    let mut walk =
        Walk { source: source.to_owned(), complete: true, reached: std::collections::HashMap::new(), gone: None };
    let mut deferred = Vec::new();
    let mut total = Changes::default();
    let mut errors = Vec::new();
    let mut in_flight = std::collections::VecDeque::new();
    loop {
        let next = if in_flight.len() < writers { receiver.recv().await } else { None };
        if let Some(parsed) = next {
            let (batch, permits) = batch_after(parsed, &mut receiver);
            let write = write_batch(ctx.clone(), source.to_owned(), batch);
            in_flight.push_back(tokio::spawn(async move {
                let written = write.await;
                drop(permits);
                written
            }));
            continue;
        }
        // Results are taken in walk order, so reports and the walk do not depend on timing.
        let Some(oldest) = in_flight.pop_front() else { break };
        for (location, declared, (changes, left)) in oldest.await.map_err(|e| SyncError::Join(e.to_string()))?? {
            if location.panicked {
                ctx.metrics.catalog_panics.with_label_values(&[source]).inc();
            }
            total.absorb(changes);
            ctx.state.progress.advance(source, changes.entity_writes());
            report(&location.path, &location.errors, &mut errors);
            walk.complete &= location.leads_are_known();
            walk.reached.insert(location.key.clone(), declared);
            if !left.is_empty() {
                deferred.push(left);
            }
        }
    }
    let further_parents = walker.await.map_err(|e| SyncError::Join(e.to_string()))?;
    if !further_parents.is_empty() {
        let add = || ctx.store.add_parents(&further_parents);
        retry(ctx.config.sync.retry, &ctx.metrics, "store", add).await?;
    }
    ctx.state.progress.enter(source, "settling");
    work_out_unreached(ctx, &mut walk).await?;
    settle(ctx, &walk, &deferred, &mut total, &mut errors).await?;
    record_write_metrics(ctx, source, total);
    Ok((total, errors))
}

/// Locations written at once. PostgreSQL spends most of a large ingest maintaining indexes on
/// one core per connection, so a second writer uses the otherwise idle core; each location is
/// still its own transaction, and anything contested between files waits for the settling at
/// the end of the walk. SQLite has a single writer: more would only wait on its lock.
fn concurrent_writers(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 1,
        Backend::Postgres => {
            std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, crate::store::MAX_LOCATION_WRITERS))
        }
    }
}

type Written = (LocationOutcome, Declared, (Changes, Deferred));

/// Locations written in one transaction at most, and the entities such a batch may hold: small
/// files share a commit, a large one is written alone.
const BATCH_LOCATIONS: usize = 512;
const BATCH_ENTITIES: usize = 2_000;

/// `first` and the locations the walk has already sent after it, up to the batch bounds;
/// never waits for more.
fn batch_after(
    (first, permit): Parsed,
    receiver: &mut tokio::sync::mpsc::Receiver<Parsed>,
) -> (Vec<LocationOutcome>, Vec<tokio::sync::OwnedSemaphorePermit>) {
    let mut entities = first.entities.len();
    let mut batch = vec![first];
    let mut permits: Vec<_> = permit.into_iter().collect();
    while batch.len() < BATCH_LOCATIONS && entities < BATCH_ENTITIES {
        let Ok((next, permit)) = receiver.try_recv() else { break };
        entities += next.entities.len();
        batch.push(next);
        permits.extend(permit);
    }
    (batch, permits)
}

/// Phase one of a batch of locations in one transaction. Should the store refuse it for good,
/// each location is written alone, so only the one at fault fails (see [`write_location`]).
async fn write_batch(ctx: Context, source: String, batch: Vec<LocationOutcome>) -> Result<Vec<Written>, SyncError> {
    if batch.len() == 1 {
        return write_each(&ctx, &source, batch).await;
    }
    let declared: Vec<Declared> = batch.iter().map(Declared::of).collect();
    let items: Vec<(&LocationOutcome, &Declared)> = batch.iter().zip(&declared).collect();
    let write = || ctx.store.apply_locations_streamed(&source, &items);
    match retry(ctx.config.sync.retry, &ctx.metrics, "store", write).await {
        Ok(written) => {
            drop(items);
            Ok(batch.into_iter().zip(declared).zip(written).map(|((l, d), w)| (l, d, w)).collect())
        }
        Err(err) if err.is_transient() => Err(err.into()),
        Err(_) => {
            drop(items);
            write_each(&ctx, &source, batch).await
        }
    }
}

async fn write_each(ctx: &Context, source: &str, batch: Vec<LocationOutcome>) -> Result<Vec<Written>, SyncError> {
    let mut written = Vec::with_capacity(batch.len());
    for location in batch {
        written.push(write_location(ctx.clone(), source.to_owned(), location).await?);
    }
    Ok(written)
}

/// Phase one of one location, with retries, as its own task so that writes overlap. A write the
/// store refuses for good fails only what it must: see [`confine_refusal`].
async fn write_location(ctx: Context, source: String, location: LocationOutcome) -> Result<Written, SyncError> {
    match try_write(&ctx, &source, location).await {
        Ok(written) => Ok(written),
        Err((_, err)) if err.is_transient() => Err(err.into()),
        Err((location, err)) => confine_refusal(&ctx, &source, location, &err).await,
    }
}

/// The write, with the location handed back when it fails.
async fn try_write(
    ctx: &Context,
    source: &str,
    location: LocationOutcome,
) -> Result<Written, (LocationOutcome, StoreError)> {
    let declared = Declared::of(&location);
    let write = || ctx.store.apply_location_streamed(source, &location, &declared);
    match retry(ctx.config.sync.retry, &ctx.metrics, "store", write).await {
        Ok(written) => Ok((location, declared, written)),
        Err(err) => Err((location, err)),
    }
}

/// The store refused a location's write (a value the database cannot hold). Each entity is
/// tried alone; those refused become their documents' errors (last good versions kept) and the
/// rest is written. Should the write still fail, the file fails alone: nothing of it is written
/// or deleted, below it nothing is pruned, and the pass goes on with its siblings.
async fn confine_refusal(
    ctx: &Context,
    source: &str,
    mut location: LocationOutcome,
    refusal: &StoreError,
) -> Result<Written, SyncError> {
    warn!(source = %source, file = %location.path, error = %refusal, "the store refused this file's write; finding the entity");
    for entity in std::mem::take(&mut location.entities) {
        let check = || ctx.store.check_entity(source, &location.key, &entity);
        match retry(ctx.config.sync.retry, &ctx.metrics, "store", check).await {
            Ok(()) => location.entities.push(entity),
            Err(err) if err.is_transient() => return Err(err.into()),
            Err(err) => {
                let message = format!("{} cannot be stored: {err}", entity.entity_ref);
                location.errors.push(DocumentError { index: None, line: None, message: message.clone() });
                location.failing.push((entity.entity_ref, message));
            }
        }
    }
    match try_write(ctx, source, location).await {
        Ok(written) => Ok(written),
        Err((_, err)) if err.is_transient() => Err(err.into()),
        Err((mut location, err)) => {
            location.entities.clear();
            location.unattributed = true;
            location.hides_locations = true;
            location.errors.push(DocumentError {
                index: None,
                line: None,
                message: format!("cannot be stored: {err}"),
            });
            if let Err(err) = ctx.store.record_location_errors(source, &location).await {
                warn!(source = %source, file = %location.path, error = %err, "cannot record the file's error either");
            }
            let declared = Declared::of(&location);
            let deferred = Deferred { key: location.key.clone(), path: location.path.clone(), ..Deferred::default() };
            // Not settled: the next poll tries this file again, even at the same commit.
            Ok((location, declared, (Changes { refused: 1, ..Changes::default() }, deferred)))
        }
    }
}

/// After a whole walk: which stored files it no longer reached are really gone, and which are
/// held back by a file in error that leads to them. Held ones are marked on their locations,
/// told in the log once (when they become held), and counted in a gauge.
async fn work_out_unreached(ctx: &Context, walk: &mut Walk) -> Result<(), SyncError> {
    let source = walk.source.clone();
    let parents = retry(ctx.config.sync.retry, &ctx.metrics, "store", || ctx.store.location_parents(&source)).await?;
    let unreached = crate::store::diff::unreached(walk, &parents);
    let newly =
        retry(ctx.config.sync.retry, &ctx.metrics, "store", || ctx.store.hold_locations(&unreached.held)).await?;
    for key in newly {
        warn!(source = %source, location = %key, held_by = %unreached.held[&key],
            "a catalog file is no longer reached, but its entities are kept while the file that led to it is in error");
    }
    let held = i64::try_from(unreached.held.len()).unwrap_or(i64::MAX);
    ctx.metrics.deletions_held.with_label_values(&[source.as_str()]).set(held);
    walk.gone = Some(unreached.gone);
    Ok(())
}

/// The end of a streamed pass: hand-overs, removals, conflicts, then pruning of what is gone.
async fn settle(
    ctx: &Context,
    walk: &Walk,
    deferred: &[Deferred],
    total: &mut Changes,
    errors: &mut Vec<Problem>,
) -> Result<(), SyncError> {
    let (policy, orphans, source) = (ctx.config.sync.retry, ctx.config.catalog.orphan_strategy, walk.source.as_str());
    for left in deferred {
        let (changes, conflicts) =
            retry(policy, &ctx.metrics, "store", || ctx.store.settle(source, walk, left, orphans)).await?;
        total.absorb(changes);
        report(&left.path, &conflicts, errors);
    }
    if let Some(gone) = &walk.gone {
        let gone: Vec<String> = gone.iter().cloned().collect();
        let prune = || ctx.store.delete_locations(&gone, orphans);
        total.absorb(retry(policy, &ctx.metrics, "store", prune).await?);
    }
    Ok(())
}

/// The log memory's subject for a source's whole cluster reconcile.
fn cluster_subject(source: &str) -> String {
    format!("cluster reconcile of source {source}")
}

/// Collects a file's problems; they are logged once per pass, by what changed (`LogMemory`).
fn report(path: &str, found: &[DocumentError], problems: &mut Vec<Problem>) {
    problems.extend(found.iter().map(|error| Problem {
        file: path.to_owned(),
        document: error.index,
        line: error.line,
        message: error.message.clone(),
    }));
}

fn record_write_metrics(ctx: &Context, source: &str, total: Changes) {
    // A gauge, not a counter: a contested location is re-read every poll until it resolves.
    ctx.metrics.conflicts.with_label_values(&[source]).set(i64::try_from(total.conflicts).unwrap_or(i64::MAX));
    count_entity_writes(ctx, total);
}

fn count_entity_writes(ctx: &Context, total: Changes) {
    for (operation, count) in [("insert", total.added), ("update", total.updated), ("delete", total.deleted)] {
        ctx.metrics.entity_writes.with_label_values(&[operation]).inc_by(count);
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
