//! A local stand-in for GitHub's REST API, speaking the endpoints discovery calls: organisation
//! repositories with `Link` pagination, `ETag`/`If-None-Match` → 304, rate-limit headers, and
//! injectable trouble (a secondary rate limit answered with 403 + `Retry-After`, 5xx outages).
//! `GET /repos/{owner}/{name}` answers 200, 301 (moved) or 404.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use sha1::{Digest, Sha1};

/// Repositories per page, small so a handful of repositories spans several pages.
pub const PAGE_SIZE: usize = 2;

#[derive(Default)]
pub struct World {
    /// Listed repositories by name.
    pub repos: BTreeMap<String, Value>,
    /// Names that answer 301 (renamed); names in neither map answer 404.
    pub moved: Vec<String>,
    /// Names that still answer 200 on `GET /repos/…` although the listing left them out.
    pub hidden: BTreeMap<String, Value>,
    /// Answer every request with this status (an outage) while set.
    pub outage: Option<u16>,
    /// Answer the next listing request with a secondary rate limit.
    pub secondary_limit_once: bool,
    pub remaining: i64,
    /// Unix seconds when the rate-limit window resets to 5,000 requests.
    pub reset_at: i64,
    /// Repositories per listing page.
    pub page_size: usize,
    /// When set, the API answers only installation tokens it issued to this GitHub App (whose
    /// JWT must name it as issuer).
    pub app_id: Option<u64>,
    /// Installation tokens issued so far (and, with `app_id` unset, a personal token to require).
    pub issued: Vec<String>,
    /// Require this personal token on every request.
    pub token: Option<String>,
    /// `(path and query, status)` of every request, in order.
    pub log: Vec<(String, u16)>,
    /// Commit statuses posted: `(owner/name, sha, body)`, in order.
    pub commit_statuses: Vec<(String, String, Value)>,
    /// Answer commit status posts with this status (an outage of that endpoint) while set.
    pub statuses_outage: Option<u16>,
}

#[derive(Clone)]
pub struct FakeGithub {
    pub world: Arc<Mutex<World>>,
    pub base: String,
}

/// A repository as GitHub lists it; its id is derived from its name (`with_id` sets another).
pub fn repo(name: &str, clone_url: &str) -> Value {
    let id = name.bytes().fold(7_u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))) % 1_000_000_000;
    json!({"id": id, "name": name, "full_name": format!("acme/{name}"), "clone_url": clone_url, "default_branch": "main",
           "archived": false, "fork": false, "topics": ["backstage"], "visibility": "public", "private": false})
}

impl FakeGithub {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let world = Arc::new(Mutex::new(World {
            remaining: 5000,
            reset_at: 4_102_444_800,
            page_size: PAGE_SIZE,
            ..World::default()
        }));
        let fake = Self { world, base };
        let app = Router::new()
            .route("/orgs/{org}/repos", get(list))
            .route("/repos/{owner}/{name}", get(one))
            .route("/app/installations/{id}/access_tokens", axum::routing::post(access_token))
            .route("/repos/{owner}/{name}/statuses/{sha}", axum::routing::post(create_status))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    pub fn with<R>(&self, change: impl FnOnce(&mut World) -> R) -> R {
        change(&mut self.world.lock().unwrap())
    }

    /// Statuses of the requests logged so far whose path starts with `prefix`.
    pub fn statuses(&self, prefix: &str) -> Vec<u16> {
        self.with(|w| w.log.iter().filter(|(p, _)| p.starts_with(prefix)).map(|(_, s)| *s).collect())
    }
}

