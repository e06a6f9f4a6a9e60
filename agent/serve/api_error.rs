//! Errors in Backstage's shape: `{error: {name, message}, request: {method, url}, response:
//! {statusCode}}`, as its catalog backend answers them.

use axum::extract::rejection::JsonRejection;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// An API error in Backstage's shape.
#[derive(Debug)]
pub(super) struct ApiError {
    pub status: StatusCode,
    pub name: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn input(message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, name: "InputError", message: message.into() }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self { status: StatusCode::NOT_FOUND, name: "NotFoundError", message: message.into() }
    }

    /// Backstage's words for an entity ref that names nothing.
    pub fn no_entity(kind: &str, namespace: &str, name: &str) -> Self {
        Self::not_found(format!("No entity named '{name}' found, with kind '{kind}' in namespace '{namespace}'"))
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self { status: StatusCode::CONFLICT, name: "ConflictError", message: message.into() }
    }

    pub fn not_allowed(message: impl Into<String>) -> Self {
        Self { status: StatusCode::FORBIDDEN, name: "NotAllowedError", message: message.into() }
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self { status: StatusCode::UNAUTHORIZED, name: "AuthenticationError", message: message.into() }
    }

    /// A request body the API cannot take: too large (`413`, as Backstage's body parser answers)
    /// or not the JSON it expects (`400`).
    #[allow(clippy::needless_pass_by_value)] // used as `map_err(ApiError::body)`
    pub fn body(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            let message = format!("request entity too large (the limit is {} bytes)", super::MAX_API_BODY_BYTES);
            return Self { status: StatusCode::PAYLOAD_TOO_LARGE, name: "PayloadTooLargeError", message };
        }
        Self::input(rejection.body_text())
    }

    #[allow(clippy::needless_pass_by_value)] // used as `map_err(ApiError::unavailable)`
    pub fn unavailable(err: impl std::fmt::Display) -> Self {
        let message = super::store_unavailable(&err).to_owned();
        Self { status: StatusCode::SERVICE_UNAVAILABLE, name: "ServiceUnavailableError", message }
    }

    /// The portal's permission backend could not be asked: refused, never allowed.
    pub fn permission_unavailable() -> Self {
        let message = "The portal's permission backend could not decide; the agent's log has the cause".to_owned();
        Self { status: StatusCode::SERVICE_UNAVAILABLE, name: "ServiceUnavailableError", message }
    }

    /// A permission policy's denial.
    pub fn denied(permission: &str) -> Self {
        Self::not_allowed(format!("Not allowed: {permission}"))
    }

    pub fn into_response(self, method: &Method, uri: &Uri) -> Response {
        error(self.status, self.name, &self.message, method, uri)
    }
}

/// Backstage's error body: `{error: {name, message}, request: {method, url}, response: {statusCode}}`.
pub(super) fn error(status: StatusCode, name: &str, message: &str, method: &Method, uri: &Uri) -> Response {
    let url = uri.path_and_query().map_or_else(|| uri.path().to_owned(), ToString::to_string);
    let url = url.strip_prefix("/api/catalog").unwrap_or(&url).to_owned();
    let body = json!({
        "error": { "name": name, "message": message },
        "request": { "method": method.as_str(), "url": url },
        "response": { "statusCode": status.as_u16() },
    });
    (status, Json(body)).into_response()
}
