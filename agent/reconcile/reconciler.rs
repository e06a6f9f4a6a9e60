//! The cluster half's shared state and error: the connections (one per impersonated user), the
//! API server's reachability and the entities' owners the drift watch reports to, with the
//! store, metrics and log memory its runs write to. What a pass holds on to, without the pass.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::config::{Config, KubernetesConfig, RetryConfig};
use crate::reconcile::cluster::{Cluster, ClusterError};
use crate::store::{ObjectKey, Store, StoreError};
use crate::telemetry::{LogMemory, Metrics};

/// The cluster connections (one per impersonated user) and what the drift watch needs to know.
pub struct Reconciler {
    config: KubernetesConfig,
    retry: RetryConfig,
    /// The largest manifest file read (`catalog.max_file_bytes`).
    pub(super) max_file_bytes: usize,
    pub(super) store: Store,
    pub(super) metrics: Metrics,
    /// Shared with the rest of the agent: a failure is logged when it is news.
    pub(super) log_memory: Arc<LogMemory>,
    clients: tokio::sync::Mutex<HashMap<Option<String>, Arc<Cluster>>>,
    /// Entity ref -> source, for routing a drift event to the source that owns the object.
    owners: Mutex<HashMap<String, String>>,
    /// Kinds Rigger has applied, which the drift watch follows.
    pub applied_kinds: AppliedKinds,
    /// Until when the API server counts as down: passes skip the cluster at once instead of
    /// each waiting out its own timeouts.
    down_until: Mutex<Option<Instant>>,
}

/// How long an API server that did not answer is left alone before passes try it again (the
/// daemon's health check may clear it sooner).
const DOWN_HOLD: Duration = Duration::from_secs(10);

impl Reconciler {
    /// `None` when `kubernetes` is not configured.
    pub fn new(config: &Config, store: Store, metrics: Metrics, log_memory: Arc<LogMemory>) -> Option<Self> {
        Some(Self {
            config: config.kubernetes.clone()?,
            retry: config.sync.retry,
            max_file_bytes: config.catalog.max_file_bytes,
            store,
            metrics,
            log_memory,
            clients: tokio::sync::Mutex::default(),
            owners: Mutex::default(),
            applied_kinds: AppliedKinds::default(),
            down_until: Mutex::default(),
        })
    }

    /// Records whether the API server answered (a check, or a pass that met it unavailable).
    pub fn set_reachable(&self, reachable: bool) {
        let until = (!reachable).then(|| Instant::now() + DOWN_HOLD);
        *self.down_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = until;
        self.metrics.cluster_up.set(i64::from(reachable));
    }

    /// Fails at once while the API server is known to be down.
    pub(super) fn check_reachable(&self) -> Result<(), ClusterError> {
        let until = *self.down_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match until {
            Some(until) if Instant::now() < until => Err(ClusterError::Unavailable {
                message: "it did not answer a moment ago; trying again shortly".into(),
                retry_after: None,
            }),
            _ => Ok(()),
        }
    }

    pub fn config(&self) -> &KubernetesConfig {
        &self.config
    }

    /// The client acting as `impersonate` (or as Rigger itself), connected on first use.
    pub async fn cluster(&self, impersonate: Option<&str>) -> Result<Arc<Cluster>, ClusterError> {
        let mut clients = self.clients.lock().await;
        let key = impersonate.map(str::to_owned);
        if let Some(found) = clients.get(&key) {
            return Ok(found.clone());
        }
        let cluster = Arc::new(Cluster::connect(&self.config, impersonate, self.retry, self.metrics.clone()).await?);
        clients.insert(key, cluster.clone());
        Ok(cluster)
    }

    /// The source owning an entity's objects, as of the last pass that planned it.
    pub fn owner(&self, entity_ref: &str) -> Option<String> {
        self.owners.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(entity_ref).cloned()
    }

    pub(super) fn remember_owners(&self, source: &str, entities: impl Iterator<Item = String>) {
        let mut owners = self.owners.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for entity in entities {
            owners.insert(entity, source.to_owned());
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read the synced tree: {0}")]
    Tree(String),
    #[error("cluster: {0}")]
    Cluster(#[from] ClusterError),
}

impl ReconcileError {
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Store(e) => e.is_transient(),
            Self::Cluster(e) => e.is_transient(),
            Self::Tree(_) => false,
        }
    }
}

/// `(apiVersion, kind)` pairs Rigger has applied; the watch starts one watcher per pair.
#[derive(Default)]
pub struct AppliedKinds {
    kinds: Mutex<BTreeSet<(String, String)>>,
    pub(super) added: Notify,
}

impl AppliedKinds {
    pub fn extend<'a>(&self, keys: impl Iterator<Item = &'a ObjectKey>) {
        let mut kinds = self.kinds.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = kinds.len();
        kinds.extend(keys.map(|k| (k.api_version.clone(), k.kind.clone())));
        if kinds.len() > before {
            self.added.notify_one();
        }
    }

    pub(super) fn current(&self) -> BTreeSet<(String, String)> {
        self.kinds.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}
