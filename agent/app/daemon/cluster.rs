//! The daemon's cluster loops: the API server's reachability, and cluster objects read back
//! into the catalog.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::jittered;
use crate::telemetry::LogMemory;

/// How often the API server is checked for `/readyz` and `rigger_cluster_up`.
const CLUSTER_CHECK: Duration = Duration::from_secs(15);

/// Keeps `rigger_cluster_up` current (every API call also updates it), so `/readyz` can report
/// the cluster without calling it, and tells passes whether to try the cluster at all.
pub(super) async fn cluster_checks(reconciler: Arc<crate::reconcile::Reconciler>, cancel: CancellationToken) {
    // A cluster that stays away is logged when it goes, hourly while away, and when it is back.
    let memory = LogMemory::default();
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
pub(super) async fn cluster_ingest(
    log_memory: Arc<LogMemory>,
    reconciler: Arc<crate::reconcile::Reconciler>,
    every: Duration,
    cancel: CancellationToken,
) {
    loop {
        match crate::reconcile::ingest::ingest(&reconciler).await {
            Err(err) if log_memory.is_news("cluster ingest", &err.to_string()) => {
                warn!(error = %err, "cannot ingest cluster resources; the catalog keeps the last ones");
            }
            Err(_) | Ok(None) => {}
            // Ingested (not skipped for another replica): a standing failure is over.
            Ok(Some(_)) => {
                if log_memory.clear("cluster ingest") {
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
