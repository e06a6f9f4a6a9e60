//! A fake Kubernetes API server over plain HTTP, for tests (feature `testkit`).
//!
//! It speaks enough of the real API for `kube::Client` and `kubectl`: discovery (legacy and
//! aggregated), CRDs registered at runtime, get/list/watch with selectors, create, replace, merge
//! patch, server-side apply with managed fields and conflicts, dry run, finalizers, the status
//! subresource, injected faults and a request log. `docs/fake-apiserver.md` lists what it
//! reproduces and what it does not.
//!
//! ```text
//!  HTTP ─▶ faults::gate (faults, request log) ─▶ api (paths, verbs) ─▶ world (reads, commit)
//!                                                  │                     write (create/update/apply/delete)
//!                                                  └─▶ watch ◀── store (objects, revisions, history)
//! ```

mod api;
mod control;
mod discovery;
mod errors;
mod faults;
mod fields;
mod managed;
mod resources;
mod select;
mod server;
mod server_fields;
mod store;
mod watch;
mod world;
mod write;

pub use faults::{Fault, FaultKind, RequestRecord};
pub use server::{FakeApiServer, CONTROLLER_MANAGER};
