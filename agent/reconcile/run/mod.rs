//! The cluster half of a pass, with its effects: for one source, every entity that declares
//! objects with `rigger.dev/manifests` is planned against the live cluster (desired vs. live vs. inventory),
//! guarded (tenancy, mass deletion), dry-run, applied in stages, pruned, judged for health, and
//! its state written back to the catalog. Entities that left git have their objects pruned.

mod apply;
mod desired;
mod outcome;
mod ownership;
mod status;

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use tracing::{debug, info, warn};

use self::desired::{EntityPlan, Failure, SourceView};
use crate::config::{SourceConfig, SourceKind};
use crate::reconcile::cluster::ClusterError;
use crate::reconcile::guard::source_prune_fraction;
use crate::reconcile::health::Health;
use crate::reconcile::plan::{Action, ObjectKey};
use crate::reconcile::reconciler::{ReconcileError, Reconciler};
use crate::source::FileTree;
use crate::store::ManagedEntity;

/// Sources with fewer objects than this are not held to `max_prune_fraction`: removing one of
/// a handful of objects is an ordinary change, not the sign of a broken checkout.
pub const PRUNE_GUARD_MIN_OBJECTS: usize = 10;

/// Whether a run changes the cluster or only says what it would change (`rigger plan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Apply,
    Plan,
}

/// What a run did (or would do) for one entity.
#[derive(Debug, Clone)]
pub struct EntityReport {
    pub entity_ref: String,
    /// The steps planned: create, update, unchanged, prune.
    pub steps: Vec<(Action, ObjectKey)>,
    pub errors: Vec<String>,
    /// After an apply; `None` in plan mode, on failure, or for an entity that left git.
    pub health: Option<Health>,
    /// Some of it failed for a reason that may pass (API server unavailable, kind not served yet).
    pub retry: bool,
}

/// What a run did for one source. `unavailable`: some of it failed for a reason that may pass
/// (the API server did not answer, a kind is not served yet), so a retry is due.
#[derive(Debug, Clone, Default)]
pub struct SourceReport {
    pub entities: Vec<EntityReport>,
    pub unavailable: bool,
}

impl SourceReport {
    pub fn has_errors(&self) -> bool {
        self.entities.iter().any(|e| !e.errors.is_empty())
    }
}

/// Reconciles one source whose catalog is in the store, at the revision last synced. `tree`
/// reads the source's files at that revision; it is awaited only when the source has entities
/// that declare objects, or objects left to prune.
pub async fn reconcile_stored(
    reconciler: &Reconciler,
    source: &SourceConfig,
    tree: impl Future<Output = Result<Arc<dyn FileTree>, String>>,
) -> Result<SourceReport, ReconcileError> {
    if matches!(source.kind, SourceKind::Github(_)) {
        // Each repository of an organisation is a source of its own.
        return Ok(SourceReport::default());
    }
    let entities = reconciler.store.managed_entities(&source.name).await?;
    let inventory = reconciler.store.inventory(&source.name).await?;
    if entities.is_empty() && inventory.is_empty() {
        return Ok(SourceReport::default());
    }
    let tree = tree.await.map_err(ReconcileError::Tree)?;
    reconcile(reconciler, source, &entities, &inventory, &[], tree.as_ref(), Mode::Apply).await
}

