//! The writes: create, replace, merge patch, server-side apply and delete. Each checks what the
//! real server checks (names, namespaces, resourceVersion preconditions, apply conflicts), records
//! field ownership, and ends in [`World::commit`].

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::errors::ApiError;
use super::fields::{self, leaves, FieldPath, Scope};
use super::managed::{ManagedFields, Manager, Operation};
use super::resources::ResourceType;
use super::server_fields::{bump_generation, carry_server_fields, prepare_new, server_effects, text};
use super::world::{now, present, Target, World, Written};

#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// `fieldManager`: the name ownership is recorded under.
    pub manager: String,
    pub dry_run: bool,
    /// Apply only: take fields other managers own instead of answering 409.
    pub force: bool,
}

/// What DELETE did.
#[derive(Debug)]
pub enum Deleted {
    /// Finalizers remain: `deletionTimestamp` is set and the object stays until they are removed.
    Pending(Value),
    Gone(Value),
}

impl World {
    pub fn create(
        &mut self,
        rt: &ResourceType,
        namespace: Option<&str>,
        mut body: Value,
        options: &WriteOptions,
    ) -> Result<Written, ApiError> {
        check_type(rt, &body, false)?;
        let name = name_for_create(rt, &mut body)?;
        let target = Target { rt: rt.clone(), namespace: namespace.map(str::to_owned), name, status: false };
        check_identity(&target, &body)?;
        self.check_namespace(&target)?;
        if self.store.get(&target.key()).is_some() {
            return Err(ApiError::already_exists(rt, &target.name));
        }
        prepare_new(&target, &mut body);
        let changed = leaves(&body, scope(&target)).into_keys().collect();
        let mut managed = ManagedFields::default();
        managed.record_update(&updater(&target, options), &changed, &BTreeSet::new(), &now());
        managed.write(&mut body);
        server_effects(&target, None, &mut body)?;
        Ok(self.commit(&target, None, body, options.dry_run))
    }

    pub fn replace(&mut self, target: &Target, body: Value, options: &WriteOptions) -> Result<Written, ApiError> {
        self.update(target, options, |_| body)
    }

    pub fn merge_patch(&mut self, target: &Target, patch: &Value, options: &WriteOptions) -> Result<Written, ApiError> {
        if !patch.is_object() {
            return Err(ApiError::bad_request("a merge patch must be a JSON object"));
        }
        self.update(target, options, |old| {
            let mut new = old.clone();
            fields::merge_patch(&mut new, patch);
            new
        })
    }

    /// An Update operation: `make` turns the live object into the requested one.
    pub fn update(
        &mut self,
        target: &Target,
        options: &WriteOptions,
        make: impl FnOnce(&Value) -> Value,
    ) -> Result<Written, ApiError> {
        let old = self.existing(target)?.clone();
        let mut new = make(&old);
        check_type(&target.rt, &new, false)?;
        check_identity(target, &new)?;
        check_precondition(target, &old, &new)?;
        carry_server_fields(target, &old, &mut new);
        isolate_status(target, &old, &mut new);
        let (changed, removed) = diff(&leaves(&old, scope(target)), &leaves(&new, scope(target)));
        let mut managed = ManagedFields::read(&old);
        managed.record_update(&updater(target, options), &changed, &removed, &now());
        managed.write(&mut new);
        bump_generation(target, &old, &mut new);
        server_effects(target, Some(&old), &mut new)?;
        Ok(self.commit(target, Some(&old), new, options.dry_run))
    }

    /// Server-side apply; applying to a missing object creates it.
    pub fn apply(&mut self, target: &Target, config: &Value, options: &WriteOptions) -> Result<Written, ApiError> {
        check_type(&target.rt, config, true)?;
        check_identity(target, config)?;
        let applied = leaves(config, scope(target));
        let who = Manager {
            name: options.manager.clone(),
            operation: Operation::Apply,
            api_version: target.rt.api_version(),
            subresource: target.status.then(|| "status".to_owned()),
        };
        let Some(old) = self.store.get(&target.key()).cloned() else {
            return self.apply_create(target, &who, &applied, options);
        };
        check_precondition(target, &old, config)?;
        let mut managed = ManagedFields::read(&old);
        let conflicts = managed.conflicts(&who, &applied, &old);
        if !conflicts.is_empty() && !options.force {
            return Err(ApiError::apply_conflict(&conflicts));
        }
        let mut new = old.clone();
        managed.apply(&who, &applied, &mut new, &now());
        managed.write(&mut new);
        bump_generation(target, &old, &mut new);
        server_effects(target, Some(&old), &mut new)?;
        Ok(self.commit(target, Some(&old), new, options.dry_run))
    }

    fn apply_create(
        &mut self,
        target: &Target,
        who: &Manager,
        applied: &BTreeMap<FieldPath, Value>,
        options: &WriteOptions,
    ) -> Result<Written, ApiError> {
        if target.status {
            return Err(ApiError::not_found(&target.rt, &target.name));
        }
        self.check_namespace(target)?;
        let mut new = json!({"metadata": {"name": target.name}});
        let mut managed = ManagedFields::default();
        managed.apply(who, applied, &mut new, &now());
        prepare_new(target, &mut new);
        managed.write(&mut new);
        server_effects(target, None, &mut new)?;
        Ok(self.commit(target, None, new, options.dry_run))
    }

