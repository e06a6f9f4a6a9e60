//! The one place that talks to the Kubernetes API server. Kinds are resolved at run time through
//! discovery, so a newly installed CRD needs no code; writes are server-side applies as field
//! manager `rigger`; every call is retried on 429, 5xx, timeouts and broken connections with
//! capped, jittered backoff (kube's client retries none of these by itself).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::Scope;
use serde_json::Value;

use super::plan::ObjectKey;
use crate::config::{KubernetesConfig, RetryConfig};
use crate::telemetry::Metrics;

/// The longest `Retry-After` honoured; a server asking for more is asked again sooner.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The field manager of every apply.
pub const FIELD_MANAGER: &str = "rigger";

/// A kind the cluster serves.
#[derive(Debug, Clone)]
pub struct Kind {
    pub resource: ApiResource,
    pub namespaced: bool,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot configure the Kubernetes client: {0}")]
    Config(String),
    #[error("the cluster does not serve {api_version} {kind} (is its CustomResourceDefinition installed?)")]
    UnknownKind { api_version: String, kind: String },
    /// Another field manager owns fields this apply would change.
    #[error("{message}")]
    Conflict { managers: Vec<String>, message: String },
    /// The API server answered and refused (invalid object, forbidden, not found, …).
    #[error("the API server refused it ({code}): {message}")]
    Rejected { code: u16, message: String },
    /// The API server did not answer, or answered that it cannot now; worth retrying.
    #[error("the API server is unavailable: {message}")]
    Unavailable { message: String, retry_after: Option<Duration> },
}

impl ClusterError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    fn from_kube(error: kube::Error) -> Self {
        match error {
            kube::Error::Api(status) => {
                let code = status.code;
                let retry_after = status
                    .details
                    .as_ref()
                    .map(|d| d.retry_after_seconds)
                    .filter(|s| *s > 0)
                    .map(|s| Duration::from_secs(u64::from(s)));
                if code == 429 || code >= 500 || code == 408 {
                    return Self::Unavailable { message: format!("{code} {}", status.message), retry_after };
                }
                if code == 409 && status.reason == "Conflict" {
                    let managers = status
                        .details
                        .as_ref()
                        .map(|d| d.causes.iter().filter_map(|c| quoted(&c.message)).collect::<Vec<_>>())
                        .unwrap_or_default();
                    if !managers.is_empty() {
                        return Self::Conflict { managers, message: status.message };
                    }
                }
                Self::Rejected { code, message: status.message }
            }
            kube::Error::Discovery(e) => Self::Unavailable { message: e.to_string(), retry_after: None },
            other => Self::Unavailable { message: other.to_string(), retry_after: None },
        }
    }
}

/// The manager named in a conflict cause: `conflict with "kubectl-edit" using v1`.
fn quoted(message: &str) -> Option<String> {
    let start = message.find('"')? + 1;
    let end = start + message[start..].find('"')?;
    Some(message[start..end].to_owned())
}

/// A client for one cluster, with the kinds it has resolved so far.
pub struct Cluster {
    client: kube::Client,
    kinds: Mutex<HashMap<(String, String), Kind>>,
    retry: RetryConfig,
    timeout: Duration,
    metrics: Metrics,
}

