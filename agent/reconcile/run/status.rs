//! The cluster's view written back to the catalog: one `status.items` entry per entity (type
//! `rigger.dev/cluster`) with the sync state, the worst health of its objects and why, and the
//! per-source health counts in metrics.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::desired::{EntityPlan, Failure};
use super::outcome::Outcome;
use super::SourceReport;
use crate::reconcile::cluster::Cluster;
use crate::reconcile::health::{assess as judge, Health};
use crate::reconcile::plan::ObjectKey;
use crate::reconcile::reconciler::Reconciler;

/// The status item type Rigger writes.
pub const STATUS_TYPE: &str = "rigger.dev/cluster";

/// How deep references are followed to find a root cause (claim → XR → nested XR → MR).
const MAX_REF_DEPTH: usize = 4;

/// The health of the entity's objects after an apply, and the status item to serve.
pub async fn assess(cluster: &Cluster, plan: &EntityPlan, outcome: &Outcome) -> (Health, Value) {
    let mut objects = Vec::new();
    let mut worst = Health::Healthy;
    let mut worst_at = String::new();
    for step in plan.plan.steps.iter().filter(|s| s.action != crate::reconcile::plan::Action::Prune) {
        let current = match outcome.applied.get(&step.key).or_else(|| plan.live.get(&step.key)) {
            Some(object) => object.clone(),
            None => continue,
        };
        let referenced = referenced_objects(cluster, &current).await;
        let lookup = |reference: &Value| referenced.get(&ref_key(reference)).cloned();
        let health = judge(&current, &lookup);
        objects.push(json!({
            "apiVersion": step.key.api_version,
            "kind": step.key.kind,
            "namespace": step.key.namespace,
            "name": step.key.name,
            "health": health.name(),
            "message": health.message(),
        }));
        if health.severity() > worst.severity() {
            worst_at = step.key.to_string();
            worst = health;
        }
    }
    let (level, sync, message) = if !outcome.errors.is_empty() {
        ("error", "Failed", outcome.errors.join("; "))
    } else if !outcome.drift_ignored.is_empty() {
        let keys: Vec<String> = outcome.drift_ignored.iter().map(ToString::to_string).collect();
        ("warning", "Drifted", format!("changed in the cluster, not re-applied (self-heal off): {}", keys.join(", ")))
    } else {
        let level = match worst {
            Health::Healthy => "info",
            Health::Failed(_) | Health::Degraded(_) => "error",
            _ => "warning",
        };
        let message = match worst.message() {
            Some(why) => format!("{worst_at} is {}: {why}", worst.name()),
            None => format!("{} object(s) applied; {}", objects.len(), worst.name()),
        };
        (level, "Synced", message)
    };
    let item = json!({
        "type": STATUS_TYPE,
        "level": level,
        "message": message,
        "sync": sync,
        "health": worst.name(),
        "objects": objects,
    });
    (worst, item)
}

/// The status item of an entity whose plan failed: nothing was applied or pruned.
pub fn failure_item(failure: &Failure) -> Value {
    let sync = match failure.reason {
        "refused" => "Refused",
        "prune_blocked" => "PruneBlocked",
        _ => "Failed",
    };
    json!({
        "type": STATUS_TYPE,
        "level": "error",
        "message": failure.errors.join("; "),
        "sync": sync,
        "error": {"name": "ReconcileError", "message": failure.errors.join("; ")},
    })
}

/// `(apiVersion, kind, name)` of a reference; names are unique enough within one entity's
/// composition, and references do not always carry a namespace.
fn ref_key(reference: &Value) -> (String, String, String) {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    (text(&reference["apiVersion"]), text(&reference["kind"]), text(&reference["name"]))
}

/// Every object reachable through Crossplane references from `object`, fetched once, so that
/// health can be judged (synchronously) down to the managed resource that fails.
async fn referenced_objects(cluster: &Cluster, object: &Value) -> HashMap<(String, String, String), Value> {
    let mut found = HashMap::new();
    let mut frontier = vec![(object.clone(), 0usize)];
    while let Some((parent, depth)) = frontier.pop() {
        if depth >= MAX_REF_DEPTH {
            continue;
        }
        for reference in references(&parent) {
            let key = ref_key(&reference);
            if found.contains_key(&key) {
                continue;
            }
            let namespace = reference["namespace"].as_str().or_else(|| parent["metadata"]["namespace"].as_str());
            let object_key = ObjectKey {
                api_version: key.0.clone(),
                kind: key.1.clone(),
                namespace: namespace.map(str::to_owned),
                name: key.2.clone(),
            };
            if let Ok(Some(child)) = cluster.get(&object_key).await {
                frontier.push((child.clone(), depth + 1));
                found.insert(key, child);
            }
        }
    }
    found
}

fn references(object: &Value) -> Vec<Value> {
    let spec = &object["spec"];
    [&spec["resourceRef"], &spec["crossplane"]["resourceRef"]]
        .into_iter()
        .filter(|r| r.is_object())
        .chain(spec["resourceRefs"].as_array().into_iter().flatten())
        .chain(spec["crossplane"]["resourceRefs"].as_array().into_iter().flatten())
        .cloned()
        .collect()
}

/// Per source: how many entities are in each health, after the pass.
pub fn export_health(reconciler: &Reconciler, source: &str, report: &SourceReport) {
    for name in Health::NAMES {
        let count = report.entities.iter().filter(|e| e.health.as_ref().is_some_and(|h| h.name() == name)).count();
        reconciler
            .metrics
            .entity_health
            .with_label_values(&[source, name])
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }
}
