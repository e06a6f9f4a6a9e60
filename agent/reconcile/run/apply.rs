//! Executing one entity's plan. Applies go in two stages (namespaces and CRDs, then the rest).
//! Each stage is dry-run on the server as a whole first: one object that fails its dry run
//! stops its whole stage, so a set is never half-applied for a reason the server could tell in
//! advance. In the real apply a failing object does not stop its siblings. Prunes run only when
//! every apply succeeded.

use std::collections::HashSet;

use serde_json::Value;
use tracing::{info, warn};

use super::desired::EntityPlan;
use super::outcome::Outcome;
use super::{status, EntityReport, ReconcileError};
use crate::reconcile::cluster::{Cluster, ClusterError};
use crate::reconcile::plan::{owned_by, Action, ObjectKey, Step};
use crate::reconcile::reconciler::Reconciler;
use crate::reconcile::APPLIED_HASH;

/// Field managers that are people editing by hand (`kubectl edit`, `patch`, `scale`, `label`,
/// client-side `apply`…). A self-healing entity takes fields back from these; a conflict with
/// any other manager — a controller such as an HPA, another applier — is reported, not forced.
const HAND_EDIT_PREFIX: &str = "kubectl";

/// Kinds others depend on: applied (and dry-run) before everything else.
fn first_stage(kind: &str) -> bool {
    matches!(kind, "Namespace" | "CustomResourceDefinition")
}

/// `rigger plan`: the steps, with every create and update dry-run on the server.
pub async fn dry_run(cluster: &Cluster, plan: EntityPlan) -> EntityReport {
    let mut outcome = Outcome::default();
    let writes: Vec<&Step> = plan.plan.steps.iter().filter(|s| s.object.is_some()).collect();
    rehearse(cluster, &plan, &writes, &mut outcome).await;
    outcome.errors.extend(plan.blocked.clone());
    report(&plan, outcome, None)
}

/// Applies, prunes, records the inventory and the entity's status (health read as `reader`,
/// Rigger itself: a tenant's account may not see the managed resources behind its claims).
pub async fn execute(
    reconciler: &Reconciler,
    cluster: &Cluster,
    reader: &Cluster,
    source: &str,
    plan: EntityPlan,
) -> Result<EntityReport, ReconcileError> {
    let mut outcome = Outcome::default();
    let (first, rest): (Vec<&Step>, Vec<&Step>) =
        plan.plan.steps.iter().filter(|s| s.object.is_some()).partition(|s| first_stage(&s.key.kind));
    let crds_applied = first.iter().any(|s| s.key.kind == "CustomResourceDefinition");
    for (index, stage) in [first, rest].into_iter().enumerate() {
        if !outcome.errors.is_empty() {
            break;
        }
        if index == 1 && crds_applied {
            served(cluster, &stage).await;
        }
        run_stage(cluster, &plan, &stage, &mut outcome).await;
    }
    let pruned = if outcome.errors.is_empty() { prune(cluster, &plan, &mut outcome).await } else { Vec::new() };
    count(reconciler, source, &plan, &outcome, &pruned);
    reconciler.store.record_inventory(source, &plan.entity_ref, &plan.before, &inventory_after(&plan, &pruned)).await?;
    reconciler.store.settle_claims(&plan.entity_ref, &claims_after(&plan)).await?;
    outcome.errors.extend(plan.blocked.clone());
    let health = if plan.exists {
        let (health, item) = status::assess(reader, &plan, &outcome).await;
        reconciler.store.set_cluster_status(&plan.entity_ref, Some(&item)).await?;
        Some(health)
    } else {
        // It stopped declaring manifests (or left git): no cluster status to show any more.
        reconciler.store.set_cluster_status(&plan.entity_ref, None).await?;
        None
    };
    let subject = super::reconcile_subject(&plan.entity_ref);
    if outcome.errors.is_empty() {
        if reconciler.log_memory.clear(&subject) {
            info!(source = %source, entity = %plan.entity_ref, "cluster reconcile succeeded again");
        }
    } else {
        let errors = outcome.errors.join("; ");
        if reconciler.log_memory.is_news(&subject, &errors) {
            warn!(source = %source, entity = %plan.entity_ref, errors = %errors, "cluster reconcile incomplete");
        }
    }
    Ok(report(&plan, outcome, health))
}