impl Cluster {
    /// Connects with the configured kubeconfig, or the in-cluster config / `KUBECONFIG` when none
    /// is named. `impersonate` acts as that user (e.g. a per-source service account).
    pub async fn connect(
        config: &KubernetesConfig,
        impersonate: Option<&str>,
        retry: RetryConfig,
        metrics: Metrics,
    ) -> Result<Self, ClusterError> {
        let mut client_config = match &config.kubeconfig {
            Some(path) => {
                let kubeconfig = kube::config::Kubeconfig::read_from(path)
                    .map_err(|e| ClusterError::Config(format!("{}: {e}", path.display())))?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
                    .await
                    .map_err(|e| ClusterError::Config(format!("{}: {e}", path.display())))?
            }
            None => kube::Config::infer().await.map_err(|e| ClusterError::Config(e.to_string()))?,
        };
        if let Some(user) = impersonate {
            client_config.auth_info.impersonate = Some(user.to_owned());
        }
        client_config.connect_timeout = Some(config.timeout);
        // One retry layer, ours (counted, capped, honouring Retry-After): kube's own would
        // multiply the attempts, up to 15 per call.
        client_config.default_retry = false;
        let client = kube::Client::try_from(client_config).map_err(|e| ClusterError::Config(e.to_string()))?;
        Ok(Self { client, kinds: Mutex::new(HashMap::new()), retry, timeout: config.timeout, metrics })
    }

    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// Whether the API server answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), ClusterError> {
        let version = self.client.apiserver_version();
        let result = match tokio::time::timeout(self.timeout, version).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(ClusterError::from_kube(e)),
            Err(_) => Err(timed_out(self.timeout)),
        };
        self.metrics.cluster_up.set(i64::from(result.is_ok()));
        result
    }

    /// The kind behind `apiVersion`/`kind`, from discovery. A miss asks the server again, so a
    /// CRD applied a moment ago is found.
    pub async fn kind(&self, api_version: &str, kind: &str) -> Result<Kind, ClusterError> {
        let key = (api_version.to_owned(), kind.to_owned());
        if let Some(found) = self.kinds.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key) {
            return Ok(found.clone());
        }
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let resolved = self
            .call("discovery", || async {
                match kube::discovery::pinned_kind(&self.client, &gvk).await {
                    Ok(found) => Ok(Some(found)),
                    Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
                    Err(kube::Error::Discovery(_)) => Ok(None),
                    Err(e) => Err(ClusterError::from_kube(e)),
                }
            })
            .await?;
        let Some((resource, capabilities)) = resolved else {
            return Err(ClusterError::UnknownKind { api_version: api_version.to_owned(), kind: kind.to_owned() });
        };
        let found = Kind { resource, namespaced: capabilities.scope == Scope::Namespaced };
        self.kinds.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key, found.clone());
        Ok(found)
    }

    fn api(&self, kind: &Kind, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace.filter(|_| kind.namespaced) {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &kind.resource),
            None => Api::all_with(self.client.clone(), &kind.resource),
        }
    }

    /// The live object, or `None` when it does not exist.
    pub async fn get(&self, key: &ObjectKey) -> Result<Option<Value>, ClusterError> {
        let kind = self.kind(&key.api_version, &key.kind).await?;
        let api = self.api(&kind, key.namespace.as_deref());
        let found =
            self.call("get", || async { api.get_opt(&key.name).await.map_err(ClusterError::from_kube) }).await?;
        found.map(to_value).transpose()
    }

    /// Every object of `kind` in all namespaces, optionally by label selector, each with its
    /// `apiVersion` and `kind` (list items come without them).
    pub async fn list(&self, kind: &Kind, labels: Option<&str>) -> Result<Vec<Value>, ClusterError> {
        let api = self.api(kind, None);
        let mut params = kube::api::ListParams::default();
        if let Some(selector) = labels {
            params = params.labels(selector);
        }
        let listed = self.call("list", || async { api.list(&params).await.map_err(ClusterError::from_kube) }).await?;
        listed
            .items
            .into_iter()
            .map(|item| {
                let mut object = to_value(item)?;
                object["apiVersion"] = Value::String(kind.resource.api_version.clone());
                object["kind"] = Value::String(kind.resource.kind.clone());
                Ok(object)
            })
            .collect()
    }

    /// Server-side apply of `object` as [`FIELD_MANAGER`]; `dry_run` persists nothing; `force`
    /// takes over fields other managers own.
    pub async fn apply(&self, object: &Value, dry_run: bool, force: bool) -> Result<Value, ClusterError> {
        let key = ObjectKey::of(object).ok_or_else(|| ClusterError::Rejected {
            code: 422,
            message: "the object has no apiVersion, kind or metadata.name".into(),
        })?;
        let kind = self.kind(&key.api_version, &key.kind).await?;
        let api = self.api(&kind, key.namespace.as_deref());
        let mut params = PatchParams::apply(FIELD_MANAGER);
        params.dry_run = dry_run;
        params.force = force;
        // Unknown or duplicate fields fail the apply instead of being dropped silently.
        params.field_validation = Some(kube::api::ValidationDirective::Strict);
        let applied = self
            .call(if dry_run { "dry_run" } else { "apply" }, || async {
                api.patch(&key.name, &params, &Patch::Apply(object)).await.map_err(ClusterError::from_kube)
            })
            .await?;
        to_value(applied)
    }

    /// Deletes an object; one already gone counts as deleted.
    pub async fn delete(&self, key: &ObjectKey) -> Result<(), ClusterError> {
        let kind = self.kind(&key.api_version, &key.kind).await?;
        let api = self.api(&kind, key.namespace.as_deref());
        self.call("delete", || async {
            match api.delete(&key.name, &DeleteParams::background()).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                Err(e) => Err(ClusterError::from_kube(e)),
            }
        })
        .await
    }

    /// One API call with a deadline, retried while the server is unavailable. A `Retry-After`
    /// the server sends is waited out (up to [`MAX_RETRY_AFTER`]) instead of the backoff.
    async fn call<T, F, Fut>(&self, operation: &'static str, attempt: F) -> Result<T, ClusterError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, ClusterError>>,
    {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.retry.initial)
            .with_max_delay(self.retry.max)
            .with_max_times(self.retry.max_attempts.saturating_sub(1) as usize)
            .with_jitter();
        let bounded = || async {
            match tokio::time::timeout(self.timeout, attempt()).await {
                Ok(result) => result,
                Err(_) => Err(timed_out(self.timeout)),
            }
        };
        let result = bounded
            .retry(backoff)
            .when(ClusterError::is_transient)
            .adjust(|err, planned| match err {
                ClusterError::Unavailable { retry_after: Some(wait), .. } => {
                    planned.map(|_| (*wait).min(MAX_RETRY_AFTER))
                }
                _ => planned,
            })
            .notify(|err, delay| {
                // Counted; logged at debug, as a sync's retries are (the final failure is reported).
                self.metrics.retries.with_label_values(&["cluster"]).inc();
                tracing::debug!(operation, error = %err, retry_in = %crate::telemetry::Rounded(delay), "API server call failed, retrying");
            })
            .await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(ClusterError::Unavailable { .. }) => "unavailable",
            // Someone else's field managers hold fields: answered, and (for hand edits under
            // self-heal) taken back by a forced apply that follows, so not an error by itself.
            Err(ClusterError::Conflict { .. }) => "conflict",
            Err(_) => "error",
        };
        // Any answer, even a refusal, shows the API server is there.
        self.metrics.cluster_up.set(i64::from(outcome != "unavailable"));
        self.metrics.cluster_requests.with_label_values(&[operation, outcome]).inc();
        result
    }
}

fn timed_out(after: Duration) -> ClusterError {
    ClusterError::Unavailable {
        message: format!("no answer within {}", crate::telemetry::Rounded(after)),
        retry_after: None,
    }
}

fn to_value(object: DynamicObject) -> Result<Value, ClusterError> {
    serde_json::to_value(object).map_err(|e| ClusterError::Rejected { code: 0, message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_causes_name_the_other_managers() {
        assert_eq!(quoted("conflict with \"kubectl-edit\" using v1").as_deref(), Some("kubectl-edit"));
        assert_eq!(quoted("no quotes"), None);
    }
}
