//! The control endpoints under `/_fake/` that let a test drive the standalone binary over HTTP
//! as the in-process API drives the library: faults, dropped watches, compaction, the request log.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::faults::{Fault, FaultSpec, RequestRecord};
use super::server::{lock, Shared};

/// `POST /_fake/faults` with a [`FaultSpec`] body.
pub async fn add_fault(State(shared): State<Arc<Shared>>, Json(spec): Json<FaultSpec>) -> Response {
    match Fault::try_from(spec) {
        Ok(fault) => {
            lock(&shared.faults).push(fault);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(problem) => (StatusCode::BAD_REQUEST, problem).into_response(),
    }
}

pub async fn clear_faults(State(shared): State<Arc<Shared>>) -> StatusCode {
    lock(&shared.faults).clear();
    StatusCode::NO_CONTENT
}

pub async fn drop_watches(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.drop_watches();
    StatusCode::NO_CONTENT
}

pub async fn compact(State(shared): State<Arc<Shared>>) -> StatusCode {
    lock(&shared.world).store.compact();
    StatusCode::NO_CONTENT
}

pub async fn requests(State(shared): State<Arc<Shared>>) -> Json<Vec<RequestRecord>> {
    Json(lock(&shared.log).clone())
}

pub async fn clear_requests(State(shared): State<Arc<Shared>>) -> StatusCode {
    lock(&shared.log).clear();
    StatusCode::NO_CONTENT
}
