//! Software Templates' sources: `GET /api/rigger/templates/{namespace}/{name}/files` (the file
//! set at the synced commit, `currentRevision`; `revision` is the commit it last changed at), `…/files/{*path}` (one file's content), `…/versions` (which files
//! changed at which commit, newest first). Served from the store alone.

use axum::extract::{Path, State as AxumState};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::State;
use crate::store::StoreError;

fn entity_ref(namespace: &str, name: &str) -> String {
    format!("template:{}/{}", namespace.to_lowercase(), name.to_lowercase())
}

fn unavailable(err: &StoreError) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"error": {"name": "ServiceUnavailable", "message": super::store_unavailable(err)}})),
    )
        .into_response()
}

fn not_found(message: &str) -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": {"name": "NotFoundError", "message": message}}))).into_response()
}

pub async fn files(AxumState(state): AxumState<State>, Path((namespace, name)): Path<(String, String)>) -> Response {
    let entity_ref = entity_ref(&namespace, &name);
    match state.store.template(&entity_ref).await {
        Ok(Some(record)) => {
            // The files are those at the source's current commit: unchanged since `revision`.
            let current = state.store.source_revision(&record.source).await.ok().flatten();
            let mut body = json!(record);
            body["currentRevision"] = json!(current);
            Json(body).into_response()
        }
        Ok(None) => not_found(&format!("no sources recorded for {entity_ref}")),
        Err(err) => unavailable(&err),
    }
}

pub async fn file(
    AxumState(state): AxumState<State>,
    Path((namespace, name, path)): Path<(String, String, String)>,
) -> Response {
    let entity_ref = entity_ref(&namespace, &name);
    match state.store.template_file_content(&entity_ref, &path).await {
        Ok(Some(content)) => {
            let kind = if std::str::from_utf8(&content).is_ok() {
                "text/plain; charset=utf-8"
            } else {
                "application/octet-stream"
            };
            ([(header::CONTENT_TYPE, kind)], content).into_response()
        }
        Ok(None) => not_found(&format!("{entity_ref} has no source file {path}")),
        Err(err) => unavailable(&err),
    }
}

pub async fn versions(AxumState(state): AxumState<State>, Path((namespace, name)): Path<(String, String)>) -> Response {
    let entity_ref = entity_ref(&namespace, &name);
    match state.store.template_versions(&entity_ref).await {
        Ok(items) if items.is_empty() => not_found(&format!("no sources recorded for {entity_ref}")),
        Ok(items) => Json(json!({ "entityRef": entity_ref, "items": items })).into_response(),
        Err(err) => unavailable(&err),
    }
}
