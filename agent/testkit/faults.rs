//! Injected trouble and the request log. Every API request passes [`gate`]: the first armed
//! fault that matches it answers instead of (or, for a delay, before) the server, and the
//! request is logged with its outcome so tests can count writes.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::errors::ApiError;
use super::server::Shared;

/// Answer the next `times` requests that match `method` (if set) and whose path and query
/// contain `path_contains` (if set) with `kind`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub method: Option<String>,
    pub path_contains: Option<String>,
    pub kind: FaultKind,
    pub times: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// An error `Status` with this code (429 and 5xx carry the real server's reasons), and a
    /// `Retry-After` header when given.
    Status { code: u16, retry_after: Option<u64> },
    /// Hold the request this long, then serve it: past a client's timeout this is a hang.
    Delay(Duration),
}

impl Fault {
    /// One matching request (any, until narrowed) answered with `code`.
    pub fn status(code: u16) -> Self {
        Self { method: None, path_contains: None, kind: FaultKind::Status { code, retry_after: None }, times: 1 }
    }

    pub fn delay(duration: Duration) -> Self {
        Self { method: None, path_contains: None, kind: FaultKind::Delay(duration), times: 1 }
    }

    #[must_use]
    pub fn retry_after(mut self, seconds: u64) -> Self {
        if let FaultKind::Status { retry_after, .. } = &mut self.kind {
            *retry_after = Some(seconds);
        }
        self
    }

    #[must_use]
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    #[must_use]
    pub fn path_contains(mut self, text: &str) -> Self {
        self.path_contains = Some(text.to_owned());
        self
    }

    #[must_use]
    pub fn times(mut self, times: usize) -> Self {
        self.times = times;
        self
    }

    fn matches(&self, method: &str, path_and_query: &str) -> bool {
        self.times > 0
            && self.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.path_contains.as_deref().is_none_or(|text| path_and_query.contains(text))
    }
}

/// The control endpoint's JSON form of a [`Fault`] (`POST /_fake/faults`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FaultSpec {
    method: Option<String>,
    path_contains: Option<String>,
    status: Option<u16>,
    retry_after: Option<u64>,
    delay_ms: Option<u64>,
    #[serde(default = "one")]
    times: usize,
}

fn one() -> usize {
    1
}

impl TryFrom<FaultSpec> for Fault {
    type Error = String;

    fn try_from(spec: FaultSpec) -> Result<Self, String> {
        let kind = match (spec.status, spec.delay_ms) {
            (Some(code), None) => FaultKind::Status { code, retry_after: spec.retry_after },
            (None, Some(ms)) => FaultKind::Delay(Duration::from_millis(ms)),
            _ => return Err("give exactly one of status or delayMs".into()),
        };
        Ok(Self { method: spec.method, path_contains: spec.path_contains, kind, times: spec.times })
    }
}

/// One request as the server saw and answered it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: Option<String>,
    pub field_manager: Option<String>,
    pub dry_run: bool,
    pub status: u16,
    /// The `Impersonate-User` header: whom the client acts as (recorded, not enforced).
    pub impersonate: Option<String>,
}

impl RequestRecord {
    /// A request that could change stored state (a dry run cannot).
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE") && !self.dry_run
    }
}

/// Set by a handler that learned of a dry run from the request body (DELETE options).
#[derive(Clone, Copy, Debug)]
pub struct DryRunInBody;

/// Takes one use of the first armed fault matching the request.
pub fn take(faults: &mut [Fault], method: &str, path_and_query: &str) -> Option<FaultKind> {
    let fault = faults.iter_mut().find(|f| f.matches(method, path_and_query))?;
    fault.times -= 1;
    Some(fault.kind.clone())
}

/// Middleware: faults first, then the request log. Control endpoints (`/_fake/…`) pass untouched.
pub async fn gate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let uri = request.uri().clone();
    if uri.path().starts_with("/_fake/") {
        return next.run(request).await;
    }
    let method = request.method().to_string();
    let query = uri.query().unwrap_or_default().to_owned();
    let headers = request.headers();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (content_type, impersonate) = (header("content-type"), header("impersonate-user"));
    let path_and_query = uri.path_and_query().map_or_else(|| uri.path().to_owned(), ToString::to_string);
    let fault = {
        let mut faults = super::server::lock(&shared.faults);
        let fault = take(&mut faults, &method, &path_and_query);
        faults.retain(|f| f.times > 0);
        fault
    };
    let response = match fault {
        Some(FaultKind::Status { code, retry_after }) => ApiError::injected(code, retry_after).into_response(),
        Some(FaultKind::Delay(duration)) => {
            tokio::select! {
                () = tokio::time::sleep(duration) => next.run(request).await,
                () = shared.shutdown.cancelled() => ApiError::injected(503, None).into_response(),
            }
        }
        None => next.run(request).await,
    };
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let record = RequestRecord {
        method,
        path: uri.path().to_owned(),
        field_manager: param("fieldManager"),
        dry_run: param("dryRun").is_some_and(|v| v == "All") || response.extensions().get::<DryRunInBody>().is_some(),
        query,
        content_type,
        status: response.status().as_u16(),
        impersonate,
    };
    super::server::lock(&shared.log).push(record);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_answers_only_matching_requests_and_only_so_many_times() {
        let mut faults = vec![Fault::status(429).retry_after(2).method("get").path_contains("/configmaps").times(2)];
        assert_eq!(take(&mut faults, "POST", "/api/v1/namespaces/default/configmaps"), None);
        assert_eq!(take(&mut faults, "GET", "/api/v1/namespaces/default/secrets"), None);
        let expected = Some(FaultKind::Status { code: 429, retry_after: Some(2) });
        assert_eq!(take(&mut faults, "GET", "/api/v1/namespaces/default/configmaps"), expected);
        assert_eq!(take(&mut faults, "GET", "/api/v1/configmaps?watch=true"), expected);
        assert_eq!(take(&mut faults, "GET", "/api/v1/configmaps"), None);
    }
}
