//! Every metric Rigger exports, in one place. Names are documented in `docs/metrics.md`; labels
//! are bounded (source names from config, entity kinds, fixed outcome words).

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Sync passes by source and outcome (`success`, `unchanged`, `failure`, `skipped` when
    /// another replica holds the source).
    pub sync_runs: IntCounterVec,
    /// Duration of sync passes that did work, by source.
    pub sync_duration: HistogramVec,
    /// Unix time of the last successful pass, by source.
    pub sync_last_success: IntGaugeVec,
    /// Catalog files currently in error, by source.
    pub location_errors: IntGaugeVec,
    /// Stored catalog files no longer reached whose deletion is held back because a file in
    /// error leads to them, by source.
    pub deletions_held: IntGaugeVec,
    /// Catalog files whose reading panicked (confined to the file, which fails alone), by source.
    pub catalog_panics: IntCounterVec,
    /// Git caches that did not open and were moved aside and cloned again, by source.
    pub git_cache_rebuilds: IntCounterVec,
    /// Entities in the store, by kind.
    pub entities: IntGaugeVec,
    /// Relations whose target entity does not exist.
    pub unresolved_relations: IntGauge,
    /// Entity rows written, by operation (`insert`, `update`, `delete`).
    pub entity_writes: IntCounterVec,
    /// Entity refs a source declares that another location owns, after its last pass.
    pub conflicts: IntGaugeVec,
    /// Remote checks by source and result (`fetched`, `unchanged`).
    pub git_fetches: IntCounterVec,
    /// Retries of transient failures, by operation.
    pub retries: IntCounterVec,
    /// 1 when the last store round trip succeeded.
    pub store_up: IntGauge,
    /// Sources waiting for a worker.
    pub queue_depth: IntGauge,
    /// Seconds a source waited in the queue before its pass started.
    pub queue_wait: Histogram,
    /// Sync requests that queued a pass, by reason (`poll`, `change`, `webhook`, `retry`, …).
    pub queue_requests: IntCounterVec,
    /// Sync requests absorbed by a pass already queued or running, by reason.
    pub queue_coalesced: IntCounterVec,
    /// Webhook deliveries by event and outcome (`accepted`, `duplicate`, `ignored`,
    /// `bad_signature`, `too_large`, `busy`, `malformed`, `store_down`).
    pub webhook_deliveries: IntCounterVec,
    /// GitHub API requests left in the current rate-limit window, by source.
    pub github_rate_remaining: IntGaugeVec,
    /// Commit statuses by context, state and outcome (`posted`, `duplicate`, `failed`,
    /// `dropped`).
    pub commit_statuses: IntCounterVec,
    /// Passes of local sources by scope: `changed_files` (only what the watcher named) or `full`.
    pub local_rescans: IntCounterVec,
    /// Kubernetes API calls by operation and outcome (`ok`, `unavailable`, `error`).
    pub cluster_requests: IntCounterVec,
    /// 1 when the last API server check succeeded (absent without a `kubernetes` section).
    pub cluster_up: IntGauge,
    /// Cluster objects written by source and action (`create`, `update`, `prune`).
    pub reconcile_objects: IntCounterVec,
    /// Entities whose reconcile failed, by source and reason (`manifests`, `refused`, `claimed`,
    /// `dry_run`, `apply`, `conflict`, `prune_blocked`, `cluster`).
    pub reconcile_errors: IntCounterVec,
    /// Drifted objects re-applied (changed in the cluster, not in git), by source.
    pub drift_corrections: IntCounterVec,
    /// Entities with cluster objects, by source and health after the last pass.
    pub entity_health: IntGaugeVec,
    /// Prunes stopped by the mass-deletion guards, by source.
    pub prune_blocked: IntCounterVec,
    /// Objects the source's entities declare but another entity holds, after the last pass.
    pub claims_refused: IntGaugeVec,
    /// Sources by what they are doing now (`queued`, `fetching`, `writing`, `settling`,
    /// `reconciling`); idle sources are in none.
    pub sources_in_state: IntGaugeVec,
    /// Template entities whose sources a pass checked, by source.
    pub templates_synced: IntCounterVec,
    /// Template source files recorded as changed, by source and change (`added`, `modified`,
    /// `removed`).
    pub template_changes: IntCounterVec,
    /// Time to answer an HTTP request (to its headers), by route template and status class.
    pub http_requests: HistogramVec,
}

