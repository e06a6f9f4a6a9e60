//! The Kubernetes REST surface: paths parsed into discovery or object endpoints, query
//! parameters and content types read, and each verb handed to the world.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::discovery;
use super::errors::ApiError;
use super::faults::DryRunInBody;
use super::resources::ResourceType;
use super::select::Selector;
use super::server::{lock, Shared};
use super::watch::{self, WatchRequest};
use super::world::{Page, Target};
use super::write::{Deleted, WriteOptions};

/// The manager an Update is recorded under when the client names none and sends no user agent.
const DEFAULT_MANAGER: &str = "unknown";

enum Endpoint {
    Version,
    OpenApiV2,
    CoreVersions,
    Groups,
    Group(String),
    Resources { group: String, version: String },
    Objects(ObjectPath),
}

struct ObjectPath {
    group: String,
    version: String,
    plural: String,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn parse_path(path: &str) -> Option<Endpoint> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["version"] => return Some(Endpoint::Version),
        ["openapi", "v2"] => return Some(Endpoint::OpenApiV2),
        ["api"] => return Some(Endpoint::CoreVersions),
        ["apis"] => return Some(Endpoint::Groups),
        ["apis", group] => return Some(Endpoint::Group((*group).to_owned())),
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let (group, version) = (group.to_owned(), version.to_owned());
    if rest.is_empty() {
        return Some(Endpoint::Resources { group, version });
    }
    // `namespaces/{ns}/{plural}/…`, except a namespace's own `namespaces/{name}/status`.
    let namespaced =
        rest.len() >= 3 && rest[0] == "namespaces" && !(group.is_empty() && rest.len() == 3 && rest[2] == "status");
    let (namespace, rest) = if namespaced { (Some(rest[1].to_owned()), &rest[2..]) } else { (None, rest) };
    if rest.len() > 3 {
        return None;
    }
    let owned = |i: usize| rest.get(i).map(|s| (*s).to_owned());
    Some(Endpoint::Objects(ObjectPath {
        group,
        version,
        plural: rest[0].to_owned(),
        namespace,
        name: owned(1),
        subresource: owned(2),
    }))
}

/// The query string as name/value pairs (a repeated name keeps its first value).
struct Query(Vec<(String, String)>);

impl Query {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("true" | "1"))
    }

    fn dry_run(&self) -> Result<bool, ApiError> {
        match self.get("dryRun") {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(other) => {
                Err(ApiError::bad_request(format!("dryRun: Unsupported value: {other:?}: supported values: \"All\"")))
            }
        }
    }
}

pub async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = Query(url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()).into_owned().collect());
    let request = Incoming { method: &method, query: &query, headers: &headers, body: &body };
    match route(&shared, uri.path(), &request) {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

struct Incoming<'a> {
    method: &'a Method,
    query: &'a Query,
    headers: &'a HeaderMap,
    body: &'a Bytes,
}

impl Incoming<'_> {
    fn header(&self, name: header::HeaderName) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    /// `fieldManager`, else the user agent's product (as the real server derives it).
    fn manager(&self) -> String {
        let agent = self.header(header::USER_AGENT).split('/').next().unwrap_or_default();
        let name = self.query.get("fieldManager").filter(|m| !m.is_empty()).unwrap_or(agent);
        if name.is_empty() {
            DEFAULT_MANAGER.to_owned()
        } else {
            name.to_owned()
        }
    }

    /// Bodies are JSON (or YAML for apply); protobuf, which kubectl prefers for built-in
    /// types, is refused with 415 as a server without it would.
    fn json_body(&self) -> Result<Value, ApiError> {
        let content_type = self.header(header::CONTENT_TYPE);
        let media = content_type.split(';').next().unwrap_or_default().trim();
        if !(media.is_empty() || media == "application/json" || media.ends_with("+json")) {
            return Err(ApiError::unsupported_media_type(content_type));
        }
        serde_json::from_slice(self.body)
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
    }
}

