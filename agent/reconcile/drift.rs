//! Drift: every kind Rigger has applied is watched (kube-runtime's watcher, with its backoff),
//! filtered to objects carrying Rigger's label. A change or deletion the cluster reports asks
//! for a pass of the owning source; the pass re-applies what drifted (self-heal) and refreshes
//! health from the new status. Objects seen when a watch (re)lists count as changes too: one
//! pass per source, which finds what changed while nobody was watching. The queue coalesces bursts, and a pass that finds nothing to do
//! writes nothing, so Rigger's own applies do not loop.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::reconciler::Reconciler;
use crate::reconcile::{ENTITY_ANNOTATION, MANAGED_BY, MANAGED_BY_VALUE};

/// Runs until cancelled: starts a watcher for each kind as it is first applied, and calls
/// `request(source)` for every reported change to an object Rigger owns.
pub async fn watch(reconciler: Arc<Reconciler>, request: Arc<dyn Fn(&str) + Send + Sync>, cancel: CancellationToken) {
    let mut watching = BTreeSet::new();
    loop {
        for (api_version, kind) in reconciler.applied_kinds.current() {
            if watching.contains(&(api_version.clone(), kind.clone())) {
                continue;
            }
            match start(&reconciler, &api_version, &kind, request.clone(), cancel.clone()).await {
                Ok(()) => {
                    watching.insert((api_version, kind));
                }
                Err(err) => warn!(%api_version, %kind, error = %err, "cannot watch for drift yet; will try again"),
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = reconciler.applied_kinds.added.notified() => {}
            // A kind that could not be resolved (API server down) is tried again.
            () = tokio::time::sleep(std::time::Duration::from_secs(30)) => {}
        }
    }
}

async fn start(
    reconciler: &Arc<Reconciler>,
    api_version: &str,
    kind: &str,
    request: Arc<dyn Fn(&str) + Send + Sync>,
    cancel: CancellationToken,
) -> Result<(), crate::reconcile::cluster::ClusterError> {
    let cluster = reconciler.cluster(None).await?;
    let resolved = cluster.kind(api_version, kind).await?;
    let api: Api<DynamicObject> = Api::all_with(cluster.client().clone(), &resolved.resource);
    let config = watcher::Config::default().labels(&format!("{MANAGED_BY}={MANAGED_BY_VALUE}"));
    let mut events = watcher::watcher(api, config).default_backoff().boxed();
    let (reconciler, label) = (reconciler.clone(), format!("{api_version} {kind}"));
    info!(kind = %label, "watching for drift");
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                () = cancel.cancelled() => return,
                event = events.next() => event,
            };
            match event {
                // A (re)list counts too: a change made while the watch was down shows only there.
                Some(Ok(Event::Apply(object) | Event::InitApply(object) | Event::Delete(object))) => {
                    let owner = object.metadata.annotations.as_ref().and_then(|a| a.get(ENTITY_ANNOTATION));
                    if let Some(source) = owner.and_then(|entity| reconciler.owner(entity)) {
                        request(&source);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => warn!(kind = %label, error = %err, "drift watch interrupted; resuming with backoff"),
                None => return,
            }
        }
    });
    Ok(())
}
