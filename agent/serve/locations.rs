//! The Location tree as Backstage's catalog API shows it: the catalog files Rigger reads
//! (`/locations`, by id, by entity) and the chain of `Location` entities that led to an entity
//! (`ancestry`).

use std::collections::{HashSet, VecDeque};

use axum::extract::{Path, State as AxumState};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::api_error::{error, ApiError};
use super::State;
use crate::catalog::EntityRef;
use crate::store::StoredEntity;

/// Entities an ancestry walks at most: far beyond any real Location tree, and a bound on one
/// request's work.
const MAX_ANCESTORS: usize = 1_000;

/// `{id, type, target}` of a location key (`url:https://…`, `file:/…`).
fn location(key: &str) -> Value {
    let (kind, target) = key.split_once(':').unwrap_or(("url", key));
    json!({"id": location_id(key), "type": kind, "target": target})
}

/// A stable UUID-shaped id per location key (Backstage's location ids are UUIDs).
fn location_id(key: &str) -> String {
    use sha1::{Digest, Sha1};
    let hex = hex::encode(Sha1::digest(key.as_bytes()));
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// `GET /api/catalog/locations` — every catalog file Rigger reads, as `{data: {id, type, target}}`.
pub async fn list(AxumState(state): AxumState<State>, uri: Uri) -> Response {
    match state.store.locations().await {
        Ok(rows) => {
            let items: Vec<Value> = rows.iter().map(|row| json!({"data": location(&row.location_key)})).collect();
            Json(Value::Array(items)).into_response()
        }
        Err(err) => ApiError::unavailable(err).into_response(&Method::GET, &uri),
    }
}

/// `GET /api/catalog/locations/{id}` — one of them, or `404`.
pub async fn by_id(AxumState(state): AxumState<State>, uri: Uri, Path(id): Path<String>) -> Response {
    match state.store.locations().await {
        Ok(rows) => match rows.iter().find(|row| location_id(&row.location_key) == id) {
            Some(row) => Json(location(&row.location_key)).into_response(),
            None => error(
                StatusCode::NOT_FOUND,
                "NotFoundError",
                &format!("Found no location with ID {id}"),
                &Method::GET,
                &uri,
            ),
        },
        Err(err) => ApiError::unavailable(err).into_response(&Method::GET, &uri),
    }
}

/// `GET /api/catalog/locations/by-entity/{kind}/{namespace}/{name}` — the location the entity
/// originates from (its `backstage.io/managed-by-origin-location`: the root catalog file of its
/// source), as Backstage answers it.
pub async fn by_entity(
    AxumState(state): AxumState<State>,
    uri: Uri,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Response {
    match state.store.entity(&EntityRef::new(&kind, &namespace, &name).to_string()).await {
        Ok(Some(entity)) => {
            let annotations = &entity.body["metadata"]["annotations"];
            let origin = annotations["backstage.io/managed-by-origin-location"].as_str();
            Json(location(origin.unwrap_or(&entity.location_key))).into_response()
        }
        Ok(None) => not_found(&kind, &namespace, &name, &uri),
        Err(err) => ApiError::unavailable(err).into_response(&Method::GET, &uri),
    }
}

/// `GET /api/catalog/entities/by-name/{kind}/{namespace}/{name}/ancestry` —
/// `{rootEntityRef, items: [{entity, parentEntityRefs}]}`: the entity, then each `Location`
/// entity whose targets led to the file of one already listed. A source's root file has no
/// `Location` above it (Backstage's would be a generated one from its config): its entities
/// list no parents.
pub async fn ancestry(
    AxumState(state): AxumState<State>,
    uri: Uri,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Response {
    let root = EntityRef::new(&kind, &namespace, &name).to_string();
    match walk_up(&state, &root).await {
        Ok(Some(items)) => Json(json!({"rootEntityRef": root, "items": items})).into_response(),
        Ok(None) => not_found(&kind, &namespace, &name, &uri),
        Err(err) => ApiError::unavailable(err).into_response(&Method::GET, &uri),
    }
}

/// The ancestry items from `root` up, breadth first, each entity once; `None` when `root` is
/// not in the catalog.
async fn walk_up(state: &State, root: &str) -> Result<Option<Vec<Value>>, crate::store::StoreError> {
    let Some(first) = state.store.entity(root).await? else { return Ok(None) };
    let mut queue: VecDeque<StoredEntity> = VecDeque::from([first]);
    let mut seen = HashSet::from([root.to_owned()]);
    let mut items = Vec::new();
    while let Some(entity) = queue.pop_front() {
        let mut parents = Vec::new();
        for location_key in state.store.parents_of(&entity.location_key).await? {
            parents.extend(state.store.entity_refs_at(&location_key, "location").await?);
        }
        parents.sort();
        parents.dedup();
        for parent in &parents {
            if seen.len() < MAX_ANCESTORS && seen.insert(parent.clone()) {
                queue.extend(state.store.entity(parent).await?);
            }
        }
        items.push(json!({"entity": entity.to_api(), "parentEntityRefs": parents}));
    }
    Ok(Some(items))
}

fn not_found(kind: &str, namespace: &str, name: &str, uri: &Uri) -> Response {
    let message = format!("No entity named '{name}' found, with kind '{kind}' in namespace '{namespace}'");
    error(StatusCode::NOT_FOUND, "NotFoundError", &message, &Method::GET, uri)
}
