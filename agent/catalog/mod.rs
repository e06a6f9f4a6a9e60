//! The catalog core: pure functions from a [`Snapshot`](crate::source::Snapshot) to Backstage
//! entities and per-document errors. No git, no SQL, no Kubernetes — only the snapshot's files.
//! Backstage's semantics (`shared/reference/backstage.md`) are the specification.

pub mod entity_ref;
pub mod ingest;
pub mod location;
pub mod parse;
pub mod permission;
pub mod placeholders;
pub mod predicate;
pub mod relations;
pub mod search;
pub mod template_sources;
pub mod validate;

pub use entity_ref::EntityRef;
pub use ingest::{
    cluster_entity, ingest, ingest_each, ingest_paths, ingest_with, DocumentError, Entity, Ingest, Limits,
    LocationOutcome,
};

/// Set in the configuration, applied by the store: the catalog's word for it.
pub use crate::config::OrphanStrategy;

#[cfg(test)]
mod fuzz;
