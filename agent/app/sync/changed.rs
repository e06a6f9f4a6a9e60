//! A local source's pass over only the files its watcher saw change.

use tracing::info;

use super::{writer, Context, Pass, SyncError};
use crate::catalog;
use crate::config::SourceConfig;
use crate::retry::retry;
use crate::source::local::LocalDir;
use crate::store::stream;
use crate::telemetry::Scope;

/// A local directory's pass when its watcher named the changed files: only those files are read
/// and written. `None` (a full rescan is needed) unless every changed file is a catalog file the
/// last walk reached, is still there, and neither declares nor declared a `Location` (whose
/// targets shape the tree). Nothing is pruned: the walk is partial.
pub(super) async fn changed_files_pass(
    ctx: &Context,
    source: &SourceConfig,
    dir: &LocalDir,
) -> Result<Option<Pass>, SyncError> {
    let Some(paths) = ctx.state.changed.get(&source.name).and_then(|c| c.take()) else { return Ok(None) };
    if !ctx.config.catalog.placeholder_hosts.is_empty() {
        return Ok(None);
    }
    let snapshot = dir.snapshot()?;
    let limits = super::limits(&ctx.config);
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
