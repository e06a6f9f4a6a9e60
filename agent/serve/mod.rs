//! HTTP for people and machines: health, readiness, metrics and the Backstage-compatible catalog
//! read API. It reads the store and shared state; it never calls git or an API server.

mod catalog_api;
mod fields;
mod health;
mod query;
mod state;
mod status;
mod templates;
mod webhook;

use std::net::SocketAddr;

use axum::routing::{get, post};
use axum::Router;
use tokio_util::sync::CancellationToken;

pub use health::check_store;
pub use state::{FacetCache, Readiness, State};
pub use webhook::{
    GithubWebhook, Tracked, MAX_BODY_BYTES as MAX_WEBHOOK_BYTES, MAX_VERIFYING as MAX_WEBHOOK_VERIFYING,
};

/// What a response says when the store fails: only that. The cause (hosts, users, SQL) goes to
/// the log, never to a client.
const STORE_UNAVAILABLE: &str = "The catalog store is unavailable; the agent's log has the cause";

fn store_unavailable(err: &dyn std::fmt::Display) -> &'static str {
    tracing::warn!(error = %err, "a request could not be answered from the store");
    STORE_UNAVAILABLE
}

/// The whole HTTP surface.
pub fn router(state: State) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/api/catalog/entities", get(catalog_api::list_entities))
        .route("/api/catalog/entities/by-query", get(catalog_api::query_entities))
        .route("/api/catalog/entities/by-refs", post(catalog_api::entities_by_refs))
        .route("/api/catalog/entities/by-uid/{uid}", get(catalog_api::entity_by_uid))
        .route("/api/catalog/entities/by-name/{kind}/{namespace}/{name}", get(catalog_api::entity_by_name))
        .route("/api/catalog/entity-facets", get(catalog_api::entity_facets))
        .route("/api/catalog/locations", get(catalog_api::list_locations))
        .route("/api/rigger/relations/unresolved", get(catalog_api::unresolved_relations))
        .route("/api/rigger/sources", get(status::sources))
        .route("/api/rigger/templates/{namespace}/{name}/files", get(templates::files))
        .route("/api/rigger/templates/{namespace}/{name}/files/{*path}", get(templates::file))
        .route("/api/rigger/templates/{namespace}/{name}/versions", get(templates::versions))
        .route("/webhooks/github", post(webhook::github))
        .with_state(state)
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// Binds the listener now (so a taken port fails start-up loudly) and returns the serving future,
/// which ends when `cancel` fires and in-flight requests are done.
pub async fn bind(
    addr: SocketAddr,
    state: State,
    cancel: CancellationToken,
) -> Result<(SocketAddr, impl std::future::Future<Output = Result<(), ServeError>>), ServeError> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { addr, source })?;
    let local = listener.local_addr().map_err(|source| ServeError::Bind { addr, source })?;
    let app = router(state);
    let serve = async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await
            .map_err(ServeError::Serve)
    };
    Ok((local, serve))
}
