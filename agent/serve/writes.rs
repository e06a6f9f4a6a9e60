//! The catalog API's state-changing half, for callers Rigger can verify: `POST /refresh` queues
//! the entity's source ahead of the backlog (a git-managed entity changes when its repository
//! does, so a refresh is a sync of that repository now), and `DELETE /entities/by-uid/{uid}`
//! removes an orphan (an entity git still declares would come back, so it is refused). Callers
//! present a bearer token from `server.api_tokens`; anyone else gets Backstage's `401`.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State as AxumState};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tokio::sync::mpsc::UnboundedSender;

use super::api_error::ApiError;
use super::State;
use crate::catalog::EntityRef;
use crate::config::Secret;
use crate::store::OrphanDeletion;

/// What the state-changing endpoints need: who may call them, and the work queue.
pub struct Writes {
    pub tokens: Vec<Secret>,
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
        authorize(&headers, &state.writes.tokens)?;
        let Json(request) = body.map_err(ApiError::body)?;
        let entity_ref = EntityRef::parse(&request.entity_ref, None, "default").map_err(ApiError::input)?;
        let entity = state.store.entity(&entity_ref.to_string()).await.map_err(ApiError::unavailable)?;
        let entity = entity.ok_or_else(|| ApiError::not_found(format!("No entity with ref {entity_ref}")))?;
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
        authorize(&headers, &state.writes.tokens)?;
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

/// A bearer token equal (in constant time) to one of `tokens`, else Backstage's `401`.
fn authorize(headers: &HeaderMap, tokens: &[Secret]) -> Result<(), ApiError> {
    let refuse = ApiError::unauthenticated;
    if tokens.is_empty() {
        return Err(refuse("This agent takes no changes through its API: no server.api_tokens are configured"));
    }
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")))
        .map(|(_, token)| token)
        .ok_or_else(|| refuse("Missing credentials: send Authorization: Bearer <token>"))?;
    let presented = presented.trim();
    // An empty secret (a variable set to nothing) must not let an empty bearer in.
    let known = !presented.is_empty()
        && tokens
            .iter()
            .map(|t| t.expose().trim())
            .filter(|t| !t.is_empty())
            .any(|t| bool::from(t.as_bytes().ct_eq(presented.as_bytes())));
    if known {
        Ok(())
    } else {
        Err(refuse("Invalid token"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
        headers
    }

    #[test]
    fn only_a_configured_non_empty_token_is_let_in() {
        let tokens = [Secret::from_config("s3cret"), Secret::from_config(String::new())];
        assert!(authorize(&bearer("s3cret"), &tokens).is_ok());
        assert!(authorize(&bearer("guess"), &tokens).is_err());
        assert!(authorize(&bearer(""), &tokens).is_err(), "an empty secret lets no empty bearer in");
        assert!(authorize(&HeaderMap::new(), &tokens).is_err());
        assert!(authorize(&bearer("s3cret"), &[]).is_err(), "no tokens configured: nobody");
    }
}