fn route(shared: &Arc<Shared>, path: &str, request: &Incoming) -> Result<Response, ApiError> {
    let endpoint = parse_path(path).ok_or_else(ApiError::no_resource)?;
    let Endpoint::Objects(object_path) = endpoint else {
        if request.method != Method::GET {
            return Err(ApiError::method_not_allowed());
        }
        return discover(shared, &endpoint, request);
    };
    let rt = resolve(shared, &object_path)?;
    match (request.method, &object_path.name) {
        (&Method::GET, None) => read_collection(shared, rt, object_path.namespace, request.query),
        (&Method::POST, None) => create(shared, &rt, object_path.namespace.as_deref(), request),
        (_, None) => Err(ApiError::method_not_allowed()),
        (method, Some(name)) => {
            let target = Target {
                rt,
                namespace: object_path.namespace,
                name: name.clone(),
                status: object_path.subresource.is_some(),
            };
            object_verb(shared, method, &target, request)
        }
    }
}

fn discover(shared: &Arc<Shared>, endpoint: &Endpoint, request: &Incoming) -> Result<Response, ApiError> {
    let world = lock(&shared.world);
    let aggregated = discovery::wants_aggregated(request.header(header::ACCEPT));
    let body = match endpoint {
        Endpoint::Version => discovery::version(),
        // An OpenAPI document without definitions: kubectl's client-side validation finds no
        // schema for any kind and skips itself (schemas are not served; see the docs).
        Endpoint::OpenApiV2 => {
            return Ok(([(header::CONTENT_TYPE, discovery::OPENAPI_V2_PROTOBUF)], Vec::<u8>::new()).into_response());
        }
        Endpoint::CoreVersions | Endpoint::Groups if aggregated => {
            let body = discovery::aggregated(&world.registry, matches!(endpoint, Endpoint::CoreVersions));
            return Ok(([(header::CONTENT_TYPE, discovery::AGGREGATED_CONTENT_TYPE)], body.to_string()).into_response());
        }
        Endpoint::CoreVersions => discovery::core_versions(shared.address),
        Endpoint::Groups => discovery::group_list(&world.registry),
        Endpoint::Group(group) => discovery::group(&world.registry, group).ok_or_else(ApiError::no_resource)?,
        Endpoint::Resources { group, version } => {
            discovery::resource_list(&world.registry, group, version).ok_or_else(ApiError::no_resource)?
        }
        Endpoint::Objects(_) => return Err(ApiError::no_resource()),
    };
    Ok(Json(body).into_response())
}

/// The served type at the path, with the scope checks the real router makes.
fn resolve(shared: &Arc<Shared>, path: &ObjectPath) -> Result<ResourceType, ApiError> {
    let world = lock(&shared.world);
    let rt = world.registry.find(&path.group, &path.version, &path.plural).ok_or_else(ApiError::no_resource)?;
    let misplaced =
        if rt.namespaced { path.namespace.is_none() && path.name.is_some() } else { path.namespace.is_some() };
    let bad_subresource = match path.subresource.as_deref() {
        None => false,
        Some("status") => !rt.status,
        Some(_) => true,
    };
    if misplaced || bad_subresource {
        return Err(ApiError::no_resource());
    }
    Ok(rt.clone())
}

fn read_collection(
    shared: &Arc<Shared>,
    rt: ResourceType,
    namespace: Option<String>,
    query: &Query,
) -> Result<Response, ApiError> {
    let selector = Selector::parse(query.get("labelSelector"), query.get("fieldSelector"))?;
    if query.flag("watch") {
        let timeout = query.get("timeoutSeconds").and_then(|s| s.parse().ok()).map(Duration::from_secs);
        let request = WatchRequest {
            rt,
            namespace,
            selector,
            resource_version: query.get("resourceVersion").map(str::to_owned),
            bookmarks: query.flag("allowWatchBookmarks"),
            send_initial_events: query.flag("sendInitialEvents"),
            timeout,
        };
        return watch::start(shared, request);
    }
    let limit = query.get("limit").and_then(|l| l.parse().ok()).filter(|l| *l > 0);
    let page = Page { limit, continue_token: query.get("continue").filter(|c| !c.is_empty()) };
    let list = lock(&shared.world).list(&rt, namespace.as_deref(), &selector, &page)?;
    Ok(Json(list).into_response())
}

fn write_options(request: &Incoming) -> Result<WriteOptions, ApiError> {
    Ok(WriteOptions {
        manager: request.manager(),
        dry_run: request.query.dry_run()?,
        force: request.query.flag("force"),
    })
}

