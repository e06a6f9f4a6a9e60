//! The resource types the fake serves: a fixed set of built-ins plus whatever the stored
//! `CustomResourceDefinition`s declare, rebuilt after every CRD write as the real server's
//! apiextensions controller does (here synchronously, so a CR can be created right after its CRD).

use std::cmp::Ordering;

use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)] // one flag per property discovery reports
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    /// Has a `/status` subresource: the main resource ignores `.status` and vice versa.
    pub status: bool,
    /// Keeps `metadata.generation` (a `ConfigMap`, for instance, have none on a real server).
    pub generation: bool,
    pub short_names: Vec<String>,
    /// Built-in types list their items without `apiVersion`/`kind`, as the real server does.
    pub builtin: bool,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// `(group, version, plural, singular, kind, namespaced, status, generation, short names)`.
type Builtin =
    (&'static str, &'static str, &'static str, &'static str, &'static str, bool, bool, bool, &'static [&'static str]);

const BUILTINS: &[Builtin] = &[
    ("", "v1", "namespaces", "namespace", "Namespace", false, true, false, &["ns"]),
    ("", "v1", "configmaps", "configmap", "ConfigMap", true, false, false, &["cm"]),
    ("", "v1", "secrets", "secret", "Secret", true, false, false, &[]),
    ("", "v1", "services", "service", "Service", true, true, false, &["svc"]),
    ("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", true, false, false, &["sa"]),
    ("", "v1", "events", "event", "Event", true, false, false, &["ev"]),
    ("apps", "v1", "deployments", "deployment", "Deployment", true, true, true, &["deploy"]),
    ("apps", "v1", "statefulsets", "statefulset", "StatefulSet", true, true, true, &["sts"]),
    ("apps", "v1", "daemonsets", "daemonset", "DaemonSet", true, true, true, &["ds"]),
    ("batch", "v1", "jobs", "job", "Job", true, true, true, &[]),
    ("batch", "v1", "cronjobs", "cronjob", "CronJob", true, true, true, &["cj"]),
    ("rbac.authorization.k8s.io", "v1", "roles", "role", "Role", true, false, false, &[]),
    ("rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", true, false, false, &[]),
    ("rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole", false, false, false, &[]),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
        false,
        false,
        &[],
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "validatingwebhookconfiguration",
        "ValidatingWebhookConfiguration",
        false,
        false,
        false,
        &[],
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "mutatingwebhookconfiguration",
        "MutatingWebhookConfiguration",
        false,
        false,
        false,
        &[],
    ),
    (
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "customresourcedefinition",
        "CustomResourceDefinition",
        false,
        true,
        true,
        &["crd", "crds"],
    ),
];

pub const CRD_GROUP: &str = "apiextensions.k8s.io";
pub const CRD_PLURAL: &str = "customresourcedefinitions";

#[derive(Clone, Debug)]
pub struct Registry {
    types: Vec<ResourceType>,
}

impl Registry {
    pub fn builtin() -> Self {
        let types = BUILTINS
            .iter()
            .map(|&(group, version, plural, singular, kind, namespaced, status, generation, short)| ResourceType {
                group: group.to_owned(),
                version: version.to_owned(),
                plural: plural.to_owned(),
                singular: singular.to_owned(),
                kind: kind.to_owned(),
                namespaced,
                status,
                generation,
                short_names: short.iter().map(|&s| s.to_owned()).collect(),
                builtin: true,
            })
            .collect();
        Self { types }
    }

    /// Replaces the CRD-defined types with those `crds` declare (in the order given).
    pub fn set_custom<'a>(&mut self, crds: impl Iterator<Item = &'a Value>) {
        self.types.retain(|t| t.builtin);
        for crd in crds {
            if let Ok(types) = types_from_crd(crd) {
                self.types.extend(types);
            }
        }
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types.iter().find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    pub fn find_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceType> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        self.types.iter().find(|t| t.group == group && t.version == version && t.kind == kind)
    }

    pub fn in_version<'a>(&'a self, group: &'a str, version: &'a str) -> impl Iterator<Item = &'a ResourceType> {
        self.types.iter().filter(move |t| t.group == group && t.version == version)
    }

    /// Non-core groups in first-seen order, each with its versions, preferred first.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for t in self.types.iter().filter(|t| !t.group.is_empty()) {
            match groups.iter_mut().find(|(g, _)| *g == t.group) {
                Some((_, versions)) if !versions.contains(&t.version) => versions.push(t.version.clone()),
                Some(_) => {}
                None => groups.push((t.group.clone(), vec![t.version.clone()])),
            }
        }
        for (_, versions) in &mut groups {
            versions.sort_by(|a, b| version_priority(a, b));
        }
        groups
    }
}

