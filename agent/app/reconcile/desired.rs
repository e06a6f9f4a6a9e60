//! One entity's plan: the objects its manifests declare (read all or nothing, labelled as
//! Rigger's, admitted by the source's tenancy), what the cluster holds for them and for the
//! entity's inventory, and the steps between the two.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::reconcile::cluster::{Cluster, ClusterError};
use crate::reconcile::guard::{mass_prune, Tenancy};
use crate::reconcile::plan::{self, ObjectKey, Plan};
use crate::reconcile::{manifests, ALLOW_MASS_PRUNE, MANIFESTS_ANNOTATION};
use crate::source::FileTree;
use crate::store::ManagedEntity;

/// Entity annotation: `"true"` takes over fields other field managers own.
pub const FORCE_CONFLICTS: &str = "rigger.dev/force-conflicts";
/// Entity annotation: `"false"` reports drift instead of re-applying it.
pub const SELF_HEAL: &str = "rigger.dev/self-heal";

/// Why an entity could not be planned; `reason` is a bounded metric label.
#[derive(Debug, Clone)]
pub struct Failure {
    pub reason: &'static str,
    pub errors: Vec<String>,
    /// Worth trying again soon: the API server did not answer, or a kind is not served yet
    /// (its CRD may be on its way).
    pub retry: bool,
}

impl Failure {
    fn new(reason: &'static str, errors: Vec<String>) -> Self {
        Self { reason, errors, retry: false }
    }

    fn cluster(error: &ClusterError) -> Self {
        Self { reason: "cluster", errors: vec![error.to_string()], retry: error.is_transient() }
    }
}

/// A planned entity, ready to execute.
#[derive(Debug, Clone)]
pub struct EntityPlan {
    pub entity_ref: String,
    pub plan: Plan,
    /// What the cluster held, by key, when the plan was made.
    pub live: BTreeMap<ObjectKey, Value>,
    /// The inventory before this run.
    pub before: Vec<ObjectKey>,
    /// Take over conflicting fields from other managers.
    pub force: bool,
    /// Re-apply objects changed in the cluster but not in git.
    pub self_heal: bool,
    /// Set when a guard removed the plan's prunes: the message goes on the entity.
    pub blocked: Option<String>,
    /// False for an entity that left git (its plan is prunes only, and it has no status).
    pub exists: bool,
}

pub async fn plan_entity(
    cluster: &Cluster,
    tree: &dyn FileTree,
    entity: &ManagedEntity,
    tenancy: &Tenancy,
    before: Vec<ObjectKey>,
    max_bytes: usize,
) -> Result<EntityPlan, Failure> {
    let pattern = entity.annotation(MANIFESTS_ANNOTATION).unwrap_or_default();
    let declared =
        manifests::collect(tree, &entity.file, pattern, max_bytes).map_err(|e| Failure::new("manifests", e))?;
    let crds = crd_scopes(declared.iter().map(|m| &m.object));
    let default_namespace = tenancy.namespaces.first().map_or(entity.namespace.as_str(), String::as_str);
    let mut desired = Vec::new();
    let mut refused = Vec::new();
    let mut unknown = Vec::new();
    for manifest in &declared {
        let at = format!("{} document {}", manifest.file, manifest.index);
        let (api_version, kind) = (text(&manifest.object["apiVersion"]), text(&manifest.object["kind"]));
        let namespaced = match cluster.kind(api_version, kind).await {
            Ok(found) => found.namespaced,
            Err(ClusterError::UnknownKind { .. }) if crds.contains_key(&(group_of(api_version), kind.to_owned())) => {
                crds[&(group_of(api_version), kind.to_owned())]
            }
            Err(err @ ClusterError::UnknownKind { .. }) => {
                unknown.push(format!("{at}: {err}"));
                continue;
            }
            Err(err) => return Err(Failure::cluster(&err)),
        };
        let object = plan::owned(&manifest.object, &entity.entity_ref, default_namespace, namespaced);
        match tenancy.admit(&object, namespaced) {
            Ok(()) => desired.push(object),
            Err(reason) => refused.push(format!("{at}: {reason}")),
        }
    }
    if !refused.is_empty() {
        return Err(Failure::new("refused", refused));
    }
    if !unknown.is_empty() {
        return Err(Failure { reason: "unknown_kind", errors: unknown, retry: true });
    }
    let keys: Vec<ObjectKey> = desired.iter().filter_map(ObjectKey::of).chain(before.iter().cloned()).collect();
    let live = fetch_live(cluster, &keys).await?;
    let taken: Vec<String> = desired
        .iter()
        .filter_map(ObjectKey::of)
        .filter_map(|key| {
            Some(format!("{key}: not adopting it: {}", plan::foreign_owner(live.get(&key)?, &entity.entity_ref)?))
        })
        .collect();
    if !taken.is_empty() {
        return Err(Failure::new("refused", taken));
    }
    let live_objects: Vec<Value> = live.values().cloned().collect();
    let plan = plan::plan(&entity.entity_ref, &desired, &live_objects, &before);
    let allowed = entity.annotation(ALLOW_MASS_PRUNE) == Some("true");
    if let Some(message) = mass_prune(&plan, allowed) {
        return Err(Failure::new("prune_blocked", vec![message]));
    }
    Ok(EntityPlan {
        entity_ref: entity.entity_ref.clone(),
        plan,
        live,
        before,
        force: entity.annotation(FORCE_CONFLICTS) == Some("true"),
        self_heal: entity.annotation(SELF_HEAL) != Some("false"),
        blocked: None,
        exists: true,
    })
}

/// The plan for an entity that left git (or stopped declaring manifests): prune what it
/// applied and still owns.
pub async fn plan_gone(cluster: &Cluster, entity_ref: &str, before: Vec<ObjectKey>) -> Result<EntityPlan, Failure> {
    let live = fetch_live(cluster, &before).await?;
    let live_objects: Vec<Value> = live.values().cloned().collect();
    let plan = plan::plan(entity_ref, &[], &live_objects, &before);
    Ok(EntityPlan {
        entity_ref: entity_ref.to_owned(),
        plan,
        live,
        before,
        force: false,
        self_heal: false,
        blocked: None,
        exists: false,
    })
}

/// The live objects for `keys`; a kind the cluster does not serve yet (its CRD is part of this
/// apply) has no objects.
async fn fetch_live(cluster: &Cluster, keys: &[ObjectKey]) -> Result<BTreeMap<ObjectKey, Value>, Failure> {
    let mut live = BTreeMap::new();
    for key in keys {
        match cluster.get(key).await {
            Ok(Some(object)) => {
                live.insert(key.clone(), object);
            }
            Ok(None) | Err(ClusterError::UnknownKind { .. }) => {}
            Err(err) => return Err(Failure::cluster(&err)),
        }
    }
    Ok(live)
}

/// `(group, kind)` -> namespaced, for the CRDs in a manifest set: their custom resources can be
/// planned before the cluster serves them.
fn crd_scopes<'a>(objects: impl Iterator<Item = &'a Value>) -> BTreeMap<(String, String), bool> {
    objects
        .filter(|o| o["kind"] == "CustomResourceDefinition")
        .map(|crd| {
            let spec = &crd["spec"];
            ((text(&spec["group"]).to_owned(), text(&spec["names"]["kind"]).to_owned()), spec["scope"] != "Cluster")
        })
        .collect()
}

fn group_of(api_version: &str) -> String {
    api_version.rsplit_once('/').map_or("", |(group, _)| group).to_owned()
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}