    pub fn delete(
        &mut self,
        target: &Target,
        dry_run: bool,
        preconditions: Option<&Value>,
    ) -> Result<Deleted, ApiError> {
        let old = self.existing(target)?.clone();
        check_delete_preconditions(target, &old, preconditions)?;
        let has_finalizers =
            old.pointer("/metadata/finalizers").and_then(Value::as_array).is_some_and(|f| !f.is_empty());
        if !has_finalizers {
            let gone = if dry_run { old } else { self.remove_object(&target.key()).unwrap_or(old) };
            return Ok(Deleted::Gone(present(&target.rt, &gone)));
        }
        if old.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok(Deleted::Pending(present(&target.rt, &old)));
        }
        let mut new = old.clone();
        new["metadata"]["deletionTimestamp"] = json!(now());
        new["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        Ok(Deleted::Pending(self.commit(target, Some(&old), new, dry_run).object))
    }

    fn check_namespace(&self, target: &Target) -> Result<(), ApiError> {
        match &target.namespace {
            Some(namespace) if !self.namespace_exists(namespace) => Err(ApiError::namespace_not_found(namespace)),
            _ => Ok(()),
        }
    }
}

fn scope(target: &Target) -> Scope {
    if target.status {
        Scope::Status
    } else {
        Scope::Main { status_subresource: target.rt.status }
    }
}

fn updater(target: &Target, options: &WriteOptions) -> Manager {
    Manager {
        name: options.manager.clone(),
        operation: Operation::Update,
        api_version: target.rt.api_version(),
        subresource: target.status.then(|| "status".to_owned()),
    }
}

/// `apiVersion` and `kind` in a body must name the resource of the URL (and must be present
/// for apply, whose body is a complete configuration).
fn check_type(rt: &ResourceType, body: &Value, required: bool) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    for (field, expected) in [("/apiVersion", rt.api_version()), ("/kind", rt.kind.clone())] {
        match text(body, field) {
            Some(found) if found != expected => {
                return Err(ApiError::bad_request(format!(
                    "the {} in the data ({found}) does not match the expected {} ({expected})",
                    &field[1..],
                    &field[1..]
                )));
            }
            None if required => {
                return Err(ApiError::bad_request(format!(
                    "{}: Required value: {} must be set",
                    &field[1..],
                    &field[1..]
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_identity(target: &Target, body: &Value) -> Result<(), ApiError> {
    if let Some(name) = text(body, "/metadata/name").filter(|name| *name != target.name) {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({name}) does not match the name on the URL ({})",
            target.name
        )));
    }
    let namespace = text(body, "/metadata/namespace");
    if namespace.is_some() && namespace != target.namespace.as_deref() {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

/// A `resourceVersion` in the request is a precondition: it must be the live one.
fn check_precondition(target: &Target, old: &Value, new: &Value) -> Result<(), ApiError> {
    match text(new, "/metadata/resourceVersion") {
        Some(rv) if Some(rv) != text(old, "/metadata/resourceVersion") => {
            Err(ApiError::modified(&target.rt, &target.name))
        }
        _ => Ok(()),
    }
}

fn check_delete_preconditions(target: &Target, old: &Value, preconditions: Option<&Value>) -> Result<(), ApiError> {
    let Some(preconditions) = preconditions else { return Ok(()) };
    let checks =
        [("UID", "/uid", "/metadata/uid"), ("ResourceVersion", "/resourceVersion", "/metadata/resourceVersion")];
    for (field, wanted_at, live_at) in checks {
        let live = text(old, live_at).unwrap_or_default();
        if let Some(wanted) = text(preconditions, wanted_at).filter(|wanted| *wanted != live) {
            let mut error = ApiError::modified(&target.rt, &target.name);
            error.message =
                format!("Precondition failed: {field} in precondition: {wanted}, {field} in object meta: {live}");
            return Err(error);
        }
    }
    Ok(())
}

fn name_for_create(rt: &ResourceType, body: &mut Value) -> Result<String, ApiError> {
    if let Some(name) = text(body, "/metadata/name") {
        return Ok(name.to_owned());
    }
    let Some(prefix) = text(body, "/metadata/generateName") else {
        return Err(ApiError::invalid(rt, "", "metadata.name: Required value: name or generateName is required"));
    };
    let name = format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..5]);
    body["metadata"]["name"] = json!(name);
    Ok(name)
}

/// The main resource and `/status` each change only their own part.
fn isolate_status(target: &Target, old: &Value, new: &mut Value) {
    let (mut result, status) = if target.status {
        (old.clone(), new.get("status").cloned())
    } else if target.rt.status {
        (std::mem::take(new), old.get("status").cloned())
    } else {
        return;
    };
    if let Some(map) = result.as_object_mut() {
        match status {
            Some(status) => map.insert("status".into(), status),
            None => map.remove("status"),
        };
    }
    *new = result;
}

fn diff(
    old: &BTreeMap<FieldPath, Value>,
    new: &BTreeMap<FieldPath, Value>,
) -> (BTreeSet<FieldPath>, BTreeSet<FieldPath>) {
    let changed =
        new.iter().filter(|(path, value)| old.get(*path) != Some(value)).map(|(path, _)| path.clone()).collect();
    let removed = old.keys().filter(|path| !new.contains_key(*path)).cloned().collect();
    (changed, removed)
}
