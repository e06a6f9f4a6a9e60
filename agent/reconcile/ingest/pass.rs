//! Cluster objects back into the catalog: Crossplane claims and v2 composite resources (every
//! kind whose CRD is in the `claim` or `composite` category) and workloads labelled
//! `backstage.io/kubernetes-id` become `Resource` entities with TeraSky's keys. They are one
//! location of a source of their own (`cluster:<name>`), written through the same diff as git's
//! files: an unchanged cluster writes nothing, an object that is gone takes its entity with it,
//! and a git entity with the same ref keeps it (first claimant wins).

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use tracing::{info, warn};

use super::{resource_entity, PREFIX};
use crate::catalog::{DocumentError, LocationOutcome, OrphanStrategy};
use crate::reconcile::cluster::{Cluster, ClusterError};
use crate::reconcile::reconciler::{ReconcileError, Reconciler};
use crate::store::diff::{Declared, Walk};
use crate::store::Changes;

/// The workload kinds read for `backstage.io/kubernetes-id` (TeraSky's default types).
const WORKLOADS: [(&str, &str); 4] =
    [("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("apps/v1", "DaemonSet"), ("batch/v1", "CronJob")];
const KUBERNETES_ID: &str = "backstage.io/kubernetes-id";

/// The store's source name for one cluster; a colon keeps it apart from configured names.
pub fn source_name(cluster: &str) -> String {
    format!("cluster:{cluster}")
}

/// One ingest pass, under the cluster's lease (one replica at a time). `None`: another replica
/// holds it.
pub async fn ingest(reconciler: &Reconciler) -> Result<Option<Changes>, ReconcileError> {
    let config = reconciler.config();
    let source = source_name(&config.cluster_name);
    let Some(_lease) = reconciler.store.try_lease(&source).await? else { return Ok(None) };
    let cluster = reconciler.cluster(None).await?;
    let objects = cluster_objects(&cluster).await?;
    // TeraSky's location key for what a cluster provides.
    let key = format!("cluster origin: {}", config.cluster_name);
    let outcome = outcome(&key, &objects, &config.cluster_name, &config.default_owner);
    for error in &outcome.errors {
        if reconciler.log_memory.is_news(&format!("cluster object: {}", error.message), &error.message) {
            warn!(cluster = %config.cluster_name, error = %error.message, "cluster object not ingested");
        }
    }
    let declared = Declared::of(&outcome);
    let walk = Walk { source: source.clone(), complete: true, reached: HashMap::from([(key, declared)]), gone: None };
    let (changes, _) = reconciler.store.apply_location(&source, &outcome, &walk, OrphanStrategy::Delete).await?;
    if changes.entity_writes() > 0 {
        reconciler.store.bump_generation().await?;
        info!(cluster = %config.cluster_name, added = changes.added, updated = changes.updated,
            deleted = changes.deleted, "cluster resources ingested");
    }
    Ok(Some(changes))
}

/// Claims, v2 XRs and labelled workloads, across all namespaces.
async fn cluster_objects(cluster: &Cluster) -> Result<Vec<Value>, ReconcileError> {
    let definitions = cluster.kind("apiextensions.k8s.io/v1", "CustomResourceDefinition").await?;
    let mut kinds = Vec::new();
    for crd in cluster.list(&definitions, None).await? {
        let spec = &crd["spec"];
        let categories: Vec<&str> =
            spec["names"]["categories"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        if !categories.iter().any(|c| *c == "claim" || *c == "composite") {
            continue;
        }
        let versions = spec["versions"].as_array().map(Vec::as_slice).unwrap_or_default();
        let served = versions.iter().find(|v| v["storage"] == true && v["served"] == true).or_else(|| versions.first());
        if let (Some(group), Some(version), Some(kind)) =
            (spec["group"].as_str(), served.and_then(|v| v["name"].as_str()), spec["names"]["kind"].as_str())
        {
            kinds.push((format!("{group}/{version}"), kind.to_owned(), None));
        }
    }
    kinds.extend(
        WORKLOADS
            .iter()
            .map(|(api_version, kind)| ((*api_version).to_owned(), (*kind).to_owned(), Some(KUBERNETES_ID))),
    );
    let mut objects = Vec::new();
    for (api_version, kind, selector) in kinds {
        // A CRD not established yet (or a cluster without CronJobs) is skipped, not fatal.
        let resolved = match cluster.kind(&api_version, &kind).await {
            Ok(resolved) => resolved,
            Err(ClusterError::UnknownKind { .. }) => continue,
            Err(err) => return Err(err.into()),
        };
        objects.extend(cluster.list(&resolved, selector).await?);
    }
    Ok(objects)
}

/// The location holding one `Resource` per ingestible object. Two objects that would make the
/// same entity (a claim name used in two namespaces) keep the first and report the second.
fn outcome(key: &str, objects: &[Value], cluster: &str, default_owner: &str) -> LocationOutcome {
    let mut outcome = LocationOutcome::new(key.to_owned(), String::new());
    outcome.read = true;
    let mut seen = HashSet::new();
    for object in objects {
        let owner = object["metadata"]["annotations"][format!("{PREFIX}/owner")].as_str().unwrap_or(default_owner);
        let Some(body) = resource_entity(object, cluster, owner) else { continue };
        let what = format!(
            "{} {}/{}",
            object["kind"].as_str().unwrap_or_default(),
            object["metadata"]["namespace"].as_str().unwrap_or("-"),
            object["metadata"]["name"].as_str().unwrap_or_default()
        );
        match crate::catalog::cluster_entity(body, key) {
            Ok(entity) if seen.insert(entity.entity_ref.to_string()) => outcome.entities.push(entity),
            Ok(entity) => outcome.errors.push(DocumentError {
                index: None,
                line: None,
                message: format!("{what}: {} is already ingested from another object", entity.entity_ref),
            }),
            Err(message) => {
                let message = format!("{what}: {message}");
                outcome.errors.push(DocumentError { index: None, line: None, message });
            }
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn claims_and_labelled_workloads_become_one_location_and_duplicates_are_reported() {
        let claim = |namespace: &str| {
            json!({"apiVersion": "acme.io/v1", "kind": "Database",
                "metadata": {"name": "orders-db", "namespace": namespace, "annotations": {"terasky.backstage.io/owner": "team-a"}},
                "spec": {"resourceRef": {"apiVersion": "acme.io/v1", "kind": "XDatabase", "name": "orders-db-x1"}}})
        };
        let workload = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "team", "labels": {"backstage.io/kubernetes-id": "api"}}});
        let plain =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "namespace": "team"}});
        let found = outcome("cluster origin: prod", &[claim("a"), claim("b"), workload, plain], "prod", "nobody");
        let refs: Vec<String> = found.entities.iter().map(|e| e.entity_ref.to_string()).collect();
        assert_eq!(refs, ["resource:default/orders-db", "resource:default/api"]);
        assert_eq!(found.entities[0].body["spec"]["owner"], "team-a");
        assert_eq!(found.entities[1].body["spec"]["owner"], "nobody", "the default owner");
        assert_eq!(
            found.entities[0].body["metadata"]["annotations"]["backstage.io/managed-by-location"],
            "cluster origin: prod"
        );
        assert_eq!(found.errors.len(), 1);
        assert!(found.errors[0].message.contains("Database b/orders-db"), "{:?}", found.errors);
    }
}
