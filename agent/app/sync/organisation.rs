//! A GitHub organisation's pass: discovery, then each repository it keeps as a git source of
//! its own.

use std::sync::Arc;

use tracing::{debug, info, warn};

use super::{record_failure, sync_and_reconcile, Context, Pass, SyncError};
use crate::config::{GithubSourceConfig, SourceConfig};
use crate::retry::retry;

/// The daemon's pass of a GitHub source: discovery alone, under the source's lease. The
/// repositories it keeps are returned for the work queue, so that the workers share them out
/// and each is one entry however it was asked for. `None`: another replica holds the source.
pub async fn discover_source(
    ctx: &Context,
    source: &SourceConfig,
    gh: &GithubSourceConfig,
) -> Result<Option<Vec<String>>, SyncError> {
    let started = crate::store::now_millis();
    let Some(lease) = ctx.store.try_lease(&source.name).await? else {
        ctx.metrics.sync_runs.with_label_values(&[source.name.as_str(), "skipped"]).inc();
        return Ok(None);
    };
    let result = crate::app::discovery::discover(ctx, source, gh).await;
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
pub(super) fn github_pass<'a>(
    ctx: &'a Context,
    source: &'a SourceConfig,
    gh: &'a GithubSourceConfig,
) -> futures::future::BoxFuture<'a, Result<Pass, SyncError>> {
    // Boxed: its repositories' passes come back here for nothing (they are git sources), but
    // the compiler sees a cycle and needs the future's type written down.
    Box::pin(async move {
        let (repositories, mut changes) = crate::app::discovery::discover(ctx, source, gh).await?;
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
