//! The GitOps half, pure parts first: which cluster objects an entity declares, who
//! owns a live object, what a sync would change (create / update / unchanged / prune), and the
//! guards that refuse objects outside an entity's tenancy or a plan that would delete too much.
//! All of it is pure except `cluster`, the one client of the API server; `app::reconcile`
//! wires them into a pass.

pub mod cluster;
pub mod guard;
pub mod health;
pub mod ingest;
pub mod manifests;
pub mod plan;

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
