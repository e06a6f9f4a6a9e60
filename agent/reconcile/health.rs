//! Health of live objects, judged from their status alone: workloads by their rollout counters,
//! Crossplane claims and composite resources by the stricter rule of the reference (§1.6) —
//! walking to the managed resources to name a root cause — and other custom resources by their
//! `Ready` condition and `observedGeneration`. Kinds without status are healthy once they exist.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Healthy,
    /// Still converging (creating, rolling out, or the controller has not seen the last change).
    Progressing(String),
    Terminating,
    /// Reconciliation paused on purpose (`crossplane.io/paused`).
    Suspended,
    /// Will not converge without someone acting; the message says why.
    Failed(String),
    /// Was healthy, is not any more.
    Degraded(String),
}

impl Health {
    /// Every name, for metrics that report zero as well as non-zero counts.
    pub const NAMES: [&'static str; 6] = ["Healthy", "Progressing", "Terminating", "Suspended", "Failed", "Degraded"];

    pub fn name(&self) -> &'static str {
        match self {
            Self::Healthy => "Healthy",
            Self::Progressing(_) => "Progressing",
            Self::Terminating => "Terminating",
            Self::Suspended => "Suspended",
            Self::Failed(_) => "Failed",
            Self::Degraded(_) => "Degraded",
        }
    }

    pub fn message(&self) -> Option<&str> {
        match self {
            Self::Progressing(m) | Self::Failed(m) | Self::Degraded(m) => Some(m),
            _ => None,
        }
    }

    /// Orders healths from fine to worst, so a set of objects reports its worst.
    pub fn severity(&self) -> u8 {
        match self {
            Self::Healthy => 0,
            Self::Suspended => 1,
            Self::Terminating => 2,
            Self::Progressing(_) => 3,
            Self::Degraded(_) => 4,
            Self::Failed(_) => 5,
        }
    }
}

/// Finds a referenced object (a `{apiVersion, kind, name, namespace?}` reference) in the cluster.
pub type Lookup<'a> = &'a dyn Fn(&Value) -> Option<Value>;

pub fn assess(object: &Value, lookup: Lookup<'_>) -> Health {
    if !object["metadata"]["deletionTimestamp"].is_null() {
        return Health::Terminating;
    }
    match object["kind"].as_str().unwrap_or_default() {
        "Deployment" => deployment(object),
        "StatefulSet" => stateful_set(object),
        "DaemonSet" => daemon_set(object),
        "Job" => job(object),
        _ if is_crossplane(object) => crossplane(object, lookup),
        _ => generic(object),
    }
}

fn number(value: &Value) -> i64 {
    value.as_i64().unwrap_or(0)
}

fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == kind)
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// The controller has not yet looked at the latest spec.
fn stale(object: &Value) -> bool {
    let generation = number(&object["metadata"]["generation"]);
    let observed = &object["status"]["observedGeneration"];
    generation > 0 && !observed.is_null() && number(observed) < generation
}

fn deployment(object: &Value) -> Health {
    if stale(object) {
        return Health::Progressing("the rollout of the latest spec has not been observed yet".into());
    }
    if let Some(c) = condition(object, "Progressing").filter(|c| c["reason"] == "ProgressDeadlineExceeded") {
        return Health::Failed(format!("rollout stuck: {}", text(&c["message"])));
    }
    let status = &object["status"];
    let wanted = object["spec"]["replicas"].as_i64().unwrap_or(1);
    if number(&status["updatedReplicas"]) < wanted {
        return Health::Progressing(format!("{} of {wanted} replicas updated", number(&status["updatedReplicas"])));
    }
    if number(&status["availableReplicas"]) < wanted {
        return Health::Progressing(format!("{} of {wanted} replicas available", number(&status["availableReplicas"])));
    }
    Health::Healthy
}

fn stateful_set(object: &Value) -> Health {
    let status = &object["status"];
    let wanted = object["spec"]["replicas"].as_i64().unwrap_or(1);
    if stale(object) {
        Health::Progressing("the latest spec has not been observed yet".into())
    } else if number(&status["readyReplicas"]) < wanted || number(&status["updatedReplicas"]) < wanted {
        Health::Progressing(format!("{} of {wanted} replicas ready", number(&status["readyReplicas"])))
    } else if status["updateRevision"] != status["currentRevision"] && !status["updateRevision"].is_null() {
        Health::Progressing("update in progress".into())
    } else {
        Health::Healthy
    }
}

