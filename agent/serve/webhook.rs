//! `POST /webhooks/github`: verified, deduplicated push notifications that queue a sync of the
//! repositories they name. A delivery is acknowledged only once its request is committed to the
//! store, so a restart — or a crash right after the answer — does not lose it.

use std::sync::{Arc, PoisonError, RwLock};

use axum::body::Body;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::mpsc::UnboundedSender;
use tracing::{info, warn};

use super::State;
use crate::config::Secret;
use crate::source::git::RemoteUrl;

/// GitHub's documented cap on webhook payloads (25 MB); anything bigger is refused before it is
/// buffered further.
pub const MAX_BODY_BYTES: usize = 25 * 1000 * 1000;

/// Deliveries whose bodies are read and verified at once; more get `503` with `Retry-After`
/// (GitHub redelivers). With the body cap this bounds webhook memory at about 100 MB.
pub const MAX_VERIFYING: usize = 4;

/// A repository and branch a git source tracks, as pushes name them.
#[derive(Debug, Clone)]
pub struct Tracked {
    pub source: String,
    pub url: RemoteUrl,
    /// `None`: the repository's default branch.
    pub branch: Option<String>,
}

/// What the webhook endpoint needs: the shared secret, the tracked repositories, and where to
/// send the sources a push asks for (the app's work queue).
pub struct GithubWebhook {
    pub secret: Secret,
    /// Configured git sources.
    pub tracked: Vec<Tracked>,
    /// Repositories GitHub sources discovered (refreshed by every discovery).
    pub discovered: Arc<RwLock<Vec<Tracked>>>,
    /// `(organisation, source)` of every GitHub source: `repository` events re-run its discovery.
    pub orgs: Vec<(String, String)>,
    pub requests: UnboundedSender<String>,
    /// Permits to read and verify a body ([`MAX_VERIFYING`]).
    pub verifying: tokio::sync::Semaphore,
}

impl GithubWebhook {
    /// Sources tracking the pushed repository (by clone URL, SSH URL or `owner/name`) and branch.
    pub fn sources_for_push(&self, push: &Value) -> Vec<String> {
        let repo = &push["repository"];
        let Some(branch) = push["ref"].as_str().and_then(|r| r.strip_prefix("refs/heads/")) else {
            return Vec::new();
        };
        let urls: Vec<RemoteUrl> = ["clone_url", "ssh_url", "git_url", "html_url"]
            .iter()
            .filter_map(|k| repo[*k].as_str())
            .map(RemoteUrl::parse)
            .collect();
        let full_name = repo["full_name"].as_str().unwrap_or_default();
        let default_branch = repo["default_branch"].as_str().or_else(|| repo["master_branch"].as_str());
        let discovered = self.discovered.read().unwrap_or_else(PoisonError::into_inner);
        self.tracked
            .iter()
            .chain(discovered.iter())
            .filter(|t| urls.iter().any(|u| u.same_repository(&t.url)) || t.url.names(full_name))
            .filter(|t| t.branch.as_deref().or(default_branch) == Some(branch))
            .map(|t| t.source.clone())
            .collect()
    }

    /// GitHub sources discovering the organisation a `repository` event is about.
    pub fn sources_for_repository_event(&self, event: &Value) -> Vec<String> {
        let owner = event["repository"]["owner"]["login"].as_str().or_else(|| event["organization"]["login"].as_str());
        let Some(owner) = owner else { return Vec::new() };
        self.orgs.iter().filter(|(org, _)| org.eq_ignore_ascii_case(owner)).map(|(_, s)| s.clone()).collect()
    }

    fn signature_matches(&self, headers: &HeaderMap, body: &[u8]) -> bool {
        let Some(signature) = header(headers, "x-hub-signature-256").and_then(|s| s.strip_prefix("sha256=")) else {
            return false;
        };
        let Ok(expected) = hex::decode(signature) else { return false };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.secret.expose().as_bytes()) else { return false };
        mac.update(body);
        // Constant-time comparison: timing reveals nothing about the expected signature.
        mac.verify_slice(&expected).is_ok()
    }
}

