//! What a sync of one entity's objects would do, decided without a cluster: every declared
//! object is created, updated or left alone; an object the entity applied before and no longer
//! declares is pruned, but only if the cluster still shows it as Rigger's and the entity's.

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Value};
use sha1::{Digest, Sha1};

use super::{APPLIED_HASH, ENTITY_ANNOTATION, ENTITY_LABEL, MANAGED_BY, MANAGED_BY_VALUE};

pub use crate::store::{Identity, ObjectKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Unchanged,
    Prune,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub key: ObjectKey,
    pub action: Action,
    /// The object to apply (create and update).
    pub object: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub steps: Vec<Step>,
}

impl Plan {
    pub fn count(&self, action: Action) -> usize {
        self.steps.iter().filter(|s| s.action == action).count()
    }
}

/// The label value naming an entity: a hash, since refs may be longer than a label allows.
pub fn entity_label(entity_ref: &str) -> String {
    hex::encode(Sha1::digest(entity_ref.as_bytes()))
}

/// The object as Rigger applies it: in the entity's namespace when it names none (and its kind
/// is namespaced), labelled as Rigger's and the entity's, with the hash of what was applied.
pub fn owned(object: &Value, entity_ref: &str, default_namespace: &str, namespaced: bool) -> Value {
    let mut object = object.clone();
    if !namespaced {
        // A namespace on a cluster-scoped object means nothing to the server; keeping it would
        // give the object a second identity here.
        if let Some(metadata) = object["metadata"].as_object_mut() {
            metadata.remove("namespace");
        }
    }
    // Only git's intent is applied: what the server owns (status, identity, bookkeeping) is
    // dropped if a manifest was exported from a live cluster.
    if let Some(root) = object.as_object_mut() {
        root.remove("status");
    }
    if let Some(metadata) = object["metadata"].as_object_mut() {
        for field in SERVER_FIELDS {
            metadata.remove(field);
        }
    }
    if namespaced && object["metadata"]["namespace"].as_str().is_none() {
        object["metadata"]["namespace"] = json!(default_namespace);
    }
    let metadata = &mut object["metadata"];
    if !metadata["labels"].is_object() {
        metadata["labels"] = json!({});
    }
    metadata["labels"][MANAGED_BY] = json!(MANAGED_BY_VALUE);
    metadata["labels"][ENTITY_LABEL] = json!(entity_label(entity_ref));
    if !metadata["annotations"].is_object() {
        metadata["annotations"] = json!({});
    }
    metadata["annotations"][ENTITY_ANNOTATION] = json!(entity_ref);
    let hash = hex::encode(Sha1::digest(object.to_string().as_bytes()));
    object["metadata"]["annotations"][APPLIED_HASH] = json!(hash);
    object
}

/// Metadata the API server sets; never part of an applied object.
pub const SERVER_FIELDS: [&str; 6] =
    ["managedFields", "uid", "resourceVersion", "creationTimestamp", "generation", "deletionTimestamp"];

/// Object annotation: `disabled` keeps the object when its entity stops declaring it;
/// `enabled` lets a Namespace or CRD be pruned (deleting one deletes everything in it).
pub const PRUNE_ANNOTATION: &str = "rigger.dev/prune";

/// Whether the plan may delete this live object, which its entity no longer declares.
fn prunable(live: &Value) -> bool {
    let setting = &live["metadata"]["annotations"][PRUNE_ANNOTATION];
    match live["kind"].as_str().unwrap_or_default() {
        "Namespace" | "CustomResourceDefinition" => setting == "enabled",
        _ => setting != "disabled",
    }
}

/// Why Rigger must not take over a live object it is about to apply: it belongs to another
/// entity, or another GitOps tool tracks it. `None` when it is free (or already ours).
pub fn foreign_owner(live: &Value, entity_ref: &str) -> Option<String> {
    let labels = &live["metadata"]["labels"];
    let annotations = &live["metadata"]["annotations"];
    if labels[MANAGED_BY] == MANAGED_BY_VALUE {
        return (!owned_by(live, entity_ref)).then(|| {
            let other = annotations[ENTITY_ANNOTATION].as_str().unwrap_or("another entity");
            format!("it belongs to {other}")
        });
    }
    if let Some(other) = labels[MANAGED_BY].as_str() {
        return Some(format!("{MANAGED_BY}={other} manages it"));
    }
    if !labels["kustomize.toolkit.fluxcd.io/name"].is_null() {
        return Some("Flux tracks it (kustomize.toolkit.fluxcd.io labels)".into());
    }
    if !annotations["argocd.argoproj.io/tracking-id"].is_null() {
        return Some("Argo CD tracks it (argocd.argoproj.io/tracking-id)".into());
    }
    None
}

/// Whether a live object carries Rigger's label at all (for whichever entity).
pub fn is_riggers(live: &Value) -> bool {
    live["metadata"]["labels"][MANAGED_BY] == MANAGED_BY_VALUE
}

