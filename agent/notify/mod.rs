//! Telling developers, where they look, what became of their commits: commit statuses on
//! GitHub (`rigger/catalog`, `rigger/cluster`), posted off the sync's path so that GitHub being
//! slow or down never delays or fails a pass.

mod statuses;
pub mod verdict;

pub use statuses::{Description, StatusState, Statuses, Target, Update, CATALOG_CONTEXT, CLUSTER_CONTEXT};