/// `sha256=` and 64 hex digits: the only signature worth reading a body for.
fn has_signature_form(headers: &HeaderMap) -> bool {
    header(headers, "x-hub-signature-256")
        .and_then(|s| s.strip_prefix("sha256="))
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

/// How long a delivery waits for the database's migrations at start-up.
const WAIT_FOR_SCHEMA: std::time::Duration = std::time::Duration::from_secs(8);

pub async fn github(AxumState(state): AxumState<State>, headers: HeaderMap, body: Body) -> Response {
    let Some(hook) = state.webhook.clone() else {
        return answer(StatusCode::NOT_FOUND, json!({"error": "webhooks.github is not configured"}));
    };
    let event = header(&headers, "x-github-event").unwrap_or("unknown").to_owned();
    let count = |outcome: &str| {
        // Event names come from GitHub's fixed list; anything else is counted as `other`.
        let label = if event.len() <= 40 && event.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            event.as_str()
        } else {
            "other"
        };
        state.metrics.webhook_deliveries.with_label_values(&[label, outcome]).inc();
    };
    // Nothing of an unsigned or oversized delivery is read: the headers already say so.
    if !has_signature_form(&headers) {
        count("bad_signature");
        warn!(event, "webhook without a well-formed X-Hub-Signature-256 rejected");
        return answer(StatusCode::UNAUTHORIZED, json!({"error": "missing or invalid X-Hub-Signature-256"}));
    }
    let declared = header(&headers, "content-length").and_then(|l| l.parse::<usize>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES) {
        count("too_large");
        return answer(StatusCode::PAYLOAD_TOO_LARGE, json!({"error": format!("payload over {MAX_BODY_BYTES} bytes")}));
    }
    let Ok(_permit) = hook.verifying.try_acquire() else {
        count("busy");
        let mut busy = answer(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "too many deliveries at once"}));
        busy.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("5"));
        return busy;
    };
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        count("too_large");
        return answer(StatusCode::PAYLOAD_TOO_LARGE, json!({"error": format!("payload over {MAX_BODY_BYTES} bytes")}));
    };
    if !hook.signature_matches(&headers, &body) {
        count("bad_signature");
        warn!(event, "webhook with a missing or invalid X-Hub-Signature-256 rejected");
        return answer(StatusCode::UNAUTHORIZED, json!({"error": "missing or invalid X-Hub-Signature-256"}));
    }
    if event == "ping" {
        count("accepted");
        return answer(StatusCode::OK, json!({"ok": true}));
    }
    if event != "push" && event != "repository" {
        count("ignored");
        return answer(StatusCode::OK, json!({"ignored": format!("event {event} is not used")}));
    }
    let (Some(delivery), Ok(payload)) = (header(&headers, "x-github-delivery"), serde_json::from_slice::<Value>(&body))
    else {
        count("malformed");
        return answer(StatusCode::BAD_REQUEST, json!({"error": "a delivery needs X-GitHub-Delivery and a JSON body"}));
    };
    // A repository created, deleted, archived, renamed or transferred: discovery runs again and
    // asks the API itself (a forged-looking event cannot delete anything on its own).
    let sources =
        if event == "push" { hook.sources_for_push(&payload) } else { hook.sources_for_repository_event(&payload) };
    if sources.is_empty() {
        count("ignored");
        return answer(StatusCode::OK, json!({"ignored": "no source tracks this repository"}));
    }
    // A push that arrives while the agent starts waits for the schema instead of failing: GitHub
    // does not redeliver on its own. Bounded under GitHub's 10 s delivery timeout.
    if !state.readiness.migrated_within(WAIT_FOR_SCHEMA).await {
        count("store_down");
        warn!(
            delivery,
            "cannot record the webhook before the database is ready; GitHub will show it failed (redeliver it)"
        );
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "cannot record the request; the store is not ready"}),
        );
    }
    match state.store.record_delivery(delivery, &event, &sources, "webhook").await {
        Ok(false) => {
            count("duplicate");
            answer(StatusCode::OK, json!({"duplicate": delivery}))
        }
        Ok(true) => {
            count("accepted");
            info!(delivery, sources = %sources.join(", "), "push received; sync queued");
            for source in &sources {
                // The request is already durable; a closed queue (shutting down) picks it up on start.
                let _ = hook.requests.send(source.clone());
            }
            answer(StatusCode::ACCEPTED, json!({"queued": sources}))
        }
        Err(err) => {
            count("store_down");
            warn!(delivery, error = %err, "cannot record the webhook; GitHub will show it failed (redeliver it)");
            answer(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "cannot record the request; the store is down"}))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(tracked: &[(&str, &str, Option<&str>)]) -> GithubWebhook {
        let (requests, _) = tokio::sync::mpsc::unbounded_channel();
        GithubWebhook {
            secret: Secret::from_config("s3cret"),
            tracked: tracked
                .iter()
                .map(|(s, u, b)| Tracked { source: (*s).into(), url: RemoteUrl::parse(u), branch: b.map(Into::into) })
                .collect(),
            discovered: Arc::default(),
            orgs: vec![("acme".into(), "acme-org".into())],
            requests,
            verifying: tokio::sync::Semaphore::new(MAX_VERIFYING),
        }
    }

    fn push(reference: &str) -> Value {
        json!({"ref": reference, "repository": {
            "full_name": "Acme/Platform", "default_branch": "main",
            "clone_url": "https://github.com/Acme/Platform.git", "ssh_url": "git@github.com:Acme/Platform.git"}})
    }

    #[test]
    fn pushes_match_by_clone_url_ssh_url_or_owner_and_name_on_the_tracked_branch() {
        let h = hook(&[
            ("https", "https://github.com/acme/platform.git", None),
            ("ssh", "ssh://git@github.com/acme/platform.git", Some("main")),
            ("scp", "git@github.com:acme/platform", None),
            ("release", "https://github.com/acme/platform", Some("release")),
            ("other", "https://github.com/acme/other.git", None),
        ]);
        assert_eq!(h.sources_for_push(&push("refs/heads/main")), ["https", "ssh", "scp"]);
        assert_eq!(h.sources_for_push(&push("refs/heads/release")), ["release"]);
        assert!(h.sources_for_push(&push("refs/tags/v1")).is_empty(), "tags are not branches");
        let by_name = hook(&[("mirror", "http://127.0.0.1:9/git/acme/platform.git", None)]);
        assert_eq!(by_name.sources_for_push(&push("refs/heads/main")), ["mirror"], "owner/name alone is enough");
    }

    #[test]
    fn repository_events_name_the_sources_discovering_their_organisation() {
        let h = hook(&[]);
        let renamed = json!({"action": "renamed", "repository": {"name": "pay", "owner": {"login": "ACME"}}});
        assert_eq!(h.sources_for_repository_event(&renamed), ["acme-org"]);
        let elsewhere = json!({"action": "deleted", "repository": {"name": "x", "owner": {"login": "other"}}});
        assert!(h.sources_for_repository_event(&elsewhere).is_empty());
    }

    #[test]
    fn signatures_are_hmac_sha256_of_the_exact_body() {
        let h = hook(&[]);
        let body = br#"{"zen":"Keep it logically awesome."}"#;
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(body);
        let good = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("x-hub-signature-256", value.parse().unwrap());
            headers
        };
        assert!(h.signature_matches(&with(&good), body));
        assert!(!h.signature_matches(&with(&good), b"{}"), "another body");
        assert!(!h.signature_matches(&with(&good.replace("sha256=", "sha1=")), body));
        assert!(!h.signature_matches(&with("sha256=zz"), body));
        assert!(!h.signature_matches(&HeaderMap::new(), body), "unsigned");
    }
}
