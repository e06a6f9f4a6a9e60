//! What an entity may write, and when a plan deletes too much to trust. Refusals are errors the
//! caller puts on the entity; nothing here is silent.

use serde_json::Value;

use super::plan::{Action, Plan};
use crate::config::{Namespaces, TenancyConfig};

/// The RBAC kinds: refused unless a source allows them, since they grant what the entity's
/// owners might not hold themselves.
const RBAC_KINDS: [&str; 4] = ["Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"];

/// Namespaced kinds that set a namespace's limits: the platform's, so refused unless a source
/// lists them in its kinds.
const PLATFORM_KINDS: [&str; 2] = ["ResourceQuota", "LimitRange"];

/// Cluster-scoped kinds that intercept or police every request in the cluster: refused unless a
/// source lists them in its kinds, even where cluster-scoped objects are allowed.
const ADMISSION_KINDS: [&str; 5] = [
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "MutatingAdmissionPolicy",
];

/// A Secret of this type is filled by Kubernetes with a token of the service account it names:
/// credentials, as RBAC objects are.
const TOKEN_SECRET_TYPE: &str = "kubernetes.io/service-account-token";

/// Kubernetes' own namespaces: no entity writes there by default, whatever its catalog
/// namespace is called.
const RESERVED_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

/// Where one entity's objects may go and what they may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenancy {
    /// Namespaces the entity may write to.
    pub namespaces: Vec<String>,
    /// Kinds it may create; empty means any namespaced kind.
    pub kinds: Vec<String>,
    pub allow_cluster_scoped: bool,
    pub allow_rbac: bool,
    /// The configuration that granted this (`sources[0].tenancy`, `sources[1].grants[2]`),
    /// named in every refusal so the platform team knows what to change.
    pub rule: String,
}

impl Tenancy {
    /// The default: the Kubernetes namespace named like the entity's catalog namespace (none
    /// for Kubernetes' own namespaces), any namespaced kind, nothing cluster-scoped, no RBAC.
    pub fn for_namespace(namespace: &str) -> Self {
        let namespaces = if RESERVED_NAMESPACES.contains(&namespace) { Vec::new() } else { vec![namespace.to_owned()] };
        Self { namespaces, kinds: Vec::new(), allow_cluster_scoped: false, allow_rbac: false, rule: String::new() }
    }

    /// What the platform team's configuration grants entities of one catalog namespace.
    pub fn granted(config: &TenancyConfig, namespace: &str) -> Self {
        let mut tenancy = Self::for_namespace(namespace);
        tenancy.namespaces = match &config.namespaces {
            Namespaces::None => Vec::new(),
            Namespaces::All(granted) => granted.clone(),
            Namespaces::ByCatalogNamespace(map) => map.get(namespace).cloned().unwrap_or_default(),
            Namespaces::FromCatalog => tenancy.namespaces,
        };
        tenancy.kinds.clone_from(&config.kinds);
        tenancy.allow_cluster_scoped = config.allow_cluster_scoped;
        tenancy.allow_rbac = config.allow_rbac;
        tenancy.rule.clone_from(&config.rule);
        tenancy
    }

    /// Admits an object (as it will be applied, namespace filled in), or says why not, naming
    /// the rule. `namespaced` comes from the cluster's discovery of the kind.
    pub fn admit(&self, object: &Value, namespaced: bool) -> Result<(), String> {
        self.check(object, namespaced).map_err(|reason| match self.rule.as_str() {
            "" => reason,
            rule => format!("{reason} [{rule}]"),
        })
    }

