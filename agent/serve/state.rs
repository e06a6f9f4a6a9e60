//! What the HTTP side reads: the store, the metrics, and readiness flags the app sets.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::store::Store;
use crate::telemetry::Metrics;

#[derive(Clone)]
pub struct State {
    pub store: Store,
    pub metrics: Metrics,
    pub readiness: Arc<Readiness>,
}

/// Facts readiness depends on that only the app knows.
#[derive(Debug, Default)]
pub struct Readiness {
    migrated: AtomicBool,
    first_pass_done: AtomicBool,
}

impl Readiness {
    pub fn set_migrated(&self) {
        self.migrated.store(true, Ordering::Release);
    }

    pub fn set_first_pass_done(&self) {
        self.first_pass_done.store(true, Ordering::Release);
    }

    pub fn migrated(&self) -> bool {
        self.migrated.load(Ordering::Acquire)
    }

    pub fn first_pass_done(&self) -> bool {
        self.first_pass_done.load(Ordering::Acquire)
    }
}