/// Whether a live object carries Rigger's labels for this entity: the only objects a prune may
/// touch (someone may have taken an object over, or made one with the same name).
pub fn owned_by(live: &Value, entity_ref: &str) -> bool {
    let labels = &live["metadata"]["labels"];
    labels[MANAGED_BY] == MANAGED_BY_VALUE && labels[ENTITY_LABEL].as_str() == Some(entity_label(entity_ref).as_str())
}

/// Every field `desired` sets has the same value in `live` (which also holds defaults and
/// status): the object has not drifted. Lists must match exactly.
pub fn is_subset(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Object(want), Value::Object(have)) => {
            want.iter().all(|(k, v)| have.get(k).is_some_and(|h| is_subset(v, h)))
        }
        (Value::Array(want), Value::Array(have)) => {
            want.len() == have.len() && want.iter().zip(have).all(|(w, h)| is_subset(w, h))
        }
        _ => desired == live,
    }
}

/// Applies go in this order so that what others need exists first: namespaces, then CRDs, then
/// everything else; prunes go last, in reverse.
fn rank(kind: &str) -> u8 {
    match kind {
        "Namespace" => 0,
        "CustomResourceDefinition" => 1,
        _ => 2,
    }
}

/// The plan for one entity: `desired` as [`owned`] returns it, `live` what the cluster holds
/// for the desired keys and the inventory, `inventory` what this entity applied before, and
/// `kept` the objects nothing may prune in this pass (what any entity of the source declares,
/// what entities that failed to plan hold).
#[allow(clippy::implicit_hasher)] // one caller, with the default hasher
pub fn plan(
    entity_ref: &str,
    desired: &[Value],
    live: &[Value],
    inventory: &[ObjectKey],
    kept: &HashSet<Identity>,
) -> Plan {
    let live: BTreeMap<ObjectKey, &Value> = live.iter().filter_map(|o| Some((ObjectKey::of(o)?, o))).collect();
    let mut steps: Vec<Step> = desired
        .iter()
        .filter_map(|object| {
            let key = ObjectKey::of(object)?;
            let action = match live.get(&key) {
                None => Action::Create,
                Some(current)
                    if current["metadata"]["annotations"][APPLIED_HASH]
                        == object["metadata"]["annotations"][APPLIED_HASH]
                        && is_subset(object, current) =>
                {
                    Action::Unchanged
                }
                Some(_) => Action::Update,
            };
            let object = (action != Action::Unchanged).then(|| object.clone());
            Some(Step { key, action, object })
        })
        .collect();
    steps.sort_by_key(|s| rank(&s.key.kind));
    let declared: HashSet<Identity> = steps.iter().map(|s| s.key.identity()).collect();
    let mut prunes: Vec<Step> = inventory
        .iter()
        .filter(|key| !declared.contains(&key.identity()) && !kept.contains(&key.identity()))
        .filter(|key| live.get(*key).is_some_and(|o| owned_by(o, entity_ref) && prunable(o)))
        .map(|key| Step { key: key.clone(), action: Action::Prune, object: None })
        .collect();
    prunes.sort_by_key(|s| std::cmp::Reverse(rank(&s.key.kind)));
    steps.extend(prunes);
    Plan { steps }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTITY: &str = "component:default/pay";

    fn config_map(name: &str, data: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": data}})
    }

    /// What the API server would hold after applying `object`: defaults and server fields added.
    fn served(object: &Value) -> Value {
        let mut live = object.clone();
        live["metadata"]["uid"] = json!("0f6c…");
        live["metadata"]["resourceVersion"] = json!("7");
        live
    }

    #[test]
    fn declared_objects_are_created_updated_or_left_alone() {
        let a = owned(&config_map("a", "1"), ENTITY, "default", true);
        let b = owned(&config_map("b", "1"), ENTITY, "default", true);
        assert_eq!(a["metadata"]["namespace"], "default");
        assert!(owned_by(&a, ENTITY) && !owned_by(&a, "component:default/other"));
        let b_changed = owned(&config_map("b", "2"), ENTITY, "default", true);
        let mut a_drifted = served(&a);
        a_drifted["data"]["k"] = json!("edited by hand");
        let plan_ = plan(ENTITY, &[a.clone(), b_changed], &[served(&a), served(&b)], &[], &HashSet::new());
        assert_eq!(plan_.steps.iter().map(|s| s.action).collect::<Vec<_>>(), [Action::Unchanged, Action::Update]);
        let drift = plan(ENTITY, std::slice::from_ref(&a), &[a_drifted], &[], &HashSet::new());
        assert_eq!(drift.steps[0].action, Action::Update, "a hand edit is drift, corrected by the next apply");
        let new = plan(ENTITY, &[a], &[], &[], &HashSet::new());
        assert_eq!(new.steps[0].action, Action::Create);
    }

    #[test]
    fn only_inventoried_objects_that_are_still_ours_are_pruned() {
        let kept = owned(&config_map("kept", "1"), ENTITY, "default", true);
        let gone = owned(&config_map("gone", "1"), ENTITY, "default", true);
        let taken = owned(&config_map("taken", "1"), "component:default/other", "default", true);
        let unlabelled =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hand", "namespace": "default"}});
        let inventory: Vec<ObjectKey> =
            [&kept, &gone, &taken, &unlabelled].iter().filter_map(|o| ObjectKey::of(o)).collect();
        let live = [served(&kept), served(&gone), served(&taken), unlabelled.clone()];
        let plan_ = plan(ENTITY, &[kept], &live, &inventory, &HashSet::new());
        let pruned: Vec<&str> =
            plan_.steps.iter().filter(|s| s.action == Action::Prune).map(|s| s.key.name.as_str()).collect();
        assert_eq!(pruned, ["gone"], "another entity's object and an unlabelled one are left alone");
        let mut kept_by_annotation = served(&gone);
        kept_by_annotation["metadata"]["annotations"][PRUNE_ANNOTATION] = json!("disabled");
        let plan_ = plan(ENTITY, &[], &[kept_by_annotation], &inventory, &HashSet::new());
        assert_eq!(plan_.count(Action::Prune), 0, "rigger.dev/prune: disabled keeps the object");
    }

    #[test]
    fn a_new_version_of_an_object_is_the_same_object_and_kept_objects_are_not_pruned() {
        let claim = |version: &str| {
            owned(
                &json!({"apiVersion": format!("acme.io/{version}"), "kind": "Database", "metadata": {"name": "db"}}),
                ENTITY,
                "team",
                true,
            )
        };
        let old = ObjectKey::of(&claim("v1alpha1")).unwrap();
        let plan_ = plan(
            ENTITY,
            &[claim("v1beta1")],
            &[served(&claim("v1alpha1"))],
            std::slice::from_ref(&old),
            &HashSet::new(),
        );
        assert_eq!(plan_.count(Action::Prune), 0, "the claim moved versions; it is not deleted");
        let gone = plan(
            ENTITY,
            &[],
            &[served(&claim("v1alpha1"))],
            std::slice::from_ref(&old),
            &HashSet::from([old.identity()]),
        );
        assert_eq!(gone.count(Action::Prune), 0, "another entity of the source declares it now");
        let ns = owned(
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "namespace": "x"}}),
            ENTITY,
            "d",
            false,
        );
        assert!(ns["metadata"].get("namespace").is_none(), "cluster-scoped: no namespace");
        let ns_key = ObjectKey::of(&ns).unwrap();
        let kept = plan(ENTITY, &[], &[served(&ns)], std::slice::from_ref(&ns_key), &HashSet::new());
        assert_eq!(kept.count(Action::Prune), 0, "a Namespace is pruned only with rigger.dev/prune: enabled");
        let mut enabled = served(&ns);
        enabled["metadata"]["annotations"][PRUNE_ANNOTATION] = json!("enabled");
        assert_eq!(plan(ENTITY, &[], &[enabled], &[ns_key], &HashSet::new()).count(Action::Prune), 1);
    }

    #[test]
    fn server_fields_are_not_applied_and_foreign_objects_are_not_adopted() {
        let mut exported = config_map("a", "1");
        exported["status"] = json!({"phase": "x"});
        exported["metadata"]["resourceVersion"] = json!("42");
        exported["metadata"]["managedFields"] = json!([]);
        let applied = owned(&exported, ENTITY, "default", true);
        assert!(applied.get("status").is_none());
        assert!(
            applied["metadata"].get("resourceVersion").is_none() && applied["metadata"].get("managedFields").is_none()
        );
        assert_eq!(foreign_owner(&served(&applied), ENTITY), None);
        let other = owned(&config_map("a", "1"), "component:default/other", "default", true);
        assert!(foreign_owner(&other, ENTITY).unwrap().contains("component:default/other"));
        let mut flux = config_map("a", "1");
        flux["metadata"]["labels"] = json!({"kustomize.toolkit.fluxcd.io/name": "apps"});
        assert!(foreign_owner(&flux, ENTITY).unwrap().contains("Flux"));
        let mut helm = config_map("a", "1");
        helm["metadata"]["labels"] = json!({"app.kubernetes.io/managed-by": "Helm"});
        assert!(foreign_owner(&helm, ENTITY).unwrap().contains("managed-by=Helm"));
        assert_eq!(foreign_owner(&config_map("a", "1"), ENTITY), None, "an unmarked object is adopted");
    }

    #[test]
    fn namespaces_and_crds_are_applied_first_and_pruned_last() {
        let ns = owned(
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}),
            ENTITY,
            "default",
            false,
        );
        let crd = owned(
            &json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "dbs.acme.io"}}),
            ENTITY,
            "default",
            false,
        );
        let claim = owned(
            &json!({"apiVersion": "acme.io/v1", "kind": "Database", "metadata": {"name": "db"}}),
            ENTITY,
            "team",
            true,
        );
        let plan_ = plan(ENTITY, &[claim, crd, ns.clone()], &[], &[], &HashSet::new());
        let kinds: Vec<&str> = plan_.steps.iter().map(|s| s.key.kind.as_str()).collect();
        assert_eq!(kinds, ["Namespace", "CustomResourceDefinition", "Database"]);
        assert_eq!(ns["metadata"].get("namespace"), None, "cluster-scoped objects get no namespace");
    }
}
