//! `metadata.managedFields` and server-side apply: who owns which field, what an Update takes
//! over, and when an Apply conflicts. A simplified structured-merge-diff: lists are atomic and an
//! Update records leaves only (no `.` entries for the maps it created).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use super::fields::{self, FieldPath};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Self::Apply => "Apply",
            Self::Update => "Update",
        }
    }
}

/// The identity a write is recorded under: one entry per manager, operation and subresource.
#[derive(Clone, Debug)]
pub struct Manager {
    pub name: String,
    pub operation: Operation,
    pub api_version: String,
    pub subresource: Option<String>,
}

#[derive(Clone, Debug)]
struct Entry {
    who: Manager,
    time: String,
    fields: BTreeSet<FieldPath>,
}

impl Entry {
    fn is(&self, who: &Manager) -> bool {
        self.who.name == who.name && self.who.operation == who.operation && self.who.subresource == who.subresource
    }

    /// How conflicts name this manager, as the real server's `printManager` does.
    fn describe(&self) -> String {
        let subresource =
            self.who.subresource.as_ref().map(|sub| format!(" with subresource {sub:?}")).unwrap_or_default();
        let version = match self.who.operation {
            Operation::Update => format!(" using {}", self.who.api_version),
            Operation::Apply => String::new(),
        };
        format!("{:?}{subresource}{version}", self.who.name)
    }
}

/// One field another manager owns with a different value than the applier's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// `"kubectl-edit" using v1`, or `"other"` for an Apply manager.
    pub manager: String,
    pub field: FieldPath,
}

#[derive(Clone, Debug, Default)]
pub struct ManagedFields {
    entries: Vec<Entry>,
}

impl ManagedFields {
    pub fn read(object: &Value) -> Self {
        let entries = object
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array)
            .map_or_else(Vec::new, |list| list.iter().filter_map(parse_entry).collect());
        Self { entries }
    }

    /// Writes the entries into `metadata.managedFields`, dropping the field when none remain.
    pub fn write(&self, object: &mut Value) {
        let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) else { return };
        let entries: Vec<Value> = self.entries.iter().filter(|e| !e.fields.is_empty()).map(render_entry).collect();
        if entries.is_empty() {
            metadata.remove("managedFields");
        } else {
            metadata.insert("managedFields".into(), Value::Array(entries));
        }
    }

    /// An Update (create, replace, merge patch): the writer takes the fields it added or changed
    /// from everyone else, and fields that no longer exist are nobody's.
    pub fn record_update(
        &mut self,
        who: &Manager,
        changed: &BTreeSet<FieldPath>,
        removed: &BTreeSet<FieldPath>,
        now: &str,
    ) {
        for entry in &mut self.entries {
            entry.fields.retain(|f| !changed.contains(f) && !removed.contains(f));
        }
        if !changed.is_empty() {
            self.entry_mut(who, now).fields.extend(changed.iter().cloned());
        }
        self.entries.retain(|e| !e.fields.is_empty());
    }

    /// Fields `applied` would change on `live` that some other manager owns.
    pub fn conflicts(&self, who: &Manager, applied: &BTreeMap<FieldPath, Value>, live: &Value) -> Vec<Conflict> {
        let mut found = Vec::new();
        for (path, value) in applied {
            let current = fields::get_path(live, path);
            // An empty map claims the map, not its keys: `labels: {}` changes no label.
            let claims_map_only =
                value.as_object().is_some_and(serde_json::Map::is_empty) && current.is_some_and(Value::is_object);
            if current == Some(value) || claims_map_only {
                continue;
            }
            for entry in self.entries.iter().filter(|e| !e.is(who)) {
                for owned in entry.fields.iter().filter(|owned| fields::overlaps(owned, path)) {
                    let conflict = Conflict { manager: entry.describe(), field: owned.clone() };
                    if !found.contains(&conflict) {
                        found.push(conflict);
                    }
                }
            }
        }
        found
    }

    /// Applies `applied` to `live` (both restricted to the writer's scope), after conflicts were
    /// checked (or forced: then the conflicting fields are taken from their owners).
    pub fn apply(&mut self, who: &Manager, applied: &BTreeMap<FieldPath, Value>, live: &mut Value, now: &str) {
        for conflict in self.conflicts(who, applied, live) {
            for entry in self.entries.iter_mut().filter(|e| !e.is(who)) {
                entry.fields.remove(&conflict.field);
            }
        }
        let previous = self.entries.iter().find(|e| e.is(who)).map(|e| e.fields.clone()).unwrap_or_default();
        let before = live.clone();
        for dropped in previous.iter().filter(|p| !applied.contains_key(*p)) {
            let kept_by_other =
                self.entries.iter().any(|e| !e.is(who) && e.fields.iter().any(|f| fields::overlaps(f, dropped)));
            if !kept_by_other {
                fields::remove_path(live, dropped);
            }
        }
        for (path, value) in applied {
            fields::set_path(live, path, value.clone());
        }
        let now_owned: BTreeSet<FieldPath> = applied.keys().cloned().collect();
        if now_owned != previous || *live != before {
            self.entry_mut(who, now).fields = now_owned;
        }
        self.entries.retain(|e| !e.fields.is_empty());
    }

    /// The writer's entry, created if new; its time moves only when its field set changes, so a
    /// write that changes nothing leaves the object byte-for-byte equal (and is not stored).
    fn entry_mut(&mut self, who: &Manager, now: &str) -> &mut Entry {
        let index = self.entries.iter().position(|e| e.is(who)).unwrap_or_else(|| {
            self.entries.push(Entry { who: who.clone(), time: String::new(), fields: BTreeSet::new() });
            self.entries.len() - 1
        });
        let entry = &mut self.entries[index];
        now.clone_into(&mut entry.time);
        entry.who.api_version.clone_from(&who.api_version);
        entry
    }

    #[cfg(test)]
    fn owned_by(&self, name: &str) -> BTreeSet<String> {
        self.entries
            .iter()
            .filter(|e| e.who.name == name)
            .flat_map(|e| e.fields.iter().map(|f| fields::display(f)))
            .collect()
    }
}

