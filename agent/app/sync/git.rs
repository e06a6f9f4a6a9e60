//! A git source's side of a pass: ask the remote, fetch when it moved, read the commit.

use tracing::warn;

use super::{is_settled, Context, Pass, SyncError};
use crate::app::pass::git_remote;
use crate::config::{GitSourceConfig, SourceConfig};
use crate::retry::retry;
use crate::source::git::{GitRemote, Tip};
use crate::source::Snapshot;

/// Fetches (when the remote moved) and snapshots a git source; `Err(pass)` when nothing is to
/// be done: the remote did not move and nothing of the source is in error.
pub(super) async fn git_snapshot_or_unchanged(
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
        crate::app::statuses::picked_up(ctx, source, &commit);
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
