//! `POST /api/catalog/validate-entity`: the catalog's verdict on one entity, as `rigger
//! validate` and the agent would give it, in Backstage's response shape: `200` with an empty
//! body when valid, `400 {errors: [{name, message}]}` when not.

use axum::extract::rejection::JsonRejection;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::api_error::ApiError;
use crate::catalog::{ingest, template_sources};

#[derive(Deserialize)]
pub struct ValidateEntity {
    entity: Value,
    /// A location ref (`url:https://…`): where the entity would be read from.
    location: String,
}

pub async fn validate_entity(
    AxumState(state): AxumState<super::State>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Json<ValidateEntity>, JsonRejection>,
) -> Response {
    if let Err(refused) = super::auth::require(&state, &headers, super::auth::Permission::EntityValidate).await {
        return refused.into_response(&Method::POST, &uri);
    }
    let Json(request) = match body {
        Ok(body) => body,
        Err(rejection) => return ApiError::body(rejection).into_response(&Method::POST, &uri),
    };
    match verdict(request) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(problems) => {
            let errors: Vec<Value> =
                problems.iter().map(|message| json!({"name": "InputError", "message": message})).collect();
            (StatusCode::BAD_REQUEST, Json(json!({ "errors": errors }))).into_response()
        }
    }
}

/// The entity checked as if read from the file its location names; a panic (a bug) is this
/// request's error alone.
fn verdict(request: ValidateEntity) -> Result<(), Vec<String>> {
    let Some((_, target)) =
        request.location.split_once(':').filter(|(kind, target)| !kind.is_empty() && !target.is_empty())
    else {
        return Err(vec![format!(
            "Invalid location ref {:?}, expected a type and a target such as url:https://host/path/catalog-info.yaml",
            request.location
        )]);
    };
    let file =
        std::path::PathBuf::from(target.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("catalog-info.yaml"));
    let entity = request.entity;
    let checked = ingest::confined(move || match ingest::check_document(entity, &file) {
        Ok(entity) if entity.entity_ref.kind == "template" => template_sources::check_parameters(&entity.body),
        Ok(_) => Vec::new(),
        Err(error) => vec![error],
    });
    match checked {
        Ok(problems) if problems.is_empty() => Ok(()),
        Ok(problems) => Err(problems),
        Err(panic) => Err(vec![panic]),
    }
}