fn report(plan: &EntityPlan, outcome: Outcome, health: Option<crate::reconcile::health::Health>) -> EntityReport {
    let steps = plan
        .plan
        .steps
        .iter()
        .map(|s| (if outcome.settled.contains(&s.key) { Action::Unchanged } else { s.action }, s.key.clone()))
        .collect();
    EntityReport {
        entity_ref: plan.entity_ref.clone(),
        steps,
        errors: outcome.errors,
        health,
        retry: outcome.unavailable,
    }
}

/// How long custom resources wait for the CRD applied just before them to be served.
const CRD_ESTABLISH_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Waits (boundedly) until the cluster serves every kind of the stage: a CRD applied a moment
/// ago is established asynchronously by the API server. A kind still unknown after the wait
/// fails the stage's dry run, and the pass is retried with backoff.
async fn served(cluster: &Cluster, stage: &[&Step]) {
    let deadline = tokio::time::Instant::now() + CRD_ESTABLISH_WAIT;
    let mut delay = std::time::Duration::from_millis(100);
    for step in stage {
        while let Err(ClusterError::UnknownKind { .. }) = cluster.kind(&step.key.api_version, &step.key.kind).await {
            if tokio::time::Instant::now() + delay > deadline {
                return;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(std::time::Duration::from_secs(2));
        }
    }
}

/// Dry-runs every write of the stage, then (when all passed) applies each for real.
async fn run_stage(cluster: &Cluster, plan: &EntityPlan, stage: &[&Step], outcome: &mut Outcome) {
    rehearse(cluster, plan, stage, outcome).await;
    if !outcome.errors.is_empty() {
        return;
    }
    for step in stage {
        let Some(object) = step.object.as_ref().filter(|_| !outcome.settled.contains(&step.key)) else { continue };
        let drift = is_drift(plan, step);
        if drift && !plan.policy.self_heal {
            outcome.drift_ignored.push(step.key.clone());
            continue;
        }
        match apply(cluster, plan, step, object, false).await {
            Ok(applied) => {
                outcome.drift_corrected += u64::from(drift);
                outcome.applied.insert(step.key.clone(), applied);
            }
            Err(err) => outcome.fail(&step.key, &err),
        }
    }
}

/// The server-side dry run of each write. A step that only looked drifted (the dry run equals
/// the live object) is settled: no write. For suspected drift the dry run takes the fields
/// back (force), so the comparison shows what self-heal would do; nothing is persisted.
async fn rehearse(cluster: &Cluster, plan: &EntityPlan, steps: &[&Step], outcome: &mut Outcome) {
    for step in steps {
        let Some(object) = &step.object else { continue };
        let drift = is_drift(plan, step);
        let result = if drift {
            cluster.apply(object, true, true).await
        } else {
            apply(cluster, plan, step, object, true).await
        };
        match result {
            Ok(dry) if drift && plan.live.get(&step.key).is_some_and(|live| same_state(&dry, live)) => {
                outcome.settled.insert(step.key.clone());
            }
            Ok(_) => {}
            Err(err) => outcome.fail(format_args!("{} (dry run)", step.key), &err),
        }
    }
}

/// One server-side apply. A conflict is forced only when the entity opts in, or when every
/// manager it conflicts with is a hand edit and the entity self-heals: that is drift, and git
/// wins. Conflicts with controllers and other appliers are reported.
async fn apply(
    cluster: &Cluster,
    plan: &EntityPlan,
    step: &Step,
    object: &Value,
    dry_run: bool,
) -> Result<Value, ClusterError> {
    match cluster.apply(object, dry_run, plan.policy.force).await {
        Err(ClusterError::Conflict { managers, .. })
            if !plan.policy.force
                && plan.policy.self_heal
                && plan.live.get(&step.key).is_some_and(|l| only_hand_edits(l, &managers)) =>
        {
            if !dry_run {
                info!(object = %step.key, managers = %managers.join(", "), "taking back fields edited by hand");
            }
            cluster.apply(object, dry_run, true).await
        }
        other => other,
    }
}

/// An update of an object whose live copy still carries the hash of what Rigger would apply
/// now: git has not changed it, the cluster has (or merely normalised it).
fn is_drift(plan: &EntityPlan, step: &Step) -> bool {
    let hash = |o: &Value| o["metadata"]["annotations"][APPLIED_HASH].clone();
    step.action == Action::Update
        && step
            .object
            .as_ref()
            .zip(plan.live.get(&step.key))
            .is_some_and(|(d, l)| !hash(l).is_null() && hash(l) == hash(d))
}

/// Two versions of an object hold the same state, bookkeeping aside.
fn same_state(a: &Value, b: &Value) -> bool {
    fn comparable(object: &Value) -> Value {
        let mut object = object.clone();
        if let Some(root) = object.as_object_mut() {
            root.remove("status");
        }
        if let Some(metadata) = object["metadata"].as_object_mut() {
            for field in crate::reconcile::plan::SERVER_FIELDS {
                metadata.remove(field);
            }
        }
        object
    }
    comparable(a) == comparable(b)
}

/// Every manager named in the conflict is a person's edit: a `kubectl…` manager that wrote by
/// update, not by apply.
fn only_hand_edits(live: &Value, managers: &[String]) -> bool {
    let entries = live["metadata"]["managedFields"].as_array().map(Vec::as_slice).unwrap_or_default();
    managers.iter().all(|manager| {
        let theirs: Vec<&Value> = entries.iter().filter(|e| e["manager"] == manager.as_str()).collect();
        manager.starts_with(HAND_EDIT_PREFIX) && !theirs.is_empty() && theirs.iter().all(|e| e["operation"] == "Update")
    })
}

async fn prune(cluster: &Cluster, plan: &EntityPlan, outcome: &mut Outcome) -> Vec<ObjectKey> {
    let mut pruned = Vec::new();
    for step in plan.plan.steps.iter().filter(|s| s.action == Action::Prune) {
        match cluster.delete(&step.key).await {
            Ok(()) => pruned.push(step.key.clone()),
            Err(err) => outcome.fail(format!("{} (prune)", step.key), &err),
        }
    }
    pruned
}

/// Declared objects, plus earlier ones that are still Rigger's and were not pruned (a blocked
/// or failed prune is tried again next time). Objects gone or taken over are forgotten.
fn inventory_after(plan: &EntityPlan, pruned: &[ObjectKey]) -> Vec<ObjectKey> {
    let declared = plan.plan.steps.iter().filter(|s| s.action != Action::Prune).map(|s| s.key.clone());
    let declared_ids: HashSet<_> =
        plan.plan.steps.iter().filter(|s| s.action != Action::Prune).map(|s| s.key.identity()).collect();
    let kept = plan
        .before
        .iter()
        .filter(|k| !pruned.contains(k) && !declared_ids.contains(&k.identity()))
        .filter(|k| plan.live.get(*k).is_some_and(|l| owned_by(l, &plan.entity_ref)))
        .cloned();
    declared.chain(kept).collect()
}

/// The objects an entity holds after its pass: what it declares, and while a guard held its
/// prunes back, what it had (it has not let go of them yet).
fn claims_after(plan: &EntityPlan) -> Vec<crate::reconcile::plan::Identity> {
    let declared = plan.plan.steps.iter().filter(|s| s.action != Action::Prune).map(|s| s.key.identity());
    let held = plan.blocked.is_some().then(|| plan.before.iter().map(ObjectKey::identity)).into_iter().flatten();
    declared.chain(held).collect()
}

fn count(reconciler: &Reconciler, source: &str, plan: &EntityPlan, outcome: &Outcome, pruned: &[ObjectKey]) {
    for key in outcome.applied.keys() {
        let existed = plan.live.contains_key(key);
        let action = if existed { "update" } else { "create" };
        reconciler.metrics.reconcile_objects.with_label_values(&[source, action]).inc();
    }
    reconciler.metrics.reconcile_objects.with_label_values(&[source, "prune"]).inc_by(pruned.len() as u64);
    reconciler.metrics.drift_corrections.with_label_values(&[source]).inc_by(outcome.drift_corrected);
    if !outcome.errors.is_empty() {
        let reason = if outcome.errors.iter().any(|e| e.contains("conflict")) { "conflict" } else { "apply" };
        reconciler.metrics.reconcile_errors.with_label_values(&[source, reason]).inc();
    }
    if plan.blocked.is_some() {
        reconciler.metrics.reconcile_errors.with_label_values(&[source, "prune_blocked"]).inc();
    }
}
