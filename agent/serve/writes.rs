//! The catalog API's state-changing half, for callers Rigger can verify: `POST /refresh` queues
//! the entity's source ahead of the backlog (a git-managed entity changes when its repository
//! does, so a refresh is a sync of that repository now), and `DELETE /entities/by-uid/{uid}`
//! removes an orphan (an entity git still declares would come back, so it is refused). Callers
//! must be verified (`serve::auth`); anyone else gets Backstage's `401`, and a permission policy
//! that says no its `403`.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State as AxumState};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use tokio::sync::mpsc::UnboundedSender;

use super::api_error::ApiError;
use super::auth::{Caller, Decision, Permission};
use super::State;
use crate::catalog::EntityRef;
use crate::store::{OrphanDeletion, StoredEntity};

/// What the state-changing endpoints need: the work queue and the sources it serves.
pub struct Writes {
    /// Source names to sync now (the daemon's queue, reason `refresh`).
    pub requests: UnboundedSender<String>,
    /// The sources this agent syncs: configured ones, and the repositories its organisations'
    /// discovery keeps (refreshed by each discovery).
    pub configured: Vec<String>,
    pub discovered: std::sync::Arc<std::sync::RwLock<Vec<super::Tracked>>>,
}

impl Writes {
    fn syncs(&self, source: &str) -> bool {
        self.configured.iter().any(|s| s == source)
            || self
                .discovered
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .any(|t| t.source == source)
    }
}

#[derive(Deserialize)]
pub struct RefreshRequest {
    #[serde(rename = "entityRef")]
    entity_ref: String,
}

/// `POST /api/catalog/refresh` `{entityRef}`: `200` once the entity's source is queued.
pub async fn refresh(
    AxumState(state): AxumState<State>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Json<RefreshRequest>, JsonRejection>,
) -> Response {
    let queued = async {
        let caller = state.auth.verified_caller(&headers).await?;
        let Json(request) = body.map_err(ApiError::body)?;
        let entity_ref = EntityRef::parse(&request.entity_ref, None, "default").map_err(ApiError::input)?;
        let entity = state.store.entity(&entity_ref.to_string()).await.map_err(ApiError::unavailable)?;
        let entity = entity.ok_or_else(|| ApiError::not_found(format!("No entity with ref {entity_ref}")))?;
        // What the caller may not read is not there, as for every read.
        if !readable(&state, &caller, &entity).await? {
            return Err(ApiError::not_found(format!("No entity with ref {entity_ref}")));
        }
        permitted(&state, &caller, Permission::EntityRefresh, &entity).await?;
        if !state.writes.syncs(&entity.source) {
            return Err(ApiError::conflict(format!(
                "{entity_ref} comes from {}, which this agent no longer syncs: nothing would refresh it",
                entity.source
            )));
        }
        // A closed queue means the agent is stopping: the next start syncs everything anyway.
        drop(state.writes.requests.send(entity.source));
        Ok::<_, ApiError>(StatusCode::OK.into_response())
    };
    queued.await.unwrap_or_else(|e| e.into_response(&Method::POST, &uri))
}

/// `DELETE /api/catalog/entities/by-uid/{uid}`: `204` once an orphan is deleted; `409` for an
/// entity a location still declares; `404` for none.
pub async fn delete_entity(
    AxumState(state): AxumState<State>,
    uri: Uri,
    headers: HeaderMap,
    Path(uid): Path<String>,
) -> Response {
    let deleted = async {
        let caller = state.auth.verified_caller(&headers).await?;
        let entity = state.store.entity_by_uid(&uid).await.map_err(ApiError::unavailable)?;
        let entity = entity.ok_or_else(|| ApiError::not_found(format!("No entity with uid {uid}")))?;
        if !readable(&state, &caller, &entity).await? {
            return Err(ApiError::not_found(format!("No entity with uid {uid}")));
        }
        permitted(&state, &caller, Permission::EntityDelete, &entity).await?;
        match state.store.delete_orphan(&uid).await.map_err(ApiError::unavailable)? {
            OrphanDeletion::Deleted { .. } => {
                // Facet answers cached for the old catalog are stale now.
                state.store.bump_generation().await.map_err(ApiError::unavailable)?;
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            OrphanDeletion::Declared { entity_ref, location_key } => Err(ApiError::conflict(format!(
                    "{entity_ref} is declared by {location_key} and would come back with its next sync; remove it from git instead"
                ))),
            OrphanDeletion::HoldsClusterObjects { entity_ref } => Err(ApiError::conflict(format!(
                    "{entity_ref} still has cluster objects Rigger applied; delete it once they are gone (declare it without manifests, or let orphan_strategy: delete prune them)"
                ))),
            OrphanDeletion::NotFound => Err(ApiError::not_found(format!("No entity with uid {uid}"))),
        }
    };
    deleted.await.unwrap_or_else(|e| e.into_response(&Method::DELETE, &uri))
}

/// Whether the caller may read `entity` at all.
async fn readable(state: &State, caller: &Caller, entity: &StoredEntity) -> Result<bool, ApiError> {
    let visible = state.auth.decide(caller, Permission::EntityRead).await?.filter();
    Ok(entity.meets(&visible))
}

/// Whether the permission policy lets `caller` do `permission` to `entity`: a conditional
/// decision is checked against the entity, as the catalog's own rules would.
async fn permitted(
    state: &State,
    caller: &Caller,
    permission: Permission,
    entity: &StoredEntity,
) -> Result<(), ApiError> {
    match state.auth.decide(caller, permission).await? {
        Decision::Allow => Ok(()),
        Decision::Conditional(filter) if entity.meets(&filter) => Ok(()),
        Decision::Deny | Decision::Conditional(_) => Err(ApiError::denied(permission.name())),
    }
}