/// The resource types a CRD declares, one per served version, or why it is invalid (the real
/// server answers 422 Invalid for the same mistakes).
pub fn types_from_crd(crd: &Value) -> Result<Vec<ResourceType>, String> {
    let spec = crd.get("spec").ok_or("spec: Required value")?;
    let text =
        |path: &[&str]| path.iter().try_fold(spec, |v, key| v.get(key)).and_then(Value::as_str).map(str::to_owned);
    let group = text(&["group"]).ok_or("spec.group: Required value")?;
    let plural = text(&["names", "plural"]).ok_or("spec.names.plural: Required value")?;
    let kind = text(&["names", "kind"]).ok_or("spec.names.kind: Required value")?;
    let singular = text(&["names", "singular"]).unwrap_or_else(|| kind.to_lowercase());
    let namespaced = match text(&["scope"]).as_deref() {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        _ => return Err("spec.scope: Unsupported value: must be Namespaced or Cluster".into()),
    };
    let name = crd.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    if name != format!("{plural}.{group}") {
        return Err(format!("metadata.name: Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"));
    }
    let short_names: Vec<String> = spec
        .pointer("/names/shortNames")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    let versions = spec.get("versions").and_then(Value::as_array).filter(|v| !v.is_empty());
    let versions =
        versions.ok_or("spec.versions: Invalid value: must have exactly one version marked as storage version")?;
    Ok(versions
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(false))
        .filter_map(|v| {
            Some(ResourceType {
                group: group.clone(),
                version: v.get("name")?.as_str()?.to_owned(),
                plural: plural.clone(),
                singular: singular.clone(),
                kind: kind.clone(),
                namespaced,
                status: v.pointer("/subresources/status").is_some(),
                generation: true,
                short_names: short_names.clone(),
                builtin: false,
            })
        })
        .collect())
}

/// Kubernetes' version order: GA before beta before alpha, higher numbers first, anything that
/// does not look like a Kubernetes version last, alphabetically.
pub fn version_priority(a: &str, b: &str) -> Ordering {
    fn rank(version: &str) -> (u8, i64, i64, String) {
        let Some(rest) = version.strip_prefix('v') else { return (3, 0, 0, version.to_owned()) };
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let Ok(major) = digits.parse::<i64>() else { return (3, 0, 0, version.to_owned()) };
        let tail = &rest[digits.len()..];
        let stage = |prefix: &str| tail.strip_prefix(prefix).and_then(|n| n.parse::<i64>().ok());
        match (tail, stage("beta"), stage("alpha")) {
            ("", _, _) => (0, -major, 0, String::new()),
            (_, Some(minor), _) => (1, -major, -minor, String::new()),
            (_, _, Some(minor)) => (2, -major, -minor, String::new()),
            _ => (3, 0, 0, version.to_owned()),
        }
    }
    rank(a).cmp(&rank(b))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn versions_sort_as_kubernetes_sorts_them() {
        let mut versions = vec!["v1alpha1", "foo", "v1beta2", "v2", "v1", "v1beta1", "v10alpha1"];
        versions.sort_by(|a, b| version_priority(a, b));
        assert_eq!(versions, vec!["v2", "v1", "v1beta2", "v1beta1", "v10alpha1", "v1alpha1", "foo"]);
    }

    #[test]
    fn a_crd_declares_one_type_per_served_version() {
        let crd = json!({"metadata": {"name": "widgets.example.com"}, "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}}},
                         {"name": "v1beta1", "served": false, "storage": false}]}});
        let types = types_from_crd(&crd).unwrap();
        assert_eq!(types.len(), 1);
        assert_eq!((types[0].singular.as_str(), types[0].status, types[0].namespaced), ("widget", true, true));
    }

    #[test]
    fn a_crd_whose_name_is_not_plural_dot_group_is_invalid() {
        let crd = json!({"metadata": {"name": "widgets"}, "spec": {"group": "example.com", "scope": "Cluster",
            "names": {"plural": "widgets", "kind": "Widget"}, "versions": [{"name": "v1", "served": true}]}});
        assert!(types_from_crd(&crd).unwrap_err().contains("metadata.name"));
    }
}
