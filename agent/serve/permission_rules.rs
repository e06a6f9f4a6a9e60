//! The catalog's side of Backstage's permission framework, which a portal's permission plugin
//! calls: `apply-conditions` judges a conditional decision about particular entities (the
//! portal asks "may jane refresh this one?" for an entity page's buttons), and `metadata` lists
//! the catalog's permissions and rules for policy tooling.

use axum::extract::rejection::JsonRejection;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::api_error::ApiError;
use super::auth::{Caller, Permission};
use super::State;
use crate::catalog::permission::RESOURCE_TYPE;
use crate::catalog::{search, EntityRef};

/// Entities one `apply-conditions` request may name, as a bound on its work.
const MAX_RESOURCES: usize = 1_000;

#[derive(Deserialize)]
pub struct Decisions {
    items: Vec<Conditional>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conditional {
    id: String,
    resource_ref: ResourceRefs,
    resource_type: String,
    conditions: Value,
}

/// One entity ref, or several (the answer is then a list in the same order).
#[derive(Deserialize)]
#[serde(untagged)]
enum ResourceRefs {
    One(String),
    Many(Vec<String>),
}

/// `POST /api/catalog/.well-known/backstage/permissions/apply-conditions`
/// `{items: [{id, resourceRef, resourceType, conditions}]}` → `{items: [{id, result}]}`.
pub async fn apply_conditions(
    AxumState(state): AxumState<State>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Json<Decisions>, JsonRejection>,
) -> Response {
    let answered = async {
        // The portal's permission plugin (on its own or a user's behalf) or the platform's
        // tokens; a user asking directly could probe entities they may not read.
        match state.auth.verified_caller(&headers).await? {
            Caller::Service(_) => {}
            Caller::User { via: Some(plugin), .. } if plugin == "permission" => {}
            _ => return Err(ApiError::not_allowed("Conditions are applied for the portal's permission plugin only")),
        }
        let Json(decisions) = body.map_err(ApiError::body)?;
        let total: usize = decisions
            .items
            .iter()
            .map(|d| match &d.resource_ref {
                ResourceRefs::One(_) => 1,
                ResourceRefs::Many(refs) => refs.len(),
            })
            .sum();
        if total > MAX_RESOURCES {
            return Err(ApiError::input(format!("at most {MAX_RESOURCES} resources per request")));
        }
        let mut items = Vec::new();
        for decision in decisions.items {
            if decision.resource_type != RESOURCE_TYPE {
                return Err(ApiError::input(format!("the catalog has no resource type {}", decision.resource_type)));
            }
            let filter = crate::catalog::permission::filter(&decision.conditions).map_err(ApiError::input)?;
            let result = match decision.resource_ref {
                ResourceRefs::One(entity_ref) => json!(verdict(&state, &entity_ref, &filter).await?),
                ResourceRefs::Many(refs) => {
                    let mut results = Vec::new();
                    for entity_ref in refs {
                        results.push(verdict(&state, &entity_ref, &filter).await?);
                    }
                    json!(results)
                }
            };
            items.push(json!({"id": decision.id, "result": result}));
        }
        Ok(Json(json!({ "items": items })).into_response())
    };
    answered.await.unwrap_or_else(|e: ApiError| e.into_response(&Method::POST, &uri))
}

/// `ALLOW` when the entity exists and meets the conditions, else `DENY`.
async fn verdict(state: &State, entity_ref: &str, filter: &search::Filter) -> Result<&'static str, ApiError> {
    let Ok(entity_ref) = EntityRef::parse(entity_ref, None, "default") else { return Ok("DENY") };
    let entity = state.store.entity(&entity_ref.to_string()).await.map_err(ApiError::unavailable)?;
    let met = entity.is_some_and(|e| e.meets(filter));
    Ok(if met { "ALLOW" } else { "DENY" })
}

/// `GET /api/catalog/.well-known/backstage/permissions/metadata`: the catalog's permissions and
/// the rules its conditions may use.
pub async fn metadata() -> Response {
    let property = |name: &str, what: &str| json!({"type": "object", "properties": {name: {"type": "string", "description": what}, "value": {"type": "string"}}, "required": [name]});
    let rules = [
        (
            "IS_ENTITY_KIND",
            "Entities of any of these kinds",
            json!({"type": "object", "properties": {"kinds": {"type": "array", "items": {"type": "string"}}}, "required": ["kinds"]}),
        ),
        (
            "IS_ENTITY_OWNER",
            "Entities owned by any of these claims",
            json!({"type": "object", "properties": {"claims": {"type": "array", "items": {"type": "string"}}}, "required": ["claims"]}),
        ),
        ("HAS_ANNOTATION", "Entities with this annotation (and value)", property("annotation", "the annotation")),
        ("HAS_LABEL", "Entities with this label (and value)", property("label", "the label")),
        ("HAS_METADATA", "Entities with this metadata field (and value)", property("key", "the field under metadata")),
        ("HAS_SPEC", "Entities with this spec field (and value)", property("key", "the field under spec")),
    ];
    let rules: Vec<Value> = rules
        .into_iter()
        .map(|(name, description, params)| {
            json!({"name": name, "description": description, "resourceType": RESOURCE_TYPE, "paramsSchema": params})
        })
        .collect();
    let permissions: Vec<Value> = Permission::ALL.iter().map(|p| p.to_json()).collect();
    Json(json!({ "permissions": permissions, "rules": rules })).into_response()
}
