//! The catalog core: pure functions from a [`Snapshot`](crate::source::Snapshot) to Backstage
//! entities and per-document errors. No git, no SQL, no Kubernetes — only the snapshot's files.
//! Backstage's semantics (`shared/reference/backstage.md`) are the specification.

pub mod entity_ref;
pub mod ingest;
pub mod location;
pub mod parse;
pub mod placeholders;
pub mod relations;
pub mod search;
pub mod validate;

pub use entity_ref::EntityRef;
pub use ingest::{ingest, DocumentError, Entity, Ingest, Limits, LocationOutcome};
