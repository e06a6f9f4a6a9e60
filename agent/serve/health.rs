//! `/healthz` (the process is alive), `/readyz` (it can do its job), `/metrics`.

use std::time::Duration;

use axum::extract::State as AxumState;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::State;

/// A store check that takes longer than this counts as a failure.
pub const PING_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// 200 only when the store answers, migrations ran and the first sync pass finished. The API
/// server's state (from the app's last check; serving never calls it) is reported but does
/// not make the agent unready: the catalog keeps syncing and serving while the cluster is away.
pub async fn readyz(AxumState(state): AxumState<State>) -> impl IntoResponse {
    // Read from the last check (`check_store`, on a connection of its own): never queued
    // behind catalog queries, so a busy agent stays ready.
    let store = state.readiness.store();
    let migrated = state.readiness.migrated();
    let synced = state.readiness.first_pass_done();
    let ready = store.is_ok() && migrated && synced;
    let mut body = json!({
        "ready": ready,
        "checks": {
            "store": { "ok": store.is_ok(), "error": store.err() },
            "migrations": { "ok": migrated },
            "initial_sync": { "ok": synced },
        }
    });
    // Reported, not a readiness condition: the agent serves what it has while a source is
    // broken, but an operator must see a source that has never synced in this process.
    let not_synced: Vec<String> = state
        .readiness
        .sources()
        .into_iter()
        .filter(|name| state.metrics.sync_last_success.with_label_values(&[name.as_str()]).get() == 0)
        .collect();
    body["checks"]["sources"] = json!({ "ok": not_synced.is_empty(), "not_synced": not_synced });
    if state.readiness.cluster_configured() {
        let up = state.metrics.cluster_up.get() == 1;
        body["checks"]["cluster"] = json!({ "ok": up, "state": if up { "ok" } else { "degraded" } });
    }
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body))
}

/// Checks the store every `every` on its own connection and records the result for `/readyz`
/// and `rigger_store_up`; runs until `cancel`.
pub async fn check_store(
    probe: crate::store::Store,
    readiness: std::sync::Arc<super::Readiness>,
    metrics: crate::telemetry::Metrics,
    every: Duration,
    cancel: tokio_util::sync::CancellationToken,
) {
    loop {
        let result = match tokio::time::timeout(PING_TIMEOUT, probe.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(super::store_unavailable(&err).to_owned()),
            Err(_) => Err(format!("no answer within {PING_TIMEOUT:?}")),
        };
        metrics.store_up.set(i64::from(result.is_ok()));
        readiness.record_store(result);
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

pub async fn metrics(AxumState(state): AxumState<State>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render())
}