/// Plans every entity of the source, applies the guards across it, then (in apply mode)
/// executes each entity's plan and records inventory, status and metrics. `failing` names
/// entities whose documents are in error: they are neither applied nor treated as gone.
#[allow(clippy::too_many_arguments)]
pub async fn reconcile(
    reconciler: &Reconciler,
    source: &SourceConfig,
    entities: &[ManagedEntity],
    inventory: &BTreeMap<String, Vec<ObjectKey>>,
    failing: &[String],
    tree: &dyn FileTree,
    mode: Mode,
) -> Result<SourceReport, ReconcileError> {
    reconciler.check_reachable()?;
    let cluster = reconciler.cluster(source.tenancy.impersonate.as_deref()).await?;
    let reader = reconciler.cluster(None).await?;
    reconciler.remember_owners(&source.name, entities.iter().map(|e| e.entity_ref.clone()));
    let max_bytes = reconciler.max_file_bytes;
    let mut plans: Vec<Result<EntityPlan, (String, Failure)>> = Vec::new();
    let mut view = SourceView::default();
    view.held.extend(failing.iter().cloned());
    view.held.extend(entities.iter().filter(|e| e.orphan).map(|e| e.entity_ref.clone()));
    let mut declared = Vec::new();
    for entity in entities.iter().filter(|e| !e.orphan) {
        let tenancy = crate::reconcile::guard::Tenancy::granted(&source.tenancy, &entity.namespace);
        match desired::declare(&cluster, tree, entity, &tenancy, max_bytes).await {
            Ok(found) => declared.push(found),
            Err(failure) if failure.reason == "cluster" && failure.retry => return Err(down(reconciler, &failure)),
            Err(failure) => {
                view.held.insert(entity.entity_ref.clone());
                plans.push(Err((entity.entity_ref.clone(), failure)));
            }
        }
    }
    for found in &declared {
        for key in found.objects.iter().filter_map(ObjectKey::of) {
            view.declared_by.entry(key.identity()).or_default().push(found.entity_ref.clone());
        }
    }
    view.kept.extend(view.declared_by.keys().cloned());
    // What an entity elsewhere waits for is handed over as it stands when its holder lets go.
    view.kept.extend(reconciler.store.wanted_elsewhere(&source.name).await?);
    for held in &view.held {
        view.kept.extend(inventory.get(held).into_iter().flatten().map(ObjectKey::identity));
    }
    let claims = ownership::Claims { store: &reconciler.store, source: &source.name, take: mode == Mode::Apply };
    let mut refusals = Refusals::read(reconciler, source, mode).await?;
    for found in declared {
        let before = inventory.get(&found.entity_ref).cloned().unwrap_or_default();
        let entity_ref = found.entity_ref.clone();
        let keys: Vec<ObjectKey> = found.objects.iter().filter_map(ObjectKey::of).collect();
        let claimed = claims.ask(&entity_ref, &keys, &view).await?;
        refusals.record(reconciler, source, &entity_ref, &claimed.refused).await?;
        if !claimed.refusals.is_empty() {
            plans.push(Err((entity_ref, Failure::new("claimed", claimed.refusals))));
            continue;
        }
        match desired::plan_declared(&cluster, found, before, &view).await {
            Err(failure) if failure.reason == "cluster" && failure.retry => return Err(down(reconciler, &failure)),
            planned => plans.push(planned.map_err(|f| (entity_ref, f))),
        }
    }
    let present: HashSet<&str> =
        entities.iter().map(|e| e.entity_ref.as_str()).chain(view.held.iter().map(String::as_str)).collect();
    for (entity_ref, before) in inventory.iter().filter(|(r, _)| !present.contains(r.as_str())) {
        if moved_away(reconciler, source, entity_ref, mode).await? {
            continue;
        }
        match desired::plan_gone(&cluster, entity_ref, before.clone(), &view).await {
            Err(failure) if failure.reason == "cluster" && failure.retry => return Err(down(reconciler, &failure)),
            planned => plans.push(planned.map_err(|f| (entity_ref.clone(), f))),
        }
    }
    let planned: HashSet<&str> = entities.iter().filter(|e| !e.orphan).map(|e| e.entity_ref.as_str()).collect();
    refusals.finish(reconciler, source, &planned, &view.held).await?;
    spare_claimed(reconciler, &mut plans).await?;
    guard_source(reconciler, source, inventory, &mut plans);
    let mut report = SourceReport::default();
    for planned in plans {
        let entity_report = match planned {
            Ok(plan) if mode == Mode::Plan => apply::dry_run(&cluster, plan).await,
            Ok(plan) => apply::execute(reconciler, &cluster, &reader, &source.name, plan).await?,
            Err((entity_ref, failure)) => {
                failed(reconciler, &source.name, &entity_ref, &failure, mode).await?;
                EntityReport {
                    entity_ref,
                    steps: Vec::new(),
                    errors: failure.errors,
                    health: None,
                    retry: failure.retry,
                }
            }
        };
        report.unavailable |= entity_report.retry;
        report.entities.push(entity_report);
    }

    if mode == Mode::Apply {
        status::export_health(reconciler, &source.name, &report);
        reconciler.applied_kinds.extend(report.entities.iter().flat_map(|e| e.steps.iter().map(|(_, k)| k)));
        let changed = report.entities.iter().flat_map(|e| &e.steps).filter(|(a, _)| *a != Action::Unchanged).count();
        if changed > 0 {
            info!(source = %source.name, entities = report.entities.len(), changed, "cluster reconciled");
        } else {
            debug!(source = %source.name, entities = report.entities.len(), "cluster reconciled; nothing changed");
        }
    }
    Ok(report)
}

