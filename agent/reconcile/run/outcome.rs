//! What executing one entity's plan did, as applying it and judging its health both see it.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use crate::reconcile::cluster::ClusterError;
use crate::reconcile::plan::ObjectKey;

/// What executing a plan did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The object as the server returned it, for each applied step.
    pub applied: BTreeMap<ObjectKey, Value>,
    pub errors: Vec<String>,
    pub drift_corrected: u64,
    /// Drifted objects left alone because the entity turned self-heal off.
    pub drift_ignored: Vec<ObjectKey>,
    /// Objects that looked changed but that an apply would leave as they are (the server had
    /// only normalised them: defaults, dropped nulls, quantities): nothing to write.
    pub settled: HashSet<ObjectKey>,
    /// An error may pass by itself (API server unavailable, kind not served yet): retry soon.
    pub unavailable: bool,
}

impl Outcome {
    pub(super) fn fail(&mut self, what: impl std::fmt::Display, error: &ClusterError) {
        self.unavailable |= error.is_transient() || matches!(error, ClusterError::UnknownKind { .. });
        self.errors.push(format!("{what}: {error}"));
    }
}
