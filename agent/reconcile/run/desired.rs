//! One entity's plan, in two steps. `declare`: the objects its manifests declare (read all or
//! nothing, labelled as Rigger's, admitted by the source's tenancy). `plan_declared`, once the
//! whole source is declared: what the cluster holds for them and for the entity's inventory,
//! who may take over what, and the steps between the two.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use crate::reconcile::cluster::{Cluster, ClusterError};
use crate::reconcile::guard::{mass_prune, Tenancy};
use crate::reconcile::plan::{self, Identity, ObjectKey, Plan};
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
    pub fn new(reason: &'static str, errors: Vec<String>) -> Self {
        Self { reason, errors, retry: false }
    }

    pub fn cluster(error: &ClusterError) -> Self {
        Self { reason: "cluster", errors: vec![error.to_string()], retry: error.is_transient() }
    }
}

/// What an entity's annotations allow.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// Take over conflicting fields from other managers (`rigger.dev/force-conflicts`).
    pub force: bool,
    /// Re-apply objects changed in the cluster but not in git (`rigger.dev/self-heal`).
    pub self_heal: bool,
    /// Prunes exempt from the mass-deletion guards (`rigger.dev/allow-mass-prune`).
    pub allow_mass_prune: bool,
}

/// What one entity declares, admitted and ready to plan.
#[derive(Debug, Clone)]
pub struct Declared {
    pub entity_ref: String,
    pub objects: Vec<Value>,
    pub policy: Policy,
}

/// Who declares what across the source in this pass, and what must not be pruned.
#[derive(Debug, Default)]
pub struct SourceView {
    /// Object identity → the entities declaring it.
    pub declared_by: HashMap<Identity, Vec<String>>,
    /// Entities that could not be planned: their objects stay as they are, and stay theirs.
    pub held: HashSet<String>,
    /// Identities nothing may prune: everything declared, everything a held entity has.
    pub kept: HashSet<Identity>,
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
    pub policy: Policy,
    /// Set when a guard removed the plan's prunes: the message goes on the entity.
    pub blocked: Option<String>,
    /// False for an entity that left git or stopped declaring manifests (prunes only).
    pub exists: bool,
}

pub async fn declare(
    cluster: &Cluster,
    tree: &dyn FileTree,
    entity: &ManagedEntity,
    tenancy: &Tenancy,
    max_bytes: usize,
) -> Result<Declared, Failure> {
    let pattern = entity.annotation(MANIFESTS_ANNOTATION).unwrap_or_default();
    let declared =
        manifests::collect(tree, &entity.file, pattern, max_bytes).map_err(|e| Failure::new("manifests", e))?;
    let crds = crd_scopes(declared.iter().map(|m| &m.object));
    let default_namespace = tenancy.namespaces.first().map_or(entity.namespace.as_str(), String::as_str);
    let mut objects = Vec::new();
    let mut refused = Vec::new();
    let mut unknown = Vec::new();
    for manifest in &declared {
        let at = format!("{} document {}", manifest.file, manifest.index);
        let (api_version, kind) = (text(&manifest.object["apiVersion"]), text(&manifest.object["kind"]));
        let namespaced = match cluster.kind(api_version, kind).await {
            Ok(found) => found.namespaced,
            Err(err @ ClusterError::UnknownKind { .. }) => {
                let Some(namespaced) = crds.get(&(group_of(api_version), kind.to_owned())) else {
                    unknown.push(format!("{at}: {err}"));
                    continue;
                };
                *namespaced
            }
            Err(err) => return Err(Failure::cluster(&err)),
        };
        let object = plan::owned(&manifest.object, &entity.entity_ref, default_namespace, namespaced);
        match tenancy.admit(&object, namespaced) {
            Ok(()) => objects.push(object),
            Err(reason) => refused.push(format!("{at}: {reason}")),
        }
    }
    if !refused.is_empty() {
        return Err(Failure::new("refused", refused));
    }
    if !unknown.is_empty() {
        return Err(Failure { reason: "unknown_kind", errors: unknown, retry: true });
    }
    Ok(Declared {
        entity_ref: entity.entity_ref.clone(),
        objects,
        policy: Policy {
            force: entity.annotation(FORCE_CONFLICTS) == Some("true"),
            self_heal: entity.annotation(SELF_HEAL) != Some("false"),
            allow_mass_prune: entity.annotation(ALLOW_MASS_PRUNE) == Some("true"),
        },
    })
}

/// The plan for a declared entity, against the live cluster and the rest of the source.
pub async fn plan_declared(
    cluster: &Cluster,
    declared: Declared,
    before: Vec<ObjectKey>,
    view: &SourceView,
) -> Result<EntityPlan, Failure> {
    let keys: Vec<ObjectKey> =
        declared.objects.iter().filter_map(ObjectKey::of).chain(before.iter().cloned()).collect();
    let live = fetch_live(cluster, &keys).await?;
    let taken: Vec<String> = declared
        .objects
        .iter()
        .filter_map(ObjectKey::of)
        .filter_map(|key| {
            let reason = claimed_elsewhere(&key, live.get(&key), &declared.entity_ref, view)?;
            Some(format!("{key}: not taking it over: {reason}"))
        })
        .collect();
    if !taken.is_empty() {
        return Err(Failure::new("refused", taken));
    }
    let live_objects: Vec<Value> = live.values().cloned().collect();
    let plan = plan::plan(&declared.entity_ref, &declared.objects, &live_objects, &before, &view.kept);
    if let Some(message) = mass_prune(&plan, declared.policy.allow_mass_prune) {
        return Err(Failure::new("prune_blocked", vec![message]));
    }
    Ok(EntityPlan {
        entity_ref: declared.entity_ref,
        plan,
        live,
        before,
        policy: declared.policy,
        blocked: None,
        exists: true,
    })
}

/// Why `entity_ref` may not apply the object at `key`: another entity of the source declares
/// it too, or another tool manages it. Which Rigger entity may have an object Rigger manages is
/// the claims' answer (`ownership`), taken before this: the live labels only say who had it.
fn claimed_elsewhere(key: &ObjectKey, live: Option<&Value>, entity_ref: &str, view: &SourceView) -> Option<String> {
    let others: Vec<&String> =
        view.declared_by.get(&key.identity()).into_iter().flatten().filter(|e| *e != entity_ref).collect();
    if let Some(other) = others.first() {
        return Some(format!("{other} declares it too"));
    }
    let live = live?;
    if plan::is_riggers(live) {
        return None;
    }
    plan::foreign_owner(live, entity_ref)
}

/// The plan for an entity that left git (or stopped declaring manifests): prune what it
/// applied, still owns, and nothing else declares.
pub async fn plan_gone(
    cluster: &Cluster,
    entity_ref: &str,
    before: Vec<ObjectKey>,
    view: &SourceView,
) -> Result<EntityPlan, Failure> {
    let live = fetch_live(cluster, &before).await?;
    let live_objects: Vec<Value> = live.values().cloned().collect();
    let plan = plan::plan(entity_ref, &[], &live_objects, &before, &view.kept);
    Ok(EntityPlan {
        entity_ref: entity_ref.to_owned(),
        plan,
        live,
        before,
        policy: Policy::default(),
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