/// Refused claims as the store has them for a source, kept current through a pass (apply mode
/// only: `rigger plan` records nothing).
struct Refusals {
    /// Entities of the source with refusals on record before this pass.
    before: HashSet<String>,
    /// Objects refused in this pass.
    refused: usize,
    record: bool,
}

impl Refusals {
    async fn read(reconciler: &Reconciler, source: &SourceConfig, mode: Mode) -> Result<Self, ReconcileError> {
        let record = mode == Mode::Apply;
        let before = if record {
            reconciler.store.refused_claimants(&source.name).await?.into_iter().collect()
        } else {
            HashSet::new()
        };
        Ok(Self { before, refused: 0, record })
    }

    /// What one entity was refused now (nothing: its earlier refusals are cleared).
    async fn record(
        &mut self,
        reconciler: &Reconciler,
        source: &SourceConfig,
        entity_ref: &str,
        refused: &[crate::reconcile::plan::Identity],
    ) -> Result<(), ReconcileError> {
        self.refused += refused.len();
        if !self.record || (refused.is_empty() && !self.before.remove(entity_ref)) {
            return Ok(());
        }
        let claimant = crate::store::Holder { entity_ref: entity_ref.to_owned(), source: source.name.clone() };
        reconciler.store.record_refusals(&claimant, refused).await?;
        Ok(())
    }

    /// Clears the refusals of entities that no longer ask (left the catalog or stopped
    /// declaring objects), and exports the count.
    async fn finish(
        &mut self,
        reconciler: &Reconciler,
        source: &SourceConfig,
        planned: &HashSet<&str>,
        held: &HashSet<String>,
    ) -> Result<(), ReconcileError> {
        if !self.record {
            return Ok(());
        }
        let gone: Vec<String> =
            self.before.iter().filter(|e| !planned.contains(e.as_str()) && !held.contains(*e)).cloned().collect();
        for entity_ref in gone {
            self.record(reconciler, source, &entity_ref, &[]).await?;
        }
        #[allow(clippy::cast_possible_wrap)] // object counts are far below 2^63
        reconciler.metrics.claims_refused.with_label_values(&[source.name.as_str()]).set(self.refused as i64);
        Ok(())
    }
}

/// An object another entity has claimed since (a source that waited for it, in a pass running
/// beside this one) is handed over, not pruned.
async fn spare_claimed(
    reconciler: &Reconciler,
    plans: &mut [Result<EntityPlan, (String, Failure)>],
) -> Result<(), ReconcileError> {
    for plan in plans.iter_mut().flatten() {
        let pruned: Vec<crate::reconcile::plan::Identity> =
            plan.plan.steps.iter().filter(|s| s.action == Action::Prune).map(|s| s.key.identity()).collect();
        if pruned.is_empty() {
            continue;
        }
        let holders = reconciler.store.claim_holders(&pruned).await?;
        let taken: HashSet<_> = pruned
            .into_iter()
            .zip(holders)
            .filter(|(_, holder)| holder.as_ref().is_some_and(|h| h.entity_ref != plan.entity_ref))
            .map(|(identity, _)| identity)
            .collect();
        plan.plan.steps.retain(|s| s.action != Action::Prune || !taken.contains(&s.key.identity()));
    }
    Ok(())
}

