//! `GET /api/rigger/sources`: sync status for people — per source its last synced commit, last
//! success, current error, what it is doing now (`progress`: queued, fetching, writing with
//! files and entities so far, settling, reconciling; `null` when idle), and per catalog file
//! its state, errors, and (for a file no longer reached whose deletion a file in error holds
//! back) `heldBy`.

use std::collections::BTreeMap;

use axum::extract::State as AxumState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::State;

pub async fn sources(AxumState(state): AxumState<State>) -> Response {
    let (sources, locations) = match (state.store.sources().await, state.store.locations().await) {
        (Ok(sources), Ok(locations)) => (sources, locations),
        (Err(err), _) | (_, Err(err)) => {
            let message = super::store_unavailable(&err);
            return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": message}))).into_response();
        }
    };
    let mut by_source: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for location in locations {
        by_source.entry(location.source.clone()).or_default().push(json!({
            "location": location.location_key,
            "path": location.path,
            "state": location.state,
            "errors": location.errors,
            // No longer reached, but kept: the location in error that leads to it holds it.
            "heldBy": location.held_by,
        }));
    }
    let mut progress = state.progress.snapshot();
    let mut items: Vec<Value> = sources
        .into_iter()
        .map(|source| {
            // Last success lives in memory (and in the metric): recording it would make every
            // no-op pass a write.
            let last_success = state.metrics.sync_last_success.with_label_values(&[source.name.as_str()]).get();
            json!({
                "name": source.name,
                "revision": source.revision,
                "lastSuccessSeconds": (last_success > 0).then_some(last_success),
                "error": source.error,
                "progress": progress.remove(&source.name),
                "locations": by_source.remove(&source.name).unwrap_or_default(),
            })
        })
        .collect();
    // Sources waiting for (or in) their first pass have no row in the store yet.
    let mut first: Vec<(String, crate::telemetry::SourceProgress)> = progress.into_iter().collect();
    first.sort_by(|a, b| a.0.cmp(&b.0));
    items.extend(first.into_iter().map(|(name, progress)| {
        json!({"name": name, "revision": null, "lastSuccessSeconds": null, "error": null, "progress": progress, "locations": []})
    }));
    Json(json!({ "items": items })).into_response()
}
