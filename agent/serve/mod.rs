//! HTTP for people and machines: health, readiness, metrics and the Backstage-compatible catalog
//! read API. It reads the store and shared state; it never calls git or an API server.

mod api_error;
mod auth;
mod catalog_api;
mod fields;
mod health;
mod listen;
mod locations;
mod permission_rules;
mod query;
mod state;
mod status;
mod status_page;
mod stream;
mod templates;
mod validate_entity;
mod webhook;
mod writes;

use std::net::SocketAddr;

use axum::routing::{get, post};
use axum::Router;
use tokio_util::sync::CancellationToken;

pub use auth::Auth;
pub use health::check_store;
pub use state::{FacetCache, Readiness, Repositories, State};
pub use webhook::{
    GithubWebhook, Tracked, MAX_BODY_BYTES as MAX_WEBHOOK_BYTES, MAX_VERIFYING as MAX_WEBHOOK_VERIFYING,
};
pub use writes::Writes;

/// What a response says when the store fails: only that. The cause (hosts, users, SQL) goes to
/// the log, never to a client.
const STORE_UNAVAILABLE: &str = "The catalog store is unavailable; the agent's log has the cause";

fn store_unavailable(err: &dyn std::fmt::Display) -> &'static str {
    tracing::warn!(error = %err, "a request could not be answered from the store");
    STORE_UNAVAILABLE
}

/// Longest a request may take, body included; beyond it `408`.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Request bodies the catalog API takes (`by-refs`); webhooks have their own bound.
const MAX_API_BODY_BYTES: usize = 1024 * 1024;

/// The whole HTTP surface. Health, readiness and metrics are never shed; the catalog API sheds
/// load beyond `max_concurrent_requests` with `503` and `Retry-After`.
pub fn router(state: State, max_concurrent_requests: usize, cors_origins: &[axum::http::HeaderValue]) -> Router {
    let probes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics));
    let shed = tower::ServiceBuilder::new()
        .layer(axum::error_handling::HandleErrorLayer::new(overloaded))
        .load_shed()
        .concurrency_limit(max_concurrent_requests);
    let operators = Router::new()
        .route("/api/rigger/relations/unresolved", get(catalog_api::unresolved_relations))
        .route("/api/rigger/sources", get(status::sources))
        .route("/api/rigger/templates/{namespace}/{name}/files", get(templates::files))
        .route("/api/rigger/templates/{namespace}/{name}/files/{*path}", get(templates::file))
        .route("/api/rigger/templates/{namespace}/{name}/versions", get(templates::versions))
        .route("/", get(status_page::overview))
        .route("/sources/{*name}", get(status_page::source))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::operators_only));
    let api = Router::new()
        .route("/api/catalog/entities", get(catalog_api::list_entities))
        .route(
            "/api/catalog/entities/by-query",
            get(catalog_api::query_entities).post(catalog_api::query_entities_by_predicate),
        )
        .route("/api/catalog/entities/by-refs", post(catalog_api::entities_by_refs))
        .route("/api/catalog/entities/by-uid/{uid}", get(catalog_api::entity_by_uid).delete(writes::delete_entity))
        .route("/api/catalog/entities/by-name/{kind}/{namespace}/{name}", get(catalog_api::entity_by_name))
        .route(
            "/api/catalog/entity-facets",
            get(catalog_api::entity_facets).post(catalog_api::entity_facets_by_predicate),
        )
        .route("/api/catalog/validate-entity", post(validate_entity::validate_entity))
        .route("/api/catalog/refresh", post(writes::refresh))
        .route("/api/catalog/entities/by-name/{kind}/{namespace}/{name}/ancestry", get(locations::ancestry))
        .route("/api/catalog/locations", get(locations::list).post(locations::create))
        .route("/api/catalog/locations/by-query", post(locations::by_query))
        .route("/api/catalog/locations/{id}", get(locations::by_id).put(locations::change).delete(locations::change))
        .route("/api/catalog/analyze-location", post(locations::analyze))
        .route("/api/catalog/locations/by-entity/{kind}/{namespace}/{name}", get(locations::by_entity))
        .route(
            "/api/catalog/.well-known/backstage/permissions/apply-conditions",
            post(permission_rules::apply_conditions),
        )
        .route("/api/catalog/.well-known/backstage/permissions/metadata", get(permission_rules::metadata))
        .merge(operators)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_API_BODY_BYTES))
        .layer(shed);
    // The keys of the tokens Rigger signs, where Backstage looks for a plugin's (never shed).
    let api = match state.auth.key_set_path() {
        Some(path) => api.route(&path, get(auth::key_set)),
        None => api,
    };
    let routes = probes
        .merge(api)
        .route("/webhooks/github", post(webhook::github))
        // Route layers, so that a request is timed with its route template, timeouts included.
        .route_layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), observe));
    // No origins configured: no CORS layer at all, so browsers keep other origins' pages out.
    let routes = if cors_origins.is_empty() { routes } else { routes.layer(cors(cors_origins)) };
    routes.with_state(state)
}

/// Times each request by its route template (never the raw path: labels stay bounded) and the
/// class of its status. Whole-catalog answers stream their bodies after this.
async fn observe(
    axum::extract::State(state): axum::extract::State<State>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    // Always set under `route_layer`; a route-less request (a 404) never gets here.
    let route = request.extensions().get::<axum::extract::MatchedPath>().map(|p| p.as_str().to_owned());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let class = match response.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    let route = route.as_deref().unwrap_or("unmatched");
    state.metrics.http_requests.with_label_values(&[route, class]).observe(started.elapsed().as_secs_f64());
    response
}

/// CORS for the configured origins: a Backstage portal calling Rigger from the browser.
fn cors(origins: &[axum::http::HeaderValue]) -> tower_http::cors::CorsLayer {
    use axum::http::{header, Method};
    tower_http::cors::CorsLayer::new()
        .allow_origin(origins.to_vec())
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::LINK])
        .max_age(std::time::Duration::from_secs(600))
}

/// The answer when the catalog API is at its concurrency bound.
async fn overloaded(_: tower::BoxError) -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = axum::Json(serde_json::json!({
        "error": {"name": "ServiceUnavailableError", "message": "Too many requests at once; retry shortly"},
        "response": {"statusCode": 503},
    }));
    let mut response = (axum::http::StatusCode::SERVICE_UNAVAILABLE, body).into_response();
    response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
    response
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
    server: &crate::config::ServerConfig,
    state: State,
    cancel: CancellationToken,
) -> Result<(SocketAddr, impl std::future::Future<Output = Result<(), ServeError>>), ServeError> {
    let addr = server.listen;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { addr, source })?;
    let local = listener.local_addr().map_err(|source| ServeError::Bind { addr, source })?;
    let app = router(state, server.max_concurrent_requests, &server.cors_origins);
    let (max_connections, lowered) = listen::connection_bound(server.max_connections);
    if let Some(limit) = lowered {
        tracing::warn!(
            configured = server.max_connections,
            max_connections,
            open_file_limit = limit,
            "server.max_connections lowered to fit the open-file limit; raise LimitNOFILE (or ulimit -n) to allow more"
        );
    }
    let serve = async move {
        listen::serve(listener, app, max_connections, cancel).await;
        Ok(())
    };
    Ok((local, serve))
}