fn create(
    shared: &Arc<Shared>,
    rt: &ResourceType,
    namespace: Option<&str>,
    request: &Incoming,
) -> Result<Response, ApiError> {
    if rt.namespaced && namespace.is_none() {
        return Err(ApiError::method_not_allowed());
    }
    let options = write_options(request)?;
    let written = lock(&shared.world).create(rt, namespace, request.json_body()?, &options)?;
    Ok((StatusCode::CREATED, Json(written.object)).into_response())
}

fn object_verb(
    shared: &Arc<Shared>,
    method: &Method,
    target: &Target,
    request: &Incoming,
) -> Result<Response, ApiError> {
    let written = match *method {
        Method::GET => return Ok(Json(lock(&shared.world).get(target)?).into_response()),
        Method::DELETE => return delete(shared, target, request),
        Method::PUT => lock(&shared.world).replace(target, request.json_body()?, &write_options(request)?)?,
        Method::PATCH => return patch(shared, target, request),
        _ => return Err(ApiError::method_not_allowed()),
    };
    Ok(Json(written.object).into_response())
}

fn patch(shared: &Arc<Shared>, target: &Target, request: &Incoming) -> Result<Response, ApiError> {
    let content_type = request.header(header::CONTENT_TYPE);
    let media = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let options = write_options(request)?;
    let written = match media.as_str() {
        // Strategic merge is treated as a JSON merge patch: lists are replaced, never merged by key.
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            lock(&shared.world).merge_patch(target, &request.json_body()?, &options)?
        }
        "application/apply-patch+yaml" => {
            if request.query.get("fieldManager").is_none_or(str::is_empty) {
                return Err(ApiError::invalid_options("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"));
            }
            let config: Value = serde_yaml::from_slice(request.body)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
            lock(&shared.world).apply(target, &config, &options)?
        }
        _ => return Err(ApiError::unsupported_media_type(content_type)),
    };
    let code = if written.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((code, Json(written.object)).into_response())
}

fn delete(shared: &Arc<Shared>, target: &Target, request: &Incoming) -> Result<Response, ApiError> {
    let options: Value = if request.body.is_empty() { json!({}) } else { request.json_body()? };
    let in_body = options.get("dryRun").and_then(Value::as_array).is_some_and(|v| v.iter().any(|d| d == "All"));
    let dry_run = request.query.dry_run()? || in_body;
    let deleted = lock(&shared.world).delete(target, dry_run, options.get("preconditions"))?;
    let mut response = match deleted {
        Deleted::Pending(object) => Json(object).into_response(),
        Deleted::Gone(object) => {
            let mut details = json!({"name": target.name, "kind": target.rt.plural, "uid": object["metadata"]["uid"]});
            if !target.rt.group.is_empty() {
                details["group"] = json!(target.rt.group);
            }
            Json(json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}))
                .into_response()
        }
    };
    if in_body {
        response.extensions_mut().insert(DryRunInBody);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(path: &str) -> ObjectPath {
        match parse_path(path) {
            Some(Endpoint::Objects(p)) => p,
            _ => panic!("{path} is not an object path"),
        }
    }

    #[test]
    fn paths_split_into_group_namespace_name_and_subresource() {
        let p = objects("/apis/apps/v1/namespaces/ns/deployments/web/status");
        assert_eq!((p.group.as_str(), p.namespace.as_deref(), p.plural.as_str()), ("apps", Some("ns"), "deployments"));
        assert_eq!((p.name.as_deref(), p.subresource.as_deref()), (Some("web"), Some("status")));
        let all = objects("/api/v1/configmaps");
        assert_eq!((all.namespace, all.name), (None, None));
    }

    #[test]
    fn a_namespace_and_its_status_are_cluster_paths() {
        let p = objects("/api/v1/namespaces/team-a/status");
        assert_eq!(
            (p.plural.as_str(), p.name.as_deref(), p.subresource.as_deref()),
            ("namespaces", Some("team-a"), Some("status"))
        );
        let p = objects("/api/v1/namespaces/team-a");
        assert_eq!((p.namespace, p.name.as_deref()), (None, Some("team-a")));
    }
}
