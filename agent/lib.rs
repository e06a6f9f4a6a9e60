//! Rigger: a GitOps agent for a Backstage-based developer platform.
//!
//! ```text
//!  triggers: poll timer · notify (local dirs) · startup
//!       │
//!  source ──Snapshot{repo, commit, files}──▶ catalog ──entities + per-document errors──▶ store
//!  (gix, local dirs, notify)                (parse, envelope, locations, annotations)    (sqlx: a
//!                                                                                          transaction per
//!                                                                                          location or batch
//!                                                                                          of small ones)
//!                                                                                              │
//!  serve (axum): status page · /healthz /readyz /metrics · Backstage catalog API  ◀── reads ─┤
//!                                                                                              │
//!  notify: each pass's verdict on its commit ──▶ GitHub commit statuses                        │
//!                                                                                              │
//!  reconcile (kube): entities' manifests ── plan · dry run · apply · prune ──▶ API server      │
//!                    health + inventory ──▶ store ◀── drift watch, cluster ingest ─────────────┘
//! ```
//!
//! Data flows one way. `catalog` is pure and knows nothing of git, SQL or Kubernetes; `serve`
//! only reads the store; `reconcile` is pure but for `reconcile::cluster`, the one API-server
//! client; `app` wires the stages, supervises them and owns shutdown.

pub mod app;
pub mod catalog;
pub mod config;
pub mod notify;
pub mod reconcile;
pub mod serve;
pub mod source;
pub mod store;
pub mod suggest;
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod yaml;
