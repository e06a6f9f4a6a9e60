//! The fake cluster's state — served types and stored objects — and the reads and the final
//! commit step every write shares. The writes themselves are in `write.rs`.

use std::time::SystemTime;

use base64::Engine as _;
use serde_json::{json, Value};

use super::errors::ApiError;
use super::resources::{Registry, ResourceType, CRD_GROUP, CRD_PLURAL};
use super::select::Selector;
use super::store::{Key, Store};

/// Namespaces a fresh cluster has.
pub const SEEDED_NAMESPACES: [&str; 3] = ["default", "kube-system", "kube-public"];

pub struct World {
    pub registry: Registry,
    pub store: Store,
}

/// The object a request addresses.
#[derive(Clone, Debug)]
pub struct Target {
    pub rt: ResourceType,
    /// `Some` exactly for namespaced types.
    pub namespace: Option<String>,
    pub name: String,
    /// The `/status` subresource rather than the main resource.
    pub status: bool,
}

impl Target {
    pub fn key(&self) -> Key {
        object_key(&self.rt, self.namespace.as_deref(), &self.name)
    }
}

pub fn object_key(rt: &ResourceType, namespace: Option<&str>, name: &str) -> Key {
    Key {
        group: rt.group.clone(),
        plural: rt.plural.clone(),
        namespace: namespace.unwrap_or_default().to_owned(),
        name: name.to_owned(),
    }
}

/// What a write produced: the object as stored (or as it would be, under dry run).
#[derive(Debug)]
pub struct Written {
    pub object: Value,
    pub created: bool,
}

/// Pages for `limit`/`continue`.
pub struct Page<'a> {
    pub limit: Option<usize>,
    pub continue_token: Option<&'a str>,
}

/// RFC 3339 to the second, the precision of Kubernetes timestamps.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

impl World {
    pub fn new() -> Self {
        let mut world = Self { registry: Registry::builtin(), store: Store::new() };
        for name in SEEDED_NAMESPACES {
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            let options = super::write::WriteOptions { manager: "kube-apiserver".into(), dry_run: false, force: false };
            // The registry knows namespaces and none exists yet: creation cannot fail.
            let _ = world.create(&world.namespace_type(), None, body, &options);
        }
        world
    }

    pub fn namespace_type(&self) -> ResourceType {
        self.registry.find("", "v1", "namespaces").cloned().unwrap_or_else(|| unreachable!("namespaces are built in"))
    }

    pub fn namespace_exists(&self, namespace: &str) -> bool {
        self.store.get(&object_key(&self.namespace_type(), None, namespace)).is_some()
    }

    pub fn existing(&self, target: &Target) -> Result<&Value, ApiError> {
        self.store.get(&target.key()).ok_or_else(|| ApiError::not_found(&target.rt, &target.name))
    }

    pub fn get(&self, target: &Target) -> Result<Value, ApiError> {
        self.existing(target).map(|object| present(&target.rt, object))
    }

    /// A `…List` in the real shape; the continue token is the last returned item's key.
    pub fn list(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        selector: &Selector,
        page: &Page,
    ) -> Result<Value, ApiError> {
        let after = page.continue_token.map(decode_continue).transpose()?;
        let mut items = self
            .store
            .list(&rt.group, &rt.plural, namespace)
            .filter(|(key, _)| after.as_ref().is_none_or(|after| (&key.namespace, &key.name) > (&after.0, &after.1)))
            .filter(|(_, object)| selector.matches(object));
        let mut out = Vec::new();
        let mut next = None;
        for (key, object) in items.by_ref() {
            if page.limit.is_some_and(|limit| out.len() == limit) {
                next = Some((key, object));
                break;
            }
            out.push((key, list_item(rt, object)));
        }
        let mut metadata = json!({"resourceVersion": self.store.revision().to_string()});
        if next.is_some() {
            let remaining = 1 + items.count();
            if let Some((key, _)) = out.last() {
                metadata["continue"] = json!(encode_continue(&key.namespace, &key.name));
                metadata["remainingItemCount"] = json!(remaining);
            }
        }
        let items: Vec<Value> = out.into_iter().map(|(_, item)| item).collect();
        Ok(
            json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": metadata, "items": items}),
        )
    }

    /// Stores `new` unless it changes nothing; an object whose deletion waited on finalizers
    /// goes once the last one is removed.
    pub fn commit(&mut self, target: &Target, old: Option<&Value>, new: Value, dry_run: bool) -> Written {
        let created = old.is_none();
        let finalizers_done = new.pointer("/metadata/finalizers").and_then(Value::as_array).is_none_or(Vec::is_empty);
        if new.pointer("/metadata/deletionTimestamp").is_some() && finalizers_done {
            let object = if dry_run { new } else { self.remove_object(&target.key()).unwrap_or(new) };
            return Written { object: present(&target.rt, &object), created };
        }
        if old == Some(&new) || dry_run {
            return Written { object: present(&target.rt, &new), created };
        }
        let stored = self.store.put(target.key(), new);
        if target.rt.group == CRD_GROUP && target.rt.plural == CRD_PLURAL {
            self.refresh_custom_types();
        }
        Written { object: present(&target.rt, &stored), created }
    }

    /// Removes an object and what the real server's controllers would remove with it: a
    /// namespace's contents, a CRD's custom resources (and the CRD's served types).
    pub fn remove_object(&mut self, key: &Key) -> Option<Value> {
        let removed = self.store.remove(key)?;
        for dependent in self.dependents(key) {
            self.store.remove(&dependent);
        }
        if key.group == CRD_GROUP && key.plural == CRD_PLURAL {
            self.refresh_custom_types();
        }
        Some(removed)
    }

    fn dependents(&self, key: &Key) -> Vec<Key> {
        let namespace = (key.group.is_empty() && key.plural == "namespaces").then_some(key.name.as_str());
        // A CRD is named `{plural}.{group}`.
        let custom_type =
            (key.group == CRD_GROUP && key.plural == CRD_PLURAL).then(|| key.name.split_once('.')).flatten();
        self.store
            .keys()
            .filter(|k| {
                namespace.is_some_and(|ns| k.namespace == ns)
                    || custom_type.is_some_and(|(plural, group)| k.plural == plural && k.group == group)
            })
            .cloned()
            .collect()
    }

    fn refresh_custom_types(&mut self) {
        let crds: Vec<Value> = self.store.list(CRD_GROUP, CRD_PLURAL, None).map(|(_, crd)| crd.clone()).collect();
        self.registry.set_custom(crds.iter());
    }
}

/// The object as served at `rt`'s version: custom resources are stored once per group and kind
/// and served at every version without conversion (a CRD's `conversion: None`).
pub fn present(rt: &ResourceType, object: &Value) -> Value {
    let mut object = object.clone();
    object["apiVersion"] = json!(rt.api_version());
    object["kind"] = json!(rt.kind);
    object
}

/// Built-in lists omit each item's `apiVersion` and `kind`; custom resource lists keep them.
fn list_item(rt: &ResourceType, object: &Value) -> Value {
    let mut item = present(rt, object);
    if rt.builtin {
        if let Some(map) = item.as_object_mut() {
            map.remove("apiVersion");
            map.remove("kind");
        }
    }
    item
}

fn encode_continue(namespace: &str, name: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(json!([namespace, name]).to_string())
}

fn decode_continue(token: &str) -> Result<(String, String), ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token}"));
    let bytes = base64::engine::general_purpose::STANDARD.decode(token).map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}
