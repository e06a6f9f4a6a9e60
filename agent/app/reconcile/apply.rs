//! Executing one entity's plan. Applies go in two stages (namespaces and CRDs, then the rest),
//! each dry-run as a whole on the server before anything of it is written; a failing object
//! does not stop its siblings; prunes run only when every apply succeeded.

use std::collections::BTreeMap;

use serde_json::Value;
use tracing::{info, warn};

use super::desired::EntityPlan;
use super::{status, EntityReport, ReconcileError};
use crate::app::sync::Context;
use crate::reconcile::cluster::{Cluster, ClusterError};
use crate::reconcile::plan::{owned_by, Action, ObjectKey, Step};
use crate::reconcile::APPLIED_HASH;

/// Kinds others depend on: applied (and dry-run) before everything else.
fn first_stage(kind: &str) -> bool {
    matches!(kind, "Namespace" | "CustomResourceDefinition")
}

/// What executing a plan did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The object as the server returned it, for each applied step.
    pub applied: BTreeMap<ObjectKey, Value>,
    pub errors: Vec<String>,
    pub drift_corrected: u64,
    /// Drifted objects left alone because the entity turned self-heal off.
    pub drift_ignored: Vec<ObjectKey>,
    /// An error was the API server's unavailability: worth a retry.
    pub unavailable: bool,
}

impl Outcome {
    fn fail(&mut self, what: impl std::fmt::Display, error: &ClusterError) {
        self.unavailable |= error.is_transient();
        self.errors.push(format!("{what}: {error}"));
    }
}

/// `rigger plan`: the steps, with every create and update dry-run on the server.
pub async fn dry_run(cluster: &Cluster, plan: EntityPlan) -> EntityReport {
    let mut outcome = Outcome::default();
    let writes: Vec<&Step> = plan.plan.steps.iter().filter(|s| s.object.is_some()).collect();
    for step in &writes {
        if let Err(err) = apply_step(cluster, &plan, step, true, &mut outcome).await {
            outcome.fail(step.key.to_string(), &err);
        }
    }
    outcome.errors.extend(plan.blocked.clone());
    EntityReport {
        entity_ref: plan.entity_ref.clone(),
        steps: plan.plan.steps.iter().map(|s| (s.action, s.key.clone())).collect(),
        errors: outcome.errors,
        health: None,
        retry: outcome.unavailable,
    }
}

/// Applies, prunes, records the inventory and the entity's status.
pub async fn execute(
    ctx: &Context,
    cluster: &Cluster,
    source: &str,
    plan: EntityPlan,
) -> Result<EntityReport, ReconcileError> {
    let mut outcome = Outcome::default();
    let (first, rest): (Vec<&Step>, Vec<&Step>) =
        plan.plan.steps.iter().filter(|s| s.object.is_some()).partition(|s| first_stage(&s.key.kind));
    for stage in [first, rest] {
        if !outcome.errors.is_empty() {
            break;
        }
        run_stage(cluster, &plan, &stage, &mut outcome).await;
    }
    let pruned = if outcome.errors.is_empty() { prune(cluster, &plan, &mut outcome).await } else { Vec::new() };
    count(ctx, source, &plan, &outcome, &pruned);
    ctx.store.record_inventory(source, &plan.entity_ref, &plan.before, &inventory_after(&plan, &pruned)).await?;
    outcome.errors.extend(plan.blocked.clone());
    let health = if plan.exists {
        let (health, item) = status::assess(cluster, &plan, &outcome).await;
        ctx.store.set_cluster_status(&plan.entity_ref, Some(&item)).await?;
        Some(health)
    } else {
        None
    };
    if !outcome.errors.is_empty() {
        warn!(source, entity = %plan.entity_ref, errors = ?outcome.errors, "cluster reconcile incomplete");
    }
    Ok(EntityReport {
        entity_ref: plan.entity_ref.clone(),
        steps: plan.plan.steps.iter().map(|s| (s.action, s.key.clone())).collect(),
        errors: outcome.errors,
        health,
        retry: outcome.unavailable,
    })
}

