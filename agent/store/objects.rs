//! Cluster objects as the store records them (inventory, claims) and the reconcile plans them:
//! vocabulary both need, kept here, the lower of the two.

use std::fmt;

use serde_json::Value;

/// The annotation an entity declares its cluster objects with: the store finds the entities
/// to reconcile by it.
pub const MANIFESTS_ANNOTATION: &str = "rigger.dev/manifests";

/// An object's identity in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub api_version: String,
    pub kind: String,
    /// `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    pub name: String,
}

/// An object as the cluster knows it whatever version it is read at: group, kind, namespace,
/// name. Two keys with the same identity are one object (a claim moved from `v1alpha1` to
/// `v1beta1` in git is the same claim, not one to create and one to prune).
pub type Identity = (String, String, Option<String>, String);

impl ObjectKey {
    pub fn identity(&self) -> Identity {
        let group = self.api_version.rsplit_once('/').map_or("", |(group, _)| group);
        (group.to_owned(), self.kind.clone(), self.namespace.clone(), self.name.clone())
    }

    pub fn of(object: &Value) -> Option<Self> {
        Some(Self {
            api_version: object["apiVersion"].as_str()?.to_owned(),
            kind: object["kind"].as_str()?.to_owned(),
            namespace: object["metadata"]["namespace"].as_str().map(str::to_owned),
            name: object["metadata"]["name"].as_str()?.to_owned(),
        })
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {} {ns}/{}", self.api_version, self.kind, self.name),
            None => write!(f, "{} {} {}", self.api_version, self.kind, self.name),
        }
    }
}
