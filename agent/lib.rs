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
//! Data flows one way: no module imports a later one in the order `suggest`, `yaml`, `config`,
//! `telemetry`, `source`, `catalog`, `store`, `reconcile`, `notify`, `serve`, `app`
//! (`tests/it/layout.rs` keeps it so). `catalog` is pure and knows nothing of git, SQL or
//! Kubernetes; `serve` reads the store and writes only what its requests are about (recorded
//! webhook deliveries, an orphan deleted on request, its signing keys), handing sync requests to
//! the app's queue over channels; `reconcile` is pure but for `reconcile::cluster`, the one
//! API-server client; `notify` posts commit statuses; `app` wires the stages, supervises them and
//! owns shutdown.

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