/// Across the source: a pass that would prune more than `max_prune_fraction` of its objects
/// prunes nothing, and says so on every entity it would have pruned from.
fn guard_source(
    reconciler: &Reconciler,
    source: &SourceConfig,
    inventory: &BTreeMap<String, Vec<ObjectKey>>,
    plans: &mut [Result<EntityPlan, (String, Failure)>],
) {
    let kubernetes = reconciler.config();
    let total: usize = inventory.values().map(Vec::len).sum();
    // Entities that allow mass pruning (`rigger.dev/allow-mass-prune`) are not counted or held.
    let guarded = |p: &&mut EntityPlan| !p.policy.allow_mass_prune;
    let pruned: usize = plans.iter_mut().flatten().filter(guarded).map(|p| p.plan.count(Action::Prune)).sum();
    if total < PRUNE_GUARD_MIN_OBJECTS {
        return;
    }
    let Some(message) = source_prune_fraction(pruned, total, kubernetes.max_prune_fraction) else { return };
    warn!(source = %source.name, pruned, total, "prune blocked by the mass-deletion guard");
    reconciler.metrics.prune_blocked.with_label_values(&[source.name.as_str()]).inc();
    for plan in plans.iter_mut().flatten().filter(guarded) {
        if plan.plan.count(Action::Prune) > 0 {
            plan.plan.steps.retain(|s| s.action != Action::Prune);
            plan.blocked = Some(format!("{message} (kubernetes.max_prune_fraction)"));
        }
    }
}

/// The API server stopped answering while planning: nothing of the source is executed (a
/// half-planned source could prune what an unplanned entity declares), and passes skip the
/// cluster for a moment.
fn down(reconciler: &Reconciler, failure: &Failure) -> ReconcileError {
    reconciler.set_reachable(false);
    ReconcileError::Cluster(ClusterError::Unavailable { message: failure.errors.join("; "), retry_after: None })
}

/// An entity in this source's inventory that the catalog now has from another source: its
/// objects went with it, so this source forgets them instead of pruning them.
async fn moved_away(
    reconciler: &Reconciler,
    source: &SourceConfig,
    entity_ref: &str,
    mode: Mode,
) -> Result<bool, ReconcileError> {
    let Some(now) = reconciler.store.entity(entity_ref).await? else { return Ok(false) };
    if now.source == source.name {
        return Ok(false);
    }
    if mode == Mode::Apply {
        info!(source = %source.name, entity = entity_ref, now = %now.source, "entity moved to another source; its objects go with it");
        reconciler.store.forget_inventory(&source.name, entity_ref).await?;
    }
    Ok(true)
}

/// An entity that could not be planned: its objects are left as they are, the error goes on
/// the entity and into the metrics.
async fn failed(
    reconciler: &Reconciler,
    source: &str,
    entity_ref: &str,
    failure: &Failure,
    mode: Mode,
) -> Result<(), ReconcileError> {
    let errors = failure.errors.join("; ");
    if reconciler.log_memory.is_news(&reconcile_subject(entity_ref), &errors) {
        warn!(source = %source, entity = entity_ref, reason = failure.reason, errors = %errors, "cluster reconcile failed");
    } else {
        debug!(source = %source, entity = entity_ref, reason = failure.reason, "cluster reconcile failed again");
    }
    if mode == Mode::Apply {
        reconciler.metrics.reconcile_errors.with_label_values(&[source, failure.reason]).inc();
        let item = status::failure_item(failure);
        reconciler.store.set_cluster_status(entity_ref, Some(&item)).await?;
    }
    Ok(())
}

/// The log memory's subject for an entity's cluster reconcile.
fn reconcile_subject(entity_ref: &str) -> String {
    format!("cluster reconcile of {entity_ref}")
}