fn daemon_set(object: &Value) -> Health {
    let status = &object["status"];
    let wanted = number(&status["desiredNumberScheduled"]);
    if stale(object) {
        Health::Progressing("the latest spec has not been observed yet".into())
    } else if number(&status["updatedNumberScheduled"]) < wanted || number(&status["numberAvailable"]) < wanted {
        Health::Progressing(format!("{} of {wanted} pods available", number(&status["numberAvailable"])))
    } else {
        Health::Healthy
    }
}

fn job(object: &Value) -> Health {
    if condition(object, "Complete").is_some_and(|c| c["status"] == "True") {
        Health::Healthy
    } else if let Some(failed) = condition(object, "Failed").filter(|c| c["status"] == "True") {
        Health::Failed(format!("{}: {}", text(&failed["reason"]), text(&failed["message"])))
    } else {
        Health::Progressing("running".into())
    }
}

/// Claims and XRs point at what they compose; both carry `Synced` and `Ready`.
fn is_crossplane(object: &Value) -> bool {
    let spec = &object["spec"];
    !spec["resourceRef"].is_null()
        || !spec["resourceRefs"].is_null()
        || !spec["crossplane"].is_null()
        || !spec["compositionRef"].is_null()
        || !spec["compositionSelector"].is_null()
        || condition(object, "Synced").is_some()
}

/// The reference's §1.6, in its order.
fn crossplane(object: &Value, lookup: Lookup<'_>) -> Health {
    let generation = number(&object["metadata"]["generation"]);
    let conditions = object["status"]["conditions"].as_array().map(Vec::as_slice).unwrap_or_default();
    let behind =
        conditions.iter().any(|c| !c["observedGeneration"].is_null() && number(&c["observedGeneration"]) < generation);
    if conditions.is_empty() || behind {
        return Health::Progressing("Crossplane has not reconciled the latest spec yet".into());
    }
    if let Some(synced) = condition(object, "Synced").filter(|c| c["status"] == "False") {
        if synced["reason"] == "ReconcilePaused" {
            return Health::Suspended;
        }
        return Health::Failed(text(&synced["message"]));
    }
    let Some(ready) = condition(object, "Ready") else {
        return Health::Progressing("no Ready condition yet".into());
    };
    if ready["status"] == "True" {
        return Health::Healthy;
    }
    match ready["reason"].as_str().unwrap_or_default() {
        "Unavailable" => Health::Degraded(text(&ready["message"])),
        reason => match failing_managed_resource(object, lookup, 0) {
            Some(cause) => Health::Failed(cause),
            None => Health::Progressing(format!("{reason}: {}", text(&ready["message"]))),
        },
    }
}

/// How deep a claim → XR → nested XR → MR walk may go.
const MAX_DEPTH: usize = 4;

/// The first composed resource (walking claim → XR → managed resources) that is not synced,
/// named with its error: the root cause Crossplane does not surface on the claim (#5643).
fn failing_managed_resource(object: &Value, lookup: Lookup<'_>, depth: usize) -> Option<String> {
    if depth > MAX_DEPTH {
        return None;
    }
    let spec = &object["spec"];
    let refs: Vec<&Value> = [&spec["resourceRef"]]
        .into_iter()
        .filter(|r| r.is_object())
        .chain(spec["resourceRefs"].as_array().into_iter().flatten())
        .chain(spec["crossplane"]["resourceRefs"].as_array().into_iter().flatten())
        .collect();
    for reference in refs {
        let Some(child) = lookup(reference) else { continue };
        let name = format!("{} {}", text(&child["kind"]), text(&child["metadata"]["name"]));
        let unsynced =
            condition(&child, "Synced").filter(|c| c["status"] == "False" && c["reason"] != "ReconcilePaused");
        if let Some(c) = unsynced {
            return Some(format!("{name}: {}", text(&c["message"])));
        }
        if let Some(c) = condition(&child, "LastAsyncOperation").filter(|c| c["status"] == "False") {
            return Some(format!("{name}: {}", text(&c["message"])));
        }
        if let Some(cause) = failing_managed_resource(&child, lookup, depth + 1) {
            return Some(cause);
        }
    }
    None
}

