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
//! Imports run one way, in the pipeline's order: no module imports a later one in the order
//! `suggest`, `yaml`, `config`, `telemetry`, `retry`, `source`, `catalog`, `template`, `lint`,
//! `store`, `reconcile`, `notify`, `serve`, `app`, and no files import each other in a circle
//! (`tests/it/layout.rs` keeps both so). `catalog` and `template` are pure and know nothing of
//! git, SQL or Kubernetes; `source::github` holds discovery's policy beside its client; `store`
//! writes a walk as the catalog sends it (`store::stream`); `reconcile` holds its pure plan and
//! guards and, beside them, the run that executes them against the API server and writes back
//! to the store; `serve` reads the store and writes only what its requests are about (recorded
//! webhook deliveries, an orphan deleted on request, its signing keys), handing sync requests
//! to the app's queue over channels; `notify` decides and posts commit statuses; `app` connects
//! the stages, schedules the passes (the work queue, the changed-files shortcut), supervises
//! them and owns shutdown. What a pass reads (`app::context::Context`) is kept apart from what
//! passes remember (`app::context::State`).

pub mod app;
pub mod catalog;
pub mod config;
pub mod lint;
pub mod notify;
pub mod reconcile;
pub mod retry;
pub mod serve;
pub mod source;
pub mod store;
pub mod suggest;
pub mod telemetry;
pub mod template;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod yaml;
