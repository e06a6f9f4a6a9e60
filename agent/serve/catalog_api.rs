//! The Backstage-compatible catalog read API, same paths and response shapes as Backstage's
//! catalog backend (`shared/reference/backstage-api-shapes.md`).

use axum::extract::{Path, RawQuery, State as AxumState};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{fields, State};
use crate::catalog::search::{self, Filter};
use crate::catalog::EntityRef;

/// `GET /api/catalog/entities?filter=…&fields=…&offset=…&limit=…`
pub async fn list_entities(AxumState(state): AxumState<State>, uri: Uri, RawQuery(query): RawQuery) -> Response {
    let params: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let filters: Vec<&str> = params.iter().filter(|(k, _)| k == "filter").map(|(_, v)| v.as_str()).collect();
    let filter = match Filter::parse(&filters) {
        Ok(filter) => filter,
        Err(message) => return error(StatusCode::BAD_REQUEST, "InputError", &message, &uri),
    };
    let fields: Vec<&str> = params.iter().filter(|(k, _)| k == "fields").map(|(_, v)| v.as_str()).collect();
    let fields = match fields::parse(&fields) {
        Ok(fields) => fields,
        Err(message) => return error(StatusCode::BAD_REQUEST, "InputError", &message, &uri),
    };
    let number = |key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| v.parse::<usize>());
    let (offset, limit) = match (number("offset"), number("limit")) {
        (Some(Err(_)), _) | (_, Some(Err(_))) => {
            return error(StatusCode::BAD_REQUEST, "InputError", "offset and limit must be non-negative integers", &uri)
        }
        (offset, limit) => (offset.and_then(Result::ok).unwrap_or(0), limit.and_then(Result::ok)),
    };
    let entities = match state.store.entities(None).await {
        Ok(entities) => entities,
        Err(err) => return error(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailableError", &err.to_string(), &uri),
    };
    let matching = entities
        .iter()
        .map(crate::store::StoredEntity::to_api)
        .filter(|entity| filter.matches(&search::rows(entity)))
        .skip(offset)
        .take(limit.unwrap_or(usize::MAX))
        .map(|entity| fields::select(entity, &fields));
    Json(Value::Array(matching.collect())).into_response()
}

/// `GET /api/catalog/entities/by-name/{kind}/{namespace}/{name}` — case-insensitive.
pub async fn entity_by_name(
    AxumState(state): AxumState<State>,
    uri: Uri,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Response {
    let entity_ref = EntityRef::new(&kind, &namespace, &name);
    match state.store.entity(&entity_ref.to_string()).await {
        Ok(Some(entity)) => Json(entity.to_api()).into_response(),
        Ok(None) => {
            let message = format!("No entity named '{name}' found, with kind '{kind}' in namespace '{namespace}'");
            error(StatusCode::NOT_FOUND, "NotFoundError", &message, &uri)
        }
        Err(err) => error(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailableError", &err.to_string(), &uri),
    }
}

/// `GET /api/rigger/relations/unresolved`: relations whose target is not in the catalog —
/// Backstage keeps them silently; platform teams want to find dangling owners.
pub async fn unresolved_relations(AxumState(state): AxumState<State>, uri: Uri) -> Response {
    match state.store.unresolved_relations().await {
        Ok(rows) => Json(json!({ "items": rows })).into_response(),
        Err(err) => error(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailableError", &err.to_string(), &uri),
    }
}

/// Backstage's error body: `{error: {name, message}, request: {method, url}, response: {statusCode}}`.
fn error(status: StatusCode, name: &str, message: &str, uri: &Uri) -> Response {
    let url = uri.path_and_query().map_or_else(|| uri.path().to_owned(), ToString::to_string);
    let url = url.strip_prefix("/api/catalog").unwrap_or(&url).to_owned();
    let body = json!({
        "error": { "name": name, "message": message },
        "request": { "method": "GET", "url": url },
        "response": { "statusCode": status.as_u16() },
    });
    (status, Json(body)).into_response()
}
