//! Cluster objects back into the catalog: Crossplane claims, v2 composite resources and
//! workloads labelled `backstage.io/kubernetes-id` become `Resource` entities with the keys
//! TeraSky's ingestor uses (reference §2.2, §2.5), so Backstage's Crossplane and Kubernetes UI
//! plugins work on them unchanged. Claims are keyed by the claim (an XR's name has a random
//! suffix).

mod pass;

use serde_json::{json, Map, Value};

pub use pass::{ingest, source_name};

/// TeraSky's default annotation prefix.
pub const PREFIX: &str = "terasky.backstage.io";

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// `(group, version)` of an `apiVersion`; the core group is empty.
fn group_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

/// Backstage names allow `[a-zA-Z0-9-_.]`, at most 63 characters; longer ones are skipped (as
/// TeraSky does) rather than truncated into a collision.
fn entity_name(name: &str) -> Option<String> {
    let cleaned: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '-' }).collect();
    (!cleaned.is_empty() && cleaned.len() <= 63).then_some(cleaned)
}

/// The `Resource` entity for a live object, or `None` when the object is not one the catalog
/// ingests (or its name cannot be an entity name).
pub fn resource_entity(object: &Value, cluster: &str, owner: &str) -> Option<Value> {
    let kind = text(&object["kind"]);
    let name = text(&object["metadata"]["name"]);
    let namespace = object["metadata"]["namespace"].as_str();
    let (group, version) = group_version(text(&object["apiVersion"]));
    let labels = &object["metadata"]["labels"];
    let mut annotations = Map::new();
    let mut put = |key: String, value: &str| {
        annotations.insert(key, json!(value));
    };
    let (spec_type, selector) = if let Some(xr) = object["spec"]["resourceRef"].as_object() {
        let (xr_group, xr_version) = group_version(xr.get("apiVersion").and_then(Value::as_str).unwrap_or_default());
        let xr_name = xr.get("name").and_then(Value::as_str).unwrap_or_default();
        for (key, value) in
            [("claim-name", name), ("claim-kind", kind), ("claim-version", version), ("claim-group", group)]
        {
            put(format!("{PREFIX}/{key}"), value);
        }
        let xr_kind = xr.get("kind").and_then(Value::as_str).unwrap_or_default();
        for (key, value) in [
            ("composite-kind", xr_kind),
            ("composite-name", xr_name),
            ("composite-group", xr_group),
            ("composite-version", xr_version),
        ] {
            put(format!("{PREFIX}/{key}"), value);
        }
        let composition = text(&object["spec"]["compositionRef"]["name"]);
        put(format!("{PREFIX}/composition-name"), composition);
        let ns = namespace.unwrap_or("default");
        (
            "crossplane-claim",
            format!(
                "crossplane.io/claim-name={name},crossplane.io/claim-namespace={ns},crossplane.io/composite={xr_name}"
            ),
        )
    } else if object["spec"]["crossplane"].is_object() {
        put(format!("{PREFIX}/crossplane-version"), "v2");
        put(format!("{PREFIX}/crossplane-scope"), if namespace.is_some() { "Namespaced" } else { "Cluster" });
        for (key, value) in [
            ("composite-kind", kind),
            ("composite-name", name),
            ("composite-group", group),
            ("composite-version", version),
        ] {
            put(format!("{PREFIX}/{key}"), value);
        }
        put(format!("{PREFIX}/composite-namespace"), namespace.unwrap_or_default());
        put(format!("{PREFIX}/composition-name"), text(&object["spec"]["crossplane"]["compositionRef"]["name"]));
        ("crossplane-xr", format!("crossplane.io/composite={name}"))
    } else if let Some(id) = labels["backstage.io/kubernetes-id"].as_str() {
        put("backstage.io/kubernetes-id".to_owned(), id);
        ("kubernetes-workload", format!("backstage.io/kubernetes-id={id}"))
    } else {
        return None;
    };
    let is_crossplane = spec_type != "kubernetes-workload";
    if is_crossplane {
        put(format!("{PREFIX}/crossplane-resource"), "true");
        put(format!("{PREFIX}/component-type"), spec_type);
    }
    for (key, value) in [
        ("kubernetes-resource-kind", kind),
        ("kubernetes-resource-name", name),
        ("kubernetes-resource-api-version", text(&object["apiVersion"])),
    ] {
        put(format!("{PREFIX}/{key}"), value);
    }
    if let Some(ns) = namespace {
        put(format!("{PREFIX}/kubernetes-resource-namespace"), ns);
        put("backstage.io/kubernetes-namespace".to_owned(), ns);
    }
    put("backstage.io/kubernetes-cluster".to_owned(), cluster);
    put("backstage.io/kubernetes-label-selector".to_owned(), &selector);
    Some(json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Resource",
        "metadata": {
            "name": entity_name(name)?,
            "namespace": "default",
            "annotations": annotations,
            "tags": [format!("cluster:{cluster}"), format!("kind:{}", kind.to_lowercase())],
        },
        "spec": {"type": spec_type, "owner": owner},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_become_resources_with_terasky_keys() {
        let claim = json!({"apiVersion": "acme.io/v1alpha1", "kind": "PostgreSQLInstance",
            "metadata": {"name": "orders-db", "namespace": "payments"},
            "spec": {"compositionRef": {"name": "aws-postgres"},
                     "resourceRef": {"apiVersion": "acme.io/v1alpha1", "kind": "XPostgreSQLInstance", "name": "orders-db-x7k2p"}}});
        let entity = resource_entity(&claim, "prod-eu", "team-payments").unwrap();
        assert_eq!(entity["kind"], "Resource");
        assert_eq!(entity["spec"]["type"], "crossplane-claim");
        let a = &entity["metadata"]["annotations"];
        assert_eq!(a["terasky.backstage.io/claim-kind"], "PostgreSQLInstance");
        assert_eq!(a["terasky.backstage.io/composite-name"], "orders-db-x7k2p");
        assert_eq!(a["terasky.backstage.io/crossplane-resource"], "true");
        assert_eq!(
            a["backstage.io/kubernetes-label-selector"],
            "crossplane.io/claim-name=orders-db,crossplane.io/claim-namespace=payments,crossplane.io/composite=orders-db-x7k2p"
        );
        assert_eq!(entity["metadata"]["name"], "orders-db", "keyed by the claim, not the suffixed XR");
    }

    #[test]
    fn v2_composites_and_labelled_workloads_are_ingested_and_others_are_not() {
        let xr = json!({"apiVersion": "acme.io/v1", "kind": "App", "metadata": {"name": "web", "namespace": "team"},
            "spec": {"crossplane": {"compositionRef": {"name": "app-k8s"}}}});
        let entity = resource_entity(&xr, "c1", "team-a").unwrap();
        assert_eq!(entity["spec"]["type"], "crossplane-xr");
        assert_eq!(entity["metadata"]["annotations"]["terasky.backstage.io/crossplane-scope"], "Namespaced");
        assert_eq!(
            entity["metadata"]["annotations"]["backstage.io/kubernetes-label-selector"],
            "crossplane.io/composite=web"
        );
        let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "team", "labels": {"backstage.io/kubernetes-id": "api"}}});
        assert_eq!(resource_entity(&deploy, "c1", "team-a").unwrap()["spec"]["type"], "kubernetes-workload");
        let plain = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
        assert!(resource_entity(&plain, "c1", "team-a").is_none());
        let long = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "a".repeat(70), "labels": {"backstage.io/kubernetes-id": "x"}}});
        assert!(resource_entity(&long, "c1", "team-a").is_none(), "over 63 characters: skipped, not truncated");
    }
}
