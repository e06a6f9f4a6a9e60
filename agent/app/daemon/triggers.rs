//! What asks for a pass: each source's poll timer, a local source's file changes, and requests
//! recorded in the store.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::jittered;
use crate::app::context::Context;
use crate::app::queue::WorkQueue;
use crate::config::{SourceConfig, SourceKind};
use crate::source::github::discovery::repository_of;
use crate::source::watch;

/// Long enough to coalesce a save or a checkout, short enough to feel immediate.
const DEBOUNCE: Duration = Duration::from_millis(500);
/// How often recorded requests are re-read: picks up what another replica accepted but did not
/// get to (it died, or another replica held the source at the time).
const PENDING_CHECK: Duration = Duration::from_secs(15);

/// The safety net: a pass every interval (±10 %), whatever else happens.
pub(super) async fn poll_timer(source: SourceConfig, queue: WorkQueue, cancel: CancellationToken) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(jittered(source.interval)) => queue.request(&source.name, "poll"),
        }
    }
}

/// File changes of a local source, debounced into one request.
pub(super) async fn on_change(source: String, trigger: Arc<Notify>, queue: WorkQueue, cancel: CancellationToken) {
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
pub(super) async fn recorded_requests(ctx: Context, queue: WorkQueue, cancel: CancellationToken) {
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

pub(super) fn start_watchers(ctx: &Context, triggers: &[Arc<Notify>]) -> Vec<watch::Watcher> {
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