/// Dry-runs every write of the stage, then (when all passed) applies each for real.
async fn run_stage(cluster: &Cluster, plan: &EntityPlan, stage: &[&Step], outcome: &mut Outcome) {
    let mut rehearsal = Outcome::default();
    for step in stage {
        if let Err(err) = apply_step(cluster, plan, step, true, &mut rehearsal).await {
            outcome.fail(format!("{} (dry run)", step.key), &err);
        }
    }
    if !outcome.errors.is_empty() {
        return;
    }
    for step in stage {
        if let Err(err) = apply_step(cluster, plan, step, false, outcome).await {
            outcome.fail(step.key.to_string(), &err);
        }
    }
}

/// One server-side apply. A conflict is forced only when the entity opts in, or when every
/// manager it conflicts with edited the object by hand (an update, not an apply) and the
/// entity self-heals: that is drift, and git wins. Conflicts with other appliers are reported.
async fn apply_step(
    cluster: &Cluster,
    plan: &EntityPlan,
    step: &Step,
    dry_run: bool,
    outcome: &mut Outcome,
) -> Result<(), ClusterError> {
    let Some(object) = &step.object else { return Ok(()) };
    let live = plan.live.get(&step.key);
    let drift = step.action == Action::Update && live.is_some_and(|l| same_applied_hash(l, object));
    if drift && !plan.self_heal {
        outcome.drift_ignored.push(step.key.clone());
        return Ok(());
    }
    let applied = match cluster.apply(object, dry_run, plan.force).await {
        Err(ClusterError::Conflict { managers, .. })
            if !plan.force && plan.self_heal && live.is_some_and(|l| only_hand_edits(l, &managers)) =>
        {
            info!(object = %step.key, ?managers, "taking back fields edited by hand");
            cluster.apply(object, dry_run, true).await?
        }
        other => other?,
    };
    if !dry_run {
        outcome.drift_corrected += u64::from(drift);
        outcome.applied.insert(step.key.clone(), applied);
    }
    Ok(())
}

/// The live object still carries the hash of what Rigger would apply now: git has not
/// changed it, the cluster has.
fn same_applied_hash(live: &Value, desired: &Value) -> bool {
    let hash = |o: &Value| o["metadata"]["annotations"][APPLIED_HASH].clone();
    !hash(live).is_null() && hash(live) == hash(desired)
}

/// Every manager named in the conflict wrote by update (an edit, a patch), not by apply.
fn only_hand_edits(live: &Value, managers: &[String]) -> bool {
    let entries = live["metadata"]["managedFields"].as_array().map(Vec::as_slice).unwrap_or_default();
    managers.iter().all(|manager| {
        let theirs: Vec<&Value> = entries.iter().filter(|e| e["manager"] == manager.as_str()).collect();
        !theirs.is_empty() && theirs.iter().all(|e| e["operation"] == "Update")
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
    let kept = plan
        .before
        .iter()
        .filter(|k| !pruned.contains(k))
        .filter(|k| plan.live.get(*k).is_some_and(|l| owned_by(l, &plan.entity_ref)))
        .cloned();
    declared.chain(kept).collect()
}

fn count(ctx: &Context, source: &str, plan: &EntityPlan, outcome: &Outcome, pruned: &[ObjectKey]) {
    for key in outcome.applied.keys() {
        let existed = plan.live.contains_key(key);
        let action = if existed { "update" } else { "create" };
        ctx.metrics.reconcile_objects.with_label_values(&[source, action]).inc();
    }
    ctx.metrics.reconcile_objects.with_label_values(&[source, "prune"]).inc_by(pruned.len() as u64);
    ctx.metrics.drift_corrections.with_label_values(&[source]).inc_by(outcome.drift_corrected);
    if !outcome.errors.is_empty() {
        let reason = if outcome.errors.iter().any(|e| e.contains("conflict")) { "conflict" } else { "apply" };
        ctx.metrics.reconcile_errors.with_label_values(&[source, reason]).inc();
    }
    if plan.blocked.is_some() {
        ctx.metrics.reconcile_errors.with_label_values(&[source, "prune_blocked"]).inc();
    }
}