pub fn now() -> i64 {
    i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

/// GitHub's primary limit: a new window at the reset time; an exhausted one answers 403.
fn exhausted(world: &mut World) -> Option<Response> {
    if now() >= world.reset_at {
        world.remaining = 5000;
        world.reset_at = now() + 3600;
    }
    (world.remaining <= 0)
        .then(|| (StatusCode::FORBIDDEN, axum::Json(json!({"message": "API rate limit exceeded"}))).into_response())
}

fn limits(world: &mut World, counted: bool, response: &mut Response) {
    if counted && world.remaining > 0 {
        world.remaining -= 1;
    }
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit", "5000".parse().unwrap());
    headers.insert("x-ratelimit-remaining", world.remaining.to_string().parse().unwrap());
    headers.insert("x-ratelimit-reset", world.reset_at.to_string().parse().unwrap());
}

async fn list(
    State(fake): State<FakeGithub>,
    Path(org): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut world = fake.world.lock().unwrap();
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let path = format!("/orgs/{org}/repos?page={page}");
    let (status, mut response) = if let Some(code) = world.outage {
        let status = StatusCode::from_u16(code).unwrap();
        (status, (status, "unavailable").into_response())
    } else if let Some(refused) = exhausted(&mut world) {
        (StatusCode::FORBIDDEN, refused)
    } else if !authorized(&world, &headers) {
        (
            StatusCode::UNAUTHORIZED,
            (StatusCode::UNAUTHORIZED, axum::Json(json!({"message": "Bad credentials"}))).into_response(),
        )
    } else if std::mem::take(&mut world.secondary_limit_once) {
        let mut response = (
            StatusCode::FORBIDDEN,
            axum::Json(json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."})),
        )
            .into_response();
        response.headers_mut().insert("retry-after", "1".parse().unwrap());
        (StatusCode::FORBIDDEN, response)
    } else {
        let all: Vec<&Value> = world.repos.values().collect();
        let size = world.page_size;
        let items: Vec<&Value> = all.iter().skip((page - 1) * size).take(size).copied().collect();
        let body = serde_json::to_string(&items).unwrap();
        let etag = format!("\"{}\"", hex::encode(Sha1::digest(body.as_bytes())));
        if headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
            (StatusCode::NOT_MODIFIED, StatusCode::NOT_MODIFIED.into_response())
        } else {
            let mut response = (StatusCode::OK, body).into_response();
            response.headers_mut().insert("etag", etag.parse().unwrap());
            response.headers_mut().insert("content-type", "application/json".parse().unwrap());
            if page * size < all.len() {
                let link =
                    format!(r#"<{}/orgs/{org}/repos?per_page=100&type=all&page={}>; rel="next""#, fake.base, page + 1);
                response.headers_mut().insert("link", link.parse().unwrap());
            }
            (StatusCode::OK, response)
        }
    };
    // GitHub does not charge conditional requests that answer 304.
    let counted = status != StatusCode::NOT_MODIFIED;
    limits(&mut world, counted, &mut response);
    world.log.push((path, status.as_u16()));
    response
}

/// With an App configured, only its issued installation tokens are accepted.
fn authorized(world: &World, headers: &HeaderMap) -> bool {
    let value = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("token ")).unwrap_or_default();
    match (&world.app_id, &world.token) {
        (Some(_), _) => world.issued.iter().any(|t| t == token),
        (None, Some(required)) => required == token,
        (None, None) => true,
    }
}

/// `POST /app/installations/{id}/access_tokens`: a JWT signed by the App in, a token out.
async fn access_token(State(fake): State<FakeGithub>, Path(id): Path<u64>, headers: HeaderMap) -> Response {
    use base64::Engine;
    let mut world = fake.world.lock().unwrap();
    let jwt = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let claims: Option<Value> = jwt
        .and_then(|j| j.split('.').nth(1))
        .and_then(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let issuer = claims.as_ref().map(|c| c["iss"].to_string().trim_matches('"').to_owned());
    let path = format!("/app/installations/{id}/access_tokens");
    if issuer.is_none() || issuer != world.app_id.map(|a| a.to_string()) {
        world.log.push((path, 401));
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"message": "A JSON web token could not be decoded"})))
            .into_response();
    }
    let token = format!("ghs_installation_{id}_{}", world.issued.len());
    world.issued.push(token.clone());
    world.log.push((path, 201));
    (StatusCode::CREATED, axum::Json(json!({"token": token, "expires_at": "2100-01-01T00:00:00Z", "permissions": {"contents": "read", "metadata": "read"}, "repository_selection": "all"}))).into_response()
}

/// `POST /repos/{owner}/{name}/statuses/{sha}`: recorded, `201` (or the injected outage).
async fn create_status(
    State(fake): State<FakeGithub>,
    Path((owner, name, sha)): Path<(String, String, String)>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut world = fake.world.lock().unwrap();
    let path = format!("/repos/{owner}/{name}/statuses/{sha}");
    let status = if !authorized(&world, &headers) {
        StatusCode::UNAUTHORIZED
    } else if let Some(code) = world.statuses_outage {
        StatusCode::from_u16(code).unwrap()
    } else {
        world.commit_statuses.push((format!("{owner}/{name}"), sha, body.clone()));
        StatusCode::CREATED
    };
    let mut response = (status, axum::Json(body)).into_response();
    limits(&mut world, true, &mut response);
    world.log.push((path, status.as_u16()));
    response
}

async fn one(State(fake): State<FakeGithub>, Path((owner, name)): Path<(String, String)>) -> Response {
    let mut world = fake.world.lock().unwrap();
    let found = world.repos.get(&name).or_else(|| world.hidden.get(&name)).cloned();
    let mut response = if let Some(code) = world.outage {
        (StatusCode::from_u16(code).unwrap(), "unavailable").into_response()
    } else if let Some(repo) = found {
        axum::Json(repo).into_response()
    } else if world.moved.contains(&name) {
        let mut response = StatusCode::MOVED_PERMANENTLY.into_response();
        response.headers_mut().insert("location", format!("{}/repositories/42", fake.base).parse().unwrap());
        response
    } else {
        (StatusCode::NOT_FOUND, axum::Json(json!({"message": "Not Found"}))).into_response()
    };
    let status = response.status().as_u16();
    limits(&mut world, true, &mut response);
    world.log.push((format!("/repos/{owner}/{name}"), status));
    response
}