/// The message and causes of the real server's 409 for apply conflicts.
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [only] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            only.manager,
            fields::display(&only.field)
        );
    }
    let mut by_manager: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for conflict in conflicts {
        by_manager.entry(&conflict.manager).or_default().push(format!("- {}", fields::display(&conflict.field)));
    }
    let parts: Vec<String> = by_manager
        .into_iter()
        .map(|(manager, paths)| format!("conflicts with {manager}:\n{}", paths.join("\n")))
        .collect();
    format!("Apply failed with {} conflicts: {}", conflicts.len(), parts.join("\n"))
}

fn parse_entry(value: &Value) -> Option<Entry> {
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    let operation = match text("operation")?.as_str() {
        "Apply" => Operation::Apply,
        _ => Operation::Update,
    };
    Some(Entry {
        who: Manager {
            name: text("manager")?,
            operation,
            api_version: text("apiVersion")?,
            subresource: text("subresource"),
        },
        time: text("time").unwrap_or_default(),
        fields: value.get("fieldsV1").map(fields::from_fields_v1).unwrap_or_default(),
    })
}

fn render_entry(entry: &Entry) -> Value {
    let mut map = Map::new();
    map.insert("manager".into(), json!(entry.who.name));
    map.insert("operation".into(), json!(entry.who.operation.as_str()));
    map.insert("apiVersion".into(), json!(entry.who.api_version));
    map.insert("time".into(), json!(entry.time));
    map.insert("fieldsType".into(), json!("FieldsV1"));
    map.insert("fieldsV1".into(), fields::to_fields_v1(&entry.fields));
    if let Some(sub) = &entry.who.subresource {
        map.insert("subresource".into(), json!(sub));
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::fields::{leaves, Scope};

    const MAIN: Scope = Scope::Main { status_subresource: false };

    fn manager(name: &str, operation: Operation) -> Manager {
        Manager { name: name.into(), operation, api_version: "v1".into(), subresource: None }
    }

    fn apply(managed: &mut ManagedFields, name: &str, config: &Value, live: &mut Value) -> Vec<Conflict> {
        let who = manager(name, Operation::Apply);
        let applied = leaves(config, MAIN);
        let conflicts = managed.conflicts(&who, &applied, live);
        if conflicts.is_empty() {
            managed.apply(&who, &applied, live, "t");
        }
        conflicts
    }

    #[test]
    fn a_field_no_longer_applied_is_removed_unless_someone_else_owns_it() {
        let mut managed = ManagedFields::default();
        let mut live = json!({"metadata": {"name": "x"}});
        apply(&mut managed, "a", &json!({"data": {"k": "1", "gone": "1", "shared": "1"}}), &mut live);
        apply(&mut managed, "b", &json!({"data": {"shared": "1"}}), &mut live);
        apply(&mut managed, "a", &json!({"data": {"k": "1"}}), &mut live);
        assert_eq!(live["data"], json!({"k": "1", "shared": "1"}));
        assert_eq!(managed.owned_by("a"), [".data.k".to_owned()].into());
    }

    #[test]
    fn a_different_value_for_a_field_another_manager_owns_conflicts() {
        let mut managed = ManagedFields::default();
        let mut live = json!({"metadata": {"name": "x"}});
        apply(&mut managed, "a", &json!({"data": {"k": "1"}}), &mut live);
        let conflicts = apply(&mut managed, "b", &json!({"data": {"k": "2"}}), &mut live);
        assert_eq!(conflicts, vec![Conflict { manager: "\"a\"".into(), field: vec!["data".into(), "k".into()] }]);
        assert_eq!(conflict_message(&conflicts), "Apply failed with 1 conflict: conflict with \"a\": .data.k");
    }

    #[test]
    fn an_update_takes_the_fields_it_changes() {
        let mut managed = ManagedFields::default();
        let mut live = json!({"metadata": {"name": "x"}});
        apply(&mut managed, "rigger", &json!({"data": {"k": "1"}}), &mut live);
        let path = vec!["data".to_owned(), "k".to_owned()];
        managed.record_update(&manager("hand", Operation::Update), &[path].into(), &BTreeSet::new(), "t");
        live["data"]["k"] = json!("2");
        let conflicts = apply(&mut managed, "rigger", &json!({"data": {"k": "1"}}), &mut live);
        assert_eq!(
            conflict_message(&conflicts),
            "Apply failed with 1 conflict: conflict with \"hand\" using v1: .data.k"
        );
    }

    #[test]
    fn the_same_value_is_shared_without_conflict() {
        let mut managed = ManagedFields::default();
        let mut live = json!({"metadata": {"name": "x"}});
        apply(&mut managed, "a", &json!({"data": {"k": "1"}}), &mut live);
        assert!(apply(&mut managed, "b", &json!({"data": {"k": "1"}}), &mut live).is_empty());
        assert_eq!(managed.owned_by("a"), managed.owned_by("b"));
    }

    #[test]
    fn an_empty_map_does_not_conflict_with_the_keys_others_own() {
        let mut managed = ManagedFields::default();
        let mut live = json!({"metadata": {"name": "x"}});
        apply(&mut managed, "a", &json!({"metadata": {"labels": {"app": "web"}}}), &mut live);
        assert!(apply(&mut managed, "b", &json!({"metadata": {"labels": {}}}), &mut live).is_empty());
        assert_eq!(live["metadata"]["labels"], json!({"app": "web"}));
    }

    #[test]
    fn managed_fields_survive_the_object_round_trip() {
        let mut managed = ManagedFields::default();
        let mut live = json!({"metadata": {"name": "x"}});
        apply(&mut managed, "a", &json!({"metadata": {"labels": {"app": "web"}}}), &mut live);
        managed.write(&mut live);
        assert_eq!(
            live["metadata"]["managedFields"][0]["fieldsV1"],
            json!({"f:metadata": {"f:labels": {"f:app": {}}}})
        );
        assert_eq!(ManagedFields::read(&live).owned_by("a"), [".metadata.labels.app".to_owned()].into());
    }
}
