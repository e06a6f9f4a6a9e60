//! The Location tree as Backstage's catalog API shows it: the catalog files Rigger reads
//! (`/locations`, by id, by entity) and the chain of `Location` entities that led to an entity
//! (`ancestry`).

use std::collections::{HashSet, VecDeque};

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State as AxumState};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::api_error::{error, ApiError};
use super::auth::{require, Permission, Readable};
use super::State;
use crate::catalog::location::target_reaches;
use crate::catalog::search::Filter;
use crate::catalog::EntityRef;
use crate::store::StoredEntity;

/// Entities an ancestry walks at most: far beyond any real Location tree, and a bound on one
/// request's work.
const MAX_ANCESTORS: usize = 1_000;

/// `{id, type, target}` of a location key (`url:https://…`, `file:/…`).
fn location_value(key: &str) -> Value {
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
pub async fn list(AxumState(state): AxumState<State>, uri: Uri, headers: HeaderMap) -> Response {
    if let Err(refused) = require(&state, &headers, Permission::LocationRead).await {
        return refused.into_response(&Method::GET, &uri);
    }
    match state.store.locations().await {
        Ok(rows) => {
            let items: Vec<Value> = rows.iter().map(|row| json!({"data": location_value(&row.location_key)})).collect();
            Json(Value::Array(items)).into_response()
        }
        Err(err) => ApiError::unavailable(err).into_response(&Method::GET, &uri),
    }
}

/// `GET /api/catalog/locations/{id}` — one of them, or `404`.
pub async fn by_id(
    AxumState(state): AxumState<State>,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(refused) = require(&state, &headers, Permission::LocationRead).await {
        return refused.into_response(&Method::GET, &uri);
    }
    match state.store.locations().await {
        Ok(rows) => match rows.iter().find(|row| location_id(&row.location_key) == id) {
            Some(row) => Json(location_value(&row.location_key)).into_response(),
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
    headers: HeaderMap,
    Readable(visible): Readable,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Response {
    if let Err(refused) = require(&state, &headers, Permission::LocationRead).await {
        return refused.into_response(&Method::GET, &uri);
    }
    let entity = state.store.entity(&EntityRef::new(&kind, &namespace, &name).to_string()).await;
    match entity.map(|e| e.filter(|e| may_read(e, &visible))) {
        Ok(Some(entity)) => {
            let annotations = &entity.body["metadata"]["annotations"];
            let origin = annotations["backstage.io/managed-by-origin-location"].as_str();
            Json(location_value(origin.unwrap_or(&entity.location_key))).into_response()
        }
        Ok(None) => not_found(&kind, &namespace, &name, &uri),
        Err(err) => ApiError::unavailable(err).into_response(&Method::GET, &uri),
    }
}

/// `GET /api/catalog/entities/by-name/{kind}/{namespace}/{name}/ancestry` —
/// `{rootEntityRef, items: [{entity, parentEntityRefs}]}`: the entity, then the `Location`
/// entity whose target reached the file of one already listed (every `Location` of that file
/// when none of their targets is recognisably the one), each only if the caller may read it. A
/// source's root file has no `Location` above it (Backstage's would be a generated one from
/// its config): its entities list no parents.
pub async fn ancestry(
    AxumState(state): AxumState<State>,
    uri: Uri,
    Readable(visible): Readable,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Response {
    let root = EntityRef::new(&kind, &namespace, &name).to_string();
    match walk_up(&state, &root, &visible).await {
        Ok(Some(items)) => Json(json!({"rootEntityRef": root, "items": items})).into_response(),
        Ok(None) => not_found(&kind, &namespace, &name, &uri),
        Err(err) => ApiError::unavailable(err).into_response(&Method::GET, &uri),
    }
}

/// The ancestry items from `root` up, breadth first, each entity once; `None` when `root` is
/// not in the catalog.
async fn walk_up(state: &State, root: &str, visible: &Filter) -> Result<Option<Vec<Value>>, crate::store::StoreError> {
    let Some(first) = state.store.entity(root).await?.filter(|e| may_read(e, visible)) else { return Ok(None) };
    let mut queue: VecDeque<StoredEntity> = VecDeque::from([first]);
    let mut seen = HashSet::from([root.to_owned()]);
    let mut items = Vec::new();
    while let Some(entity) = queue.pop_front() {
        let mut parents = Vec::new();
        for location_key in state.store.parents_of(&entity.location_key).await? {
            let candidates = state.store.entity_refs_at(&location_key, Some("location")).await?;
            let locations = state.store.entities_by_refs(&candidates).await?;
            let readable: Vec<&StoredEntity> = locations.iter().filter(|l| may_read(l, visible)).collect();
            let naming: Vec<String> = readable
                .iter()
                .filter(|l| targets(l).iter().any(|t| target_reaches(&location_key, t, &entity.location_key)))
                .map(|l| l.entity_ref.clone())
                .collect();
            // A target written in a form not recognised here: every Location of the file, rather
            // than losing the link.
            parents.extend(if naming.is_empty() {
                readable.iter().map(|l| l.entity_ref.clone()).collect()
            } else {
                naming
            });
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

/// A `Location` entity's `spec.target` and `spec.targets`.
fn targets(location: &StoredEntity) -> Vec<String> {
    let spec = &location.body["spec"];
    let many = spec["targets"].as_array().into_iter().flatten().filter_map(Value::as_str);
    spec["target"].as_str().into_iter().chain(many).map(str::to_owned).collect()
}

/// Whether the caller may read `entity` (`visible` from [`Readable`]).
fn may_read(entity: &StoredEntity, visible: &Filter) -> bool {
    entity.meets(visible)
}

fn not_found(kind: &str, namespace: &str, name: &str, uri: &Uri) -> Response {
    ApiError::no_entity(kind, namespace, name).into_response(&Method::GET, uri)
}

/// A location as a client names it, in the form comparisons use: a file's `/tree/` URL (how
/// Location targets are keyed) and its `/blob/` URL (how roots are) are the same file.
fn key_of(kind: &str, target: &str) -> String {
    comparable(&format!("{kind}:{target}"))
}

fn comparable(key: &str) -> String {
    key.replacen("/tree/", "/blob/", 1)
}

#[derive(Deserialize)]
pub struct NewLocation {
    #[serde(rename = "type", default = "url_type")]
    kind: String,
    target: String,
}

fn url_type() -> String {
    "url".to_owned()
}

#[derive(Deserialize)]
pub struct CreateQuery {
    #[serde(rename = "dryRun")]
    dry_run: Option<String>,
}

/// `POST /api/catalog/locations` ("register existing component"). Rigger reads the
/// repositories its configuration names, where each has its interval, credentials and cluster
/// grants; one registered through the API would have none of that, so registering is refused
/// and the answer says where to add the repository. A location Rigger already reads is
/// reported as existing: with its entities for a dry run, as Backstage's `409` otherwise.
pub async fn create(
    AxumState(state): AxumState<State>,
    uri: Uri,
    headers: HeaderMap,
    Readable(visible): Readable,
    Query(query): Query<CreateQuery>,
    body: Result<Json<NewLocation>, JsonRejection>,
) -> Response {
    let created = async {
        require(&state, &headers, Permission::LocationCreate).await?;
        let Json(location) = body.map_err(ApiError::body)?;
        let wanted = key_of(&location.kind, &location.target);
        let known = state.store.locations().await.map_err(ApiError::unavailable)?;
        let Some(known) = known.into_iter().find(|row| comparable(&row.location_key) == wanted) else {
            return Err(ApiError::not_allowed(format!(
                    "Rigger reads the repositories its configuration names; add {} to `sources` in its config (docs/configuration.md) rather than registering it here",
                    location.target
                )));
        };
        let key = known.location_key;
        if query.dry_run.as_deref() != Some("true") {
            return Err(ApiError::conflict(format!("Location {key} already exists")));
        }
        let refs = state.store.entity_refs_at(&key, None).await.map_err(ApiError::unavailable)?;
        let entities = state.store.entities_by_refs(&refs).await.map_err(ApiError::unavailable)?;
        let entities: Vec<Value> =
            entities.iter().filter(|e| may_read(e, &visible)).map(StoredEntity::to_api).collect();
        let body = json!({"location": location_value(&key), "entities": entities, "exists": true});
        Ok((StatusCode::CREATED, Json(body)).into_response())
    };
    created.await.unwrap_or_else(|e| e.into_response(&Method::POST, &uri))
}

/// `PUT` and `DELETE /api/catalog/locations/{id}`: locations follow the configuration and the
/// `Location` entities in git, so they change there.
pub async fn change(AxumState(state): AxumState<State>, uri: Uri, method: Method, headers: HeaderMap) -> Response {
    if let Err(refused) = require(&state, &headers, Permission::LocationDelete).await {
        return refused.into_response(&method, &uri);
    }
    let message =
        "Rigger's locations follow its configuration's sources and the Location entities in git; change them there";
    ApiError::not_allowed(message).into_response(&method, &uri)
}

#[derive(Deserialize, Default)]
pub struct LocationQuery {
    limit: Option<usize>,
    cursor: Option<String>,
    query: Option<Value>,
}

/// Backstage's default page of locations.
const DEFAULT_LOCATION_LIMIT: usize = 500;

/// `POST /api/catalog/locations/by-query` `{limit, cursor}`: `{items, totalItems, pageInfo}`,
/// in location order. Predicates (`query`) are not supported and are refused.
pub async fn by_query(
    AxumState(state): AxumState<State>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Json<LocationQuery>, JsonRejection>,
) -> Response {
    let page = async {
        require(&state, &headers, Permission::LocationRead).await?;
        let Json(request) = body.map_err(ApiError::body)?;
        if request.query.as_ref().is_some_and(|q| q.as_object().is_none_or(|q| !q.is_empty())) {
            return Err(ApiError::input("Rigger does not filter locations by predicate; page through them instead"));
        }
        let offset = match request.cursor.as_deref() {
            Some(cursor) => cursor.parse::<usize>().map_err(|_| ApiError::input("Malformed cursor"))?,
            None => 0,
        };
        let limit = request.limit.unwrap_or(DEFAULT_LOCATION_LIMIT).max(1);
        let rows = state.store.locations().await.map_err(ApiError::unavailable)?;
        let items: Vec<Value> =
            rows.iter().skip(offset).take(limit).map(|row| location_value(&row.location_key)).collect();
        let mut page_info = serde_json::Map::new();
        let next = offset.saturating_add(limit);
        if next < rows.len() {
            page_info.insert("nextCursor".into(), json!(next.to_string()));
        }
        Ok(Json(json!({"items": items, "totalItems": rows.len(), "pageInfo": page_info})).into_response())
    };
    page.await.unwrap_or_else(|e| e.into_response(&Method::POST, &uri))
}

#[derive(Deserialize)]
pub struct Analyze {
    location: NewLocation,
}

/// `POST /api/catalog/analyze-location` `{location: {type, target}}`: the catalog files Rigger
/// already reads at or under that target (a file, or a repository's URL), with their entities,
/// as `existingEntityFiles`. Rigger generates no entities (`generateEntities` is empty).
pub async fn analyze(
    AxumState(state): AxumState<State>,
    uri: Uri,
    headers: HeaderMap,
    Readable(visible): Readable,
    body: Result<Json<Analyze>, JsonRejection>,
) -> Response {
    let analysed = async {
        require(&state, &headers, Permission::LocationAnalyze).await?;
        let Json(Analyze { location }) = body.map_err(ApiError::body)?;
        let wanted = key_of(&location.kind, &location.target);
        let prefix = wanted.trim_end_matches('/');
        let rows = state.store.locations().await.map_err(ApiError::unavailable)?;
        let mut files = Vec::new();
        let under = |key: &str| {
            let key = comparable(key);
            key == prefix || key.starts_with(&format!("{prefix}/"))
        };
        for row in rows.iter().filter(|row| under(&row.location_key)) {
            let refs = state.store.entity_refs_at(&row.location_key, None).await.map_err(ApiError::unavailable)?;
            let (kind, target) = row.location_key.split_once(':').unwrap_or(("url", row.location_key.as_str()));
            let entities = state.store.entities_by_refs(&refs).await.map_err(ApiError::unavailable)?;
            for entity in entities.into_iter().filter(|e| may_read(e, &visible)) {
                let location = json!({"type": kind, "target": target});
                files.push(json!({"location": location, "isRegistered": true, "entity": entity.to_api()}));
            }
        }
        Ok::<_, ApiError>(Json(json!({"existingEntityFiles": files, "generateEntities": []})).into_response())
    };
    analysed.await.unwrap_or_else(|e| e.into_response(&Method::POST, &uri))
}