    fn check(&self, object: &Value, namespaced: bool) -> Result<(), String> {
        let kind = object["kind"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        if RBAC_KINDS.contains(&kind) && !self.allow_rbac {
            return Err(format!("{kind} {name}: RBAC objects are not allowed for this source"));
        }
        if kind == "Secret" && object["type"] == TOKEN_SECRET_TYPE && !self.allow_rbac {
            return Err(format!(
                "{kind} {name}: a {TOKEN_SECRET_TYPE} Secret mints credentials for a service account; allowed only with allow_rbac"
            ));
        }
        if ADMISSION_KINDS.contains(&kind) && !self.kinds.iter().any(|k| k == kind) {
            return Err(format!(
                "{kind} {name}: admission control reaches every request in the cluster; list {kind} in the source's kinds to allow it"
            ));
        }
        if !namespaced && !self.allow_cluster_scoped {
            return Err(format!("{kind} {name}: cluster-scoped objects are not allowed for this source"));
        }
        let listed = self.kinds.iter().any(|k| k == kind);
        if !self.kinds.is_empty() && !listed {
            return Err(format!("{kind} {name}: kind {kind} is not among the kinds this entity may create"));
        }
        if PLATFORM_KINDS.contains(&kind) && !listed {
            return Err(format!(
                "{kind} {name}: {kind} belongs to the platform; list it in the source's tenancy.kinds to allow it"
            ));
        }
        if namespaced {
            let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
            if self.namespaces.is_empty() {
                return Err(format!(
                    "{kind} {name}: no namespace is granted to this entity (the platform team grants them in the source's tenancy.namespaces or grants)"
                ));
            }
            if !self.namespaces.iter().any(|n| n == namespace) {
                return Err(format!(
                    "{kind} {name}: namespace {namespace:?} is not one this entity may write to ({})",
                    self.namespaces.join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// A plan that would delete everything an entity owns is stopped (an empty or unreadable
/// manifest set looks exactly like that), unless the entity allows it.
pub fn mass_prune(plan: &Plan, allowed: bool) -> Option<String> {
    let pruned = plan.count(Action::Prune);
    let kept = plan.steps.len() - pruned;
    (pruned > 0 && kept == 0 && !allowed).then(|| {
        format!(
            "the plan would delete all {pruned} object(s) this entity owns; not pruning (set rigger.dev/allow-mass-prune: \"true\" on the entity if that is intended)"
        )
    })
}

/// Across a source: more than `max_fraction` of its objects pruned in one pass is stopped.
pub fn source_prune_fraction(pruned: usize, total: usize, max_fraction: f64) -> Option<String> {
    if total == 0 || pruned == 0 {
        return None;
    }
    #[allow(clippy::cast_precision_loss)] // object counts are far below 2^52
    let fraction = pruned as f64 / total as f64;
    (fraction > max_fraction).then(|| {
        format!(
            "the pass would prune {pruned} of {total} objects ({:.0} %), over the limit of {:.0} %; not pruning",
            fraction * 100.0,
            max_fraction * 100.0
        )
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::reconcile::plan::{ObjectKey, Step};

    fn object(kind: &str, namespace: Option<&str>) -> Value {
        let mut o = json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": "x"}});
        if let Some(ns) = namespace {
            o["metadata"]["namespace"] = json!(ns);
        }
        o
    }

    #[test]
    fn objects_outside_the_tenancy_are_refused_with_the_reason() {
        let t = Tenancy::for_namespace("payments");
        assert!(t.admit(&object("ConfigMap", Some("payments")), true).is_ok());
        let other = t.admit(&object("ConfigMap", Some("kube-system")), true).unwrap_err();
        assert!(other.contains("namespace \"kube-system\""), "{other}");
        assert!(t.admit(&object("Namespace", None), false).unwrap_err().contains("cluster-scoped"));
        assert!(t.admit(&object("RoleBinding", Some("payments")), true).unwrap_err().contains("RBAC"));
        let only_config = Tenancy { kinds: vec!["ConfigMap".into()], ..t.clone() };
        assert!(only_config.admit(&object("Secret", Some("payments")), true).unwrap_err().contains("kind Secret"));
        assert!(t.admit(&object("ResourceQuota", Some("payments")), true).unwrap_err().contains("platform"));
        let quotas = Tenancy { kinds: vec!["ResourceQuota".into()], ..t.clone() };
        assert!(quotas.admit(&object("ResourceQuota", Some("payments")), true).is_ok());
        let system = Tenancy::for_namespace("kube-system");
        assert!(system.admit(&object("ConfigMap", Some("kube-system")), true).unwrap_err().contains("no namespace"));
        let mut token = object("Secret", Some("payments"));
        token["type"] = json!("kubernetes.io/service-account-token");
        assert!(t.admit(&token, true).unwrap_err().contains("mints credentials"));
        assert!(t.admit(&object("Secret", Some("payments")), true).is_ok(), "an ordinary Secret is fine");
        let cluster = Tenancy { allow_cluster_scoped: true, ..t.clone() };
        let webhook = object("MutatingWebhookConfiguration", None);
        assert!(cluster.admit(&webhook, false).unwrap_err().contains("admission control"));
        let listed = Tenancy { kinds: vec!["MutatingWebhookConfiguration".into()], ..cluster };
        assert!(listed.admit(&webhook, false).is_ok());
        let ruled = Tenancy { rule: "sources[0].grants[1]".into(), ..t.clone() };
        assert!(ruled.admit(&object("Namespace", None), false).unwrap_err().ends_with("[sources[0].grants[1]]"));
        let open = Tenancy { allow_cluster_scoped: true, allow_rbac: true, ..t };
        assert!(open.admit(&token, true).is_ok());
        assert!(open.admit(&object("ClusterRole", None), false).is_ok());
    }

    #[test]
    fn deleting_everything_an_entity_owns_needs_its_consent() {
        let step = |action| Step {
            key: ObjectKey { api_version: "v1".into(), kind: "ConfigMap".into(), namespace: None, name: "a".into() },
            action,
            object: None,
        };
        let all_gone = Plan { steps: vec![step(Action::Prune), step(Action::Prune)] };
        assert!(mass_prune(&all_gone, false).unwrap().contains("all 2 object(s)"));
        assert!(mass_prune(&all_gone, true).is_none());
        let some_kept = Plan { steps: vec![step(Action::Unchanged), step(Action::Prune)] };
        assert!(mass_prune(&some_kept, false).is_none());
        assert!(source_prune_fraction(30, 100, 0.25).is_some());
        assert!(source_prune_fraction(20, 100, 0.25).is_none());
    }
}
