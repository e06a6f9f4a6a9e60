//! The GitOps half. Pure parts first: which cluster objects an entity declares (`manifests`),
//! what a sync would change (`plan`: create / update / unchanged / prune), the guards that
//! refuse objects outside an entity's tenancy or a plan that would delete too much (`guard`),
//! how healthy an applied object is (`health`), and the `Resource` entity a live object makes
//! (`ingest`). Then the effects: `cluster`, the one client of the API server; `reconciler`, the
//! state a run holds on to (connections, reachability, owners) with the store, metrics and log
//! memory it writes to; `run`, which plans, guards,
//! applies and prunes one source's objects and writes their state back to the store; `drift`,
//! which watches what was applied; and `ingest::ingest`, which reads cluster objects back into
//! the catalog.

pub mod cluster;
pub mod drift;
pub mod guard;
pub mod health;
pub mod ingest;
pub mod manifests;
pub mod plan;
pub mod reconciler;
pub mod run;

pub use reconciler::{ReconcileError, Reconciler};
pub use run::{reconcile, reconcile_stored, EntityReport, Mode, SourceReport};

/// The label every object Rigger applies carries, with [`MANAGED_BY_VALUE`].
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "rigger";
/// Label: a hash of the owning entity's ref (label values are limited to 63 characters).
pub const ENTITY_LABEL: &str = "rigger.dev/entity";
/// Annotation: the owning entity's ref, readable.
pub const ENTITY_ANNOTATION: &str = "rigger.dev/entity-ref";
/// Annotation: the hash of the object as Rigger last applied it.
pub const APPLIED_HASH: &str = "rigger.dev/applied-hash";
/// Entity annotation: path or glob of the manifest files, relative to the entity's catalog file.
pub use crate::store::MANIFESTS_ANNOTATION;
/// Entity annotation: `"true"` lets a plan delete everything the entity owns.
pub const ALLOW_MASS_PRUNE: &str = "rigger.dev/allow-mass-prune";
