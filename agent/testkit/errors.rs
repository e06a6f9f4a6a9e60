//! Failures as the real API server reports them: a `Status` object with the same `reason`, `code`
//! and message wording, because clients branch on these (kube-rs on `code`, kubectl on `reason`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::managed::{conflict_message, Conflict};
use super::resources::ResourceType;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
    pub retry_after: Option<u64>,
}

/// `configmaps` or `deployments.apps`: how messages name a resource.
fn qualified(rt: &ResourceType) -> String {
    if rt.group.is_empty() {
        rt.plural.clone()
    } else {
        format!("{}.{}", rt.plural, rt.group)
    }
}

fn details(rt: &ResourceType, name: &str) -> Value {
    let mut details = json!({"name": name, "kind": rt.plural});
    if !rt.group.is_empty() {
        details["group"] = json!(rt.group);
    }
    details
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self { code, reason, message: message.into(), details: None, retry_after: None }
    }

    pub fn not_found(rt: &ResourceType, name: &str) -> Self {
        Self {
            details: Some(details(rt, name)),
            ..Self::new(404, "NotFound", format!("{} \"{name}\" not found", qualified(rt)))
        }
    }

    pub fn namespace_not_found(namespace: &str) -> Self {
        Self {
            details: Some(json!({"name": namespace, "kind": "namespaces"})),
            ..Self::new(404, "NotFound", format!("namespaces \"{namespace}\" not found"))
        }
    }

    /// An unknown group, version or resource.
    pub fn no_resource() -> Self {
        Self::new(404, "NotFound", "the server could not find the requested resource")
    }

    pub fn already_exists(rt: &ResourceType, name: &str) -> Self {
        Self {
            details: Some(details(rt, name)),
            ..Self::new(409, "AlreadyExists", format!("{} \"{name}\" already exists", qualified(rt)))
        }
    }

    /// A stale `resourceVersion` precondition (optimistic concurrency).
    pub fn modified(rt: &ResourceType, name: &str) -> Self {
        let message = format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            qualified(rt)
        );
        Self { details: Some(details(rt, name)), ..Self::new(409, "Conflict", message) }
    }

    pub fn apply_conflict(conflicts: &[Conflict]) -> Self {
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|c| {
                json!({"reason": "FieldManagerConflict", "message": format!("conflict with {}", c.manager),
                       "field": super::fields::display(&c.field)})
            })
            .collect();
        Self { details: Some(json!({"causes": causes})), ..Self::new(409, "Conflict", conflict_message(conflicts)) }
    }

    pub fn invalid(rt: &ResourceType, name: &str, problem: &str) -> Self {
        let mut details = details(rt, name);
        details["kind"] = json!(rt.kind);
        Self {
            details: Some(details),
            ..Self::new(422, "Invalid", format!("{} \"{name}\" is invalid: {problem}", rt.kind))
        }
    }

    /// Request options the server rejects as invalid (422), such as apply without a manager.
    pub fn invalid_options(message: impl Into<String>) -> Self {
        Self::new(422, "Invalid", message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (got {content_type:?})"))
    }

    /// A watch resuming from a revision the history no longer holds.
    pub fn expired(requested: u64, oldest: u64) -> Self {
        Self::new(410, "Expired", format!("too old resource version: {requested} ({oldest})"))
    }

    /// An injected fault: the reason and wording the real server uses for that code.
    pub fn injected(code: u16, retry_after: Option<u64>) -> Self {
        let (reason, message) = match code {
            429 => ("TooManyRequests", "Too many requests, please try again later.".to_owned()),
            500 => (
                "InternalError",
                "an error on the server (\"injected fault\") has prevented the request from succeeding".into(),
            ),
            503 => ("ServiceUnavailable", "the server is currently unable to handle the request".into()),
            504 => ("Timeout", "the server was unable to return a response in the time allotted".into()),
            _ => ("", format!("injected fault with status {code}")),
        };
        let details = retry_after.map(|seconds| json!({"retryAfterSeconds": seconds}));
        Self { details, retry_after, ..Self::new(code, reason, message) }
    }

    pub fn status_body(&self) -> Value {
        let mut body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                              "message": self.message, "reason": self.reason, "code": self.code});
        if let Some(details) = &self.details {
            body["details"] = details.clone();
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (code, axum::Json(self.status_body())).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