/// Other custom resources: a `Ready` condition if there is one; no status means nothing to wait for.
fn generic(object: &Value) -> Health {
    if stale(object) {
        return Health::Progressing("the latest spec has not been observed yet".into());
    }
    match condition(object, "Ready") {
        Some(ready) if ready["status"] == "True" => Health::Healthy,
        Some(ready) => Health::Progressing(format!("{}: {}", text(&ready["reason"]), text(&ready["message"]))),
        None => Health::Healthy,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn none(_: &Value) -> Option<Value> {
        None
    }

    fn cond(kind: &str, status: &str, reason: &str, message: &str) -> Value {
        json!({"type": kind, "status": status, "reason": reason, "message": message, "observedGeneration": 1})
    }

    #[test]
    fn workloads_are_judged_by_their_rollout() {
        let mut d = json!({"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 3},
            "status": {"observedGeneration": 1, "updatedReplicas": 3, "availableReplicas": 3}});
        assert!(matches!(assess(&d, &none), Health::Progressing(_)), "generation not observed");
        d["status"]["observedGeneration"] = json!(2);
        assert_eq!(assess(&d, &none), Health::Healthy);
        d["status"]["availableReplicas"] = json!(1);
        assert_eq!(assess(&d, &none), Health::Progressing("1 of 3 replicas available".into()));
        d["status"]["conditions"] = json!([cond("Progressing", "False", "ProgressDeadlineExceeded", "image pull")]);
        assert_eq!(assess(&d, &none), Health::Failed("rollout stuck: image pull".into()));
        let failed_job = json!({"kind": "Job", "status": {"conditions": [cond("Failed", "True", "BackoffLimitExceeded", "6 failures")]}});
        assert_eq!(assess(&failed_job, &none), Health::Failed("BackoffLimitExceeded: 6 failures".into()));
        let gone = json!({"kind": "ConfigMap", "metadata": {"deletionTimestamp": "2026-11-28T00:00:00Z"}});
        assert_eq!(assess(&gone, &none), Health::Terminating);
        assert_eq!(assess(&json!({"kind": "ConfigMap", "metadata": {}}), &none), Health::Healthy);
    }

    #[test]
    fn crossplane_claims_follow_the_stricter_rule_and_name_the_root_cause() {
        let claim = |conditions: Value| {
            json!({"kind": "PostgreSQLInstance", "metadata": {"generation": 1},
                   "spec": {"resourceRef": {"apiVersion": "acme.io/v1", "kind": "XPostgreSQLInstance", "name": "db-x"}},
                   "status": {"conditions": conditions}})
        };
        assert!(matches!(assess(&claim(json!([])), &none), Health::Progressing(_)), "no conditions yet");
        let paused = claim(json!([cond("Synced", "False", "ReconcilePaused", "")]));
        assert_eq!(assess(&paused, &none), Health::Suspended);
        let error = claim(json!([cond("Synced", "False", "ReconcileError", "cannot compose")]));
        assert_eq!(assess(&error, &none), Health::Failed("cannot compose".into()));
        assert_eq!(
            assess(&claim(json!([cond("Synced", "True", "", ""), cond("Ready", "True", "Available", "")])), &none),
            Health::Healthy
        );
        let lost = claim(json!([cond("Synced", "True", "", ""), cond("Ready", "False", "Unavailable", "db down")]));
        assert_eq!(assess(&lost, &none), Health::Degraded("db down".into()));

        // Creating: walk claim → XR → managed resource; an unsynced MR is the root cause.
        let creating =
            claim(json!([cond("Synced", "True", "", ""), cond("Ready", "False", "Waiting", "waiting for XR")]));
        assert!(matches!(assess(&creating, &none), Health::Progressing(_)), "nothing failing below: needs time");
        let cluster = |reference: &Value| -> Option<Value> {
            match reference["name"].as_str()? {
                "db-x" => Some(json!({"kind": "XPostgreSQLInstance", "metadata": {"name": "db-x"},
                    "spec": {"crossplane": {"resourceRefs": [{"apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "Instance", "name": "db-x-rds"}]}}})),
                "db-x-rds" => Some(json!({"kind": "Instance", "metadata": {"name": "db-x-rds"},
                    "status": {"conditions": [cond("Synced", "False", "ReconcileError", "InvalidParameterValue: storage too small")]}})),
                _ => None,
            }
        };
        assert_eq!(
            assess(&creating, &cluster),
            Health::Failed("Instance db-x-rds: InvalidParameterValue: storage too small".into())
        );
        let mut stale = claim(json!([cond("Synced", "True", "", ""), cond("Ready", "True", "Available", "")]));
        stale["metadata"]["generation"] = json!(2);
        assert!(matches!(assess(&stale, &none), Health::Progressing(_)), "conditions older than the spec");
    }

    #[test]
    fn other_custom_resources_use_ready_and_observed_generation() {
        let ready = json!({"kind": "Certificate", "metadata": {"generation": 1}, "status": {"conditions": [cond("Ready", "True", "Issued", "")]}});
        assert_eq!(assess(&ready, &none), Health::Healthy);
        let waiting =
            json!({"kind": "Certificate", "status": {"conditions": [cond("Ready", "False", "Pending", "ACME order")]}});
        assert_eq!(assess(&waiting, &none), Health::Progressing("Pending: ACME order".into()));
    }
}