/// Why a pass was queued: each reason's series exists from start-up.
pub const QUEUE_REASONS: [&str; 10] = [
    "poll",
    "change",
    "webhook",
    "recorded",
    "refresh",
    "retry",
    "changed_during_sync",
    "discovery",
    "startup",
    "drift",
];

/// What a source can be doing (`rigger_sources_in_state`).
pub const SOURCE_STATES: [&str; 5] = ["queued", "fetching", "writing", "settling", "reconciling"];

/// The commit this binary was built from (`RIGGER_COMMIT` at build time, else git's HEAD, else
/// `unknown`), for `rigger_build_info`.
pub const BUILD_COMMIT: &str = env!("RIGGER_BUILD_COMMIT");

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Builds and registers every metric. Registration of fresh metrics in a fresh registry
    /// cannot fail, so failures are programming errors.
    #[allow(clippy::expect_used, clippy::too_many_lines)] // one declaration per metric
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter");
            registry.register(Box::new(metric.clone())).expect("unique counter");
            metric
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let metric = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid gauge");
            registry.register(Box::new(metric.clone())).expect("unique gauge");
            metric
        };
        let sync_duration = HistogramVec::new(
            HistogramOpts::new("rigger_sync_duration_seconds", "Duration of sync passes that did work.")
                .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0]),
            &["source"],
        )
        .expect("valid histogram");
        registry.register(Box::new(sync_duration.clone())).expect("unique histogram");
        let unresolved_relations = IntGauge::new(
            "rigger_catalog_unresolved_relations",
            "Relations whose target entity does not exist (e.g. a dangling owner).",
        )
        .expect("valid gauge");
        registry.register(Box::new(unresolved_relations.clone())).expect("unique gauge");
        let store_up =
            IntGauge::new("rigger_store_up", "1 when the last store round trip succeeded.").expect("valid gauge");
        registry.register(Box::new(store_up.clone())).expect("unique gauge");
        let queue_depth =
            IntGauge::new("rigger_queue_depth", "Sources waiting for a sync worker.").expect("valid gauge");
        registry.register(Box::new(queue_depth.clone())).expect("unique gauge");
        let queue_wait = Histogram::with_opts(
            HistogramOpts::new(
                "rigger_queue_wait_seconds",
                "Time a source waited in the queue before its pass started.",
            )
            .buckets(vec![0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]),
        )
        .expect("valid histogram");
        registry.register(Box::new(queue_wait.clone())).expect("unique histogram");
        // Registered by `init_reconcile` only: without a cluster there is nothing to be up.
        let cluster_up = IntGauge::new("rigger_cluster_up", "1 when the last Kubernetes API server check succeeded.")
            .expect("valid gauge");
        let http_requests = HistogramVec::new(
            HistogramOpts::new(
                "rigger_http_request_duration_seconds",
                "Time to answer an HTTP request (to its headers), by route and status class.",
            )
            .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            &["route", "status_class"],
        )
        .expect("valid histogram");
        registry.register(Box::new(http_requests.clone())).expect("unique histogram");
        let build_info = gauge(
            "rigger_build_info",
            "Always 1; the labels say which Rigger this is (version, commit).",
            &["version", "commit"],
        );
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION"), BUILD_COMMIT]).set(1);
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
            .expect("unique process collector");
        let metrics = Self {
            http_requests,
            cluster_requests: counter(
                "rigger_cluster_requests_total",
                "Kubernetes API calls by operation and outcome (ok, conflict, unavailable, error).",
                &["operation", "outcome"],
            ),
            cluster_up,
            reconcile_objects: counter(
                "rigger_reconcile_objects_total",
                "Cluster objects written, by source and action (create, update, prune).",
                &["source", "action"],
            ),
            reconcile_errors: counter(
                "rigger_reconcile_errors_total",
                "Entities whose cluster reconcile failed, by source and reason.",
                &["source", "reason"],
            ),
            drift_corrections: counter(
                "rigger_drift_corrections_total",
                "Drifted cluster objects re-applied, by source.",
                &["source"],
            ),
            entity_health: gauge(
                "rigger_entity_health",
                "Entities with cluster objects, by source and health after the last reconcile.",
                &["source", "health"],
            ),
            prune_blocked: counter(
                "rigger_prune_blocked_total",
                "Prunes stopped by the mass-deletion guards, by source.",
                &["source"],
            ),
            sources_in_state: gauge(
                "rigger_sources_in_state",
                "Sources by what they are doing now: queued, fetching, writing (catalog files), settling, reconciling.",
                &["state"],
            ),
            claims_refused: gauge(
                "rigger_cluster_claims_refused",
                "Objects the source's entities declare that another entity (of any source) holds; refused, nothing changes hands.",
                &["source"],
            ),
            templates_synced: counter(
                "rigger_templates_synced_total",
                "Template entities whose skeleton sources a pass checked, by source.",
                &["source"],
            ),
            template_changes: counter(
                "rigger_template_source_changes_total",
                "Template skeleton files recorded as changed, by source and change.",
                &["source", "change"],
            ),
            queue_requests: counter(
                "rigger_queue_requests_total",
                "Sync requests that queued a pass, by reason.",
                &["reason"],
            ),
            queue_coalesced: counter(
                "rigger_queue_coalesced_total",
                "Sync requests absorbed by a pass already queued or running, by reason.",
                &["reason"],
            ),
            webhook_deliveries: counter(
                "rigger_webhook_deliveries_total",
                "Webhook deliveries by event and outcome.",
                &["event", "outcome"],
            ),
            commit_statuses: counter(
                "rigger_commit_statuses_total",
                "Commit statuses for GitHub by context, state and outcome.",
                &["context", "state", "outcome"],
            ),
            github_rate_remaining: gauge(
                "rigger_github_rate_limit_remaining",
                "GitHub API requests left in the current rate-limit window (X-RateLimit-Remaining).",
                &["source"],
            ),
            local_rescans: counter(
                "rigger_local_rescans_total",
                "Passes of local sources by scope: changed_files (only what the watcher named) or full.",
                &["source", "scope"],
            ),
            queue_depth,
            queue_wait,
            sync_runs: counter("rigger_sync_runs_total", "Sync passes by source and outcome.", &["source", "outcome"]),
            sync_last_success: gauge(
                "rigger_sync_last_success_timestamp_seconds",
                "Unix time of the last successful sync pass.",
                &["source"],
            ),
            location_errors: gauge("rigger_location_errors", "Catalog files currently in error.", &["source"]),
            deletions_held: gauge(
                "rigger_location_deletions_held",
                "Catalog files no longer reached whose deletion is held back by a file in error that leads to them.",
                &["source"],
            ),
            catalog_panics: counter(
                "rigger_catalog_panics_total",
                "Catalog files whose reading panicked; the file fails alone.",
                &["source"],
            ),
            git_cache_rebuilds: counter(
                "rigger_git_cache_rebuilds_total",
                "Git caches that did not open and were moved aside and cloned again.",
                &["source"],
            ),
            entities: gauge("rigger_catalog_entities", "Entities in the store, by kind.", &["kind"]),
            entity_writes: counter(
                "rigger_store_entity_writes_total",
                "Entity rows written, by operation.",
                &["operation"],
            ),
            conflicts: gauge(
                "rigger_catalog_conflicts",
                "Entity refs this source declares that another location owns (the first claimant keeps them).",
                &["source"],
            ),
            git_fetches: counter("rigger_git_fetches_total", "Remote checks by result.", &["source", "result"]),
            retries: counter("rigger_retries_total", "Retries of transient failures, by operation.", &["operation"]),
            sync_duration,
            unresolved_relations,
            store_up,
            registry,
        };
        for operation in ["insert", "update", "delete"] {
            metrics.entity_writes.with_label_values(&[operation]).inc_by(0);
        }
        for operation in ["git_fetch", "store", "migrate", "pass", "cluster"] {
            metrics.retries.with_label_values(&[operation]).inc_by(0);
        }
        for reason in QUEUE_REASONS {
            metrics.queue_requests.with_label_values(&[reason]).inc_by(0);
            metrics.queue_coalesced.with_label_values(&[reason]).inc_by(0);
        }
        for state in SOURCE_STATES {
            metrics.sources_in_state.with_label_values(&[state]).set(0);
        }
        metrics
    }

    /// Every commit-status series at zero, when statuses are configured.
    pub fn init_commit_statuses(&self) {
        for context in ["rigger/catalog", "rigger/cluster"] {
            for state in ["pending", "success", "failure"] {
                for outcome in ["posted", "duplicate", "failed", "dropped"] {
                    self.commit_statuses.with_label_values(&[context, state, outcome]).inc_by(0);
                }
            }
        }
    }

    /// Webhook series at zero, so a signature-failure alert sees `0` before the first forgery.
    pub fn init_webhooks(&self) {
        for outcome in
            ["accepted", "duplicate", "ignored", "bad_signature", "too_large", "busy", "malformed", "store_down"]
        {
            self.webhook_deliveries.with_label_values(&["push", outcome]).inc_by(0);
        }
    }

    /// Reconcile series at zero for each source, and the cluster gauge, when a cluster is
    /// configured (once per process); `health` names every health an entity may report (the
    /// reconcile's own list).
    pub fn init_reconcile<'a>(&self, names: impl IntoIterator<Item = &'a str>, health: &[&str]) {
        if self.registry.register(Box::new(self.cluster_up.clone())).is_err() {
            tracing::debug!("rigger_cluster_up was registered already");
        }
        for operation in ["discovery", "get", "list", "dry_run", "apply", "delete"] {
            for outcome in ["ok", "conflict", "unavailable", "error"] {
                self.cluster_requests.with_label_values(&[operation, outcome]).inc_by(0);
            }
        }
        for name in names {
            for reason in
                ["manifests", "refused", "claimed", "unknown_kind", "cluster", "apply", "conflict", "prune_blocked"]
            {
                self.reconcile_errors.with_label_values(&[name, reason]).inc_by(0);
            }
            for action in ["create", "update", "prune"] {
                self.reconcile_objects.with_label_values(&[name, action]).inc_by(0);
            }
            self.drift_corrections.with_label_values(&[name]).inc_by(0);
            self.prune_blocked.with_label_values(&[name]).inc_by(0);
            self.claims_refused.with_label_values(&[name]).set(0);
            for health in health {
                self.entity_health.with_label_values(&[name, health]).set(0);
            }
        }
    }

    /// Creates every per-source series at zero, so dashboards and alerts see `0`, not "absent",
    /// before a source's first failure.
    pub fn init_sources<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        for name in names {
            for outcome in ["success", "unchanged", "failure", "skipped"] {
                self.sync_runs.with_label_values(&[name, outcome]).inc_by(0);
            }
            self.location_errors.with_label_values(&[name]).set(0);
            self.deletions_held.with_label_values(&[name]).set(0);
            self.catalog_panics.with_label_values(&[name]).inc_by(0);
            self.git_cache_rebuilds.with_label_values(&[name]).inc_by(0);
            // 0 = never: a staleness alert on `time() - last_success` fires for a source that
            // has never succeeded, which is what an operator needs to know.
            self.sync_last_success.with_label_values(&[name]).set(0);
            self.conflicts.with_label_values(&[name]).set(0);
            self.templates_synced.with_label_values(&[name]).inc_by(0);
            // A histogram's series exist once touched: empty until a pass does work.
            drop(self.sync_duration.with_label_values(&[name]));
            for change in ["added", "modified", "removed"] {
                self.template_changes.with_label_values(&[name, change]).inc_by(0);
            }
        }
    }

    /// Git sources' fetch series at zero.
    pub fn init_git<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        for name in names {
            for result in ["fetched", "unchanged"] {
                self.git_fetches.with_label_values(&[name, result]).inc_by(0);
            }
        }
    }

    /// Local sources' rescan series at zero.
    pub fn init_local<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        for name in names {
            for scope in ["changed_files", "full"] {
                self.local_rescans.with_label_values(&[name, scope]).inc_by(0);
            }
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let encoder = TextEncoder::new();
        // Encoding into a Vec only fails on invalid metric families, which we never build.
        if encoder.encode(&self.registry.gather(), &mut buffer).is_err() {
            return String::new();
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_includes_labelled_series() {
        let metrics = Metrics::new();
        metrics.sync_runs.with_label_values(&["demo", "success"]).inc();
        metrics.store_up.set(1);
        let text = metrics.render();
        assert!(text.contains("rigger_sync_runs_total{outcome=\"success\",source=\"demo\"} 1"), "{text}");
        assert!(text.contains("rigger_store_up 1"));
    }
}
