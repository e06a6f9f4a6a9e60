//! Commit statuses, posted by one worker from a bounded queue. Each change of state of a
//! (repository, commit, context) is claimed in the store before it is posted, so replicas and
//! restarts post it once, and a final verdict is never followed by a stale `pending`. An outage
//! is retried with backoff (rate limits waited out as the API asks); a status that still cannot
//! be posted gives its claim back for a later pass. A repository that refuses statuses (a token
//! without the permission) is left alone for an hour rather than asked on every pass. A full
//! queue drops the status rather than wait: the sync never waits for GitHub, nor for the store
//! on GitHub's behalf.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use serde_json::json;
use tokio::sync::mpsc;

use crate::config::Secret;
use crate::source::github::{Auth, GithubClient, GithubError};
use crate::store::{StatusClaim, Store};
use crate::telemetry::Metrics;

pub const CATALOG_CONTEXT: &str = "rigger/catalog";
pub const CLUSTER_CONTEXT: &str = "rigger/cluster";

/// Statuses waiting to be posted; beyond it new ones are dropped (and counted).
const QUEUE: usize = 4096;
/// GitHub's limit on a status description, in characters.
const MAX_DESCRIPTION: usize = 140;
/// How long a repository that refused a status is left alone.
const REFUSAL_BACKOFF: Duration = Duration::from_secs(3600);
/// How often claims of old commits are forgotten.
const CLEANUP: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusState {
    Pending,
    Success,
    Failure,
}

impl StatusState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// Where a repository's statuses go, and the credential that may post them.
#[derive(Clone)]
pub struct Target {
    pub api_url: String,
    /// `owner/name`.
    pub full_name: String,
    pub token: Secret,
}

impl Target {
    /// The repository as the store keys it: API and name, so two GitHub hosts never collide.
    pub fn repository(api_url: &str, full_name: &str) -> String {
        format!("{}/{}", api_url.trim_end_matches('/'), full_name.to_lowercase())
    }
}

/// What a status says: written already, or the catalog's verdict on a source, which the worker
/// words from the store (the pass does not wait for that).
pub enum Description {
    Text(String),
    /// Every entity of the source synced.
    Synced {
        source: String,
    },
    /// Some of the source's files are in error: the first, its line, how many.
    InError {
        source: String,
    },
}

/// One status for one commit.
pub struct Update {
    pub target: Target,
    pub sha: String,
    pub context: &'static str,
    pub state: StatusState,
    pub description: Description,
    /// The page that explains it (the repository on the status page).
    pub target_url: String,
}

/// (repository, context) → the (commit, state) last posted or found posted.
type Posted = HashMap<(String, &'static str), (String, StatusState)>;

#[derive(Clone)]
pub struct Statuses {
    sender: mpsc::Sender<Update>,
    metrics: Metrics,
    posted: Arc<Mutex<Posted>>,
}

impl Statuses {
    /// The queue, and the worker that empties it (to be spawned; it ends when every sender is
    /// gone).
    pub fn start(store: Store, metrics: Metrics) -> (Self, impl std::future::Future<Output = ()>) {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let posted = Arc::new(Mutex::new(Posted::new()));
        let statuses = Self { sender, metrics: metrics.clone(), posted: posted.clone() };
        (statuses, work(receiver, store, metrics, posted))
    }

    /// Whether this process knows the repository's commit shows this state already: a pass
    /// that reaches the same verdict again costs nothing.
    pub fn is_posted(&self, repository: &str, sha: &str, context: &'static str, state: StatusState) -> bool {
        let posted = self.posted.lock().unwrap_or_else(PoisonError::into_inner);
        posted.get(&(repository.to_owned(), context)).is_some_and(|(s, st)| s == sha && *st == state)
    }

    /// Queues a status; never waits.
    pub fn post(&self, update: Update) {
        let labels = [update.context, update.state.as_str()];
        if let Err(mpsc::error::TrySendError::Full(_)) = self.sender.try_send(update) {
            self.metrics.commit_statuses.with_label_values(&[labels[0], labels[1], "dropped"]).inc();
            tracing::warn!("the commit status queue is full; a status was dropped (a later pass sends it again)");
        }
    }
}

/// At most GitHub's 140 characters, cut at a character boundary with an ellipsis.
fn shorten(text: &str) -> String {
    if text.chars().count() <= MAX_DESCRIPTION {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(MAX_DESCRIPTION - 1).collect();
    cut.push('…');
    cut
}

/// What the worker keeps between statuses.
struct Worker {
    store: Store,
    clients: HashMap<(String, String), Arc<GithubClient>>,
    /// Repositories (and credentials) that refused, and when.
    refused: HashMap<(String, String), Instant>,
    /// The last failure logged per repository: logged when its reason changes, not every pass.
    failing: HashMap<String, String>,
    cleaned: Option<Instant>,
}

async fn work(mut receiver: mpsc::Receiver<Update>, store: Store, metrics: Metrics, posted: Arc<Mutex<Posted>>) {
    let mut worker =
        Worker { store, clients: HashMap::new(), refused: HashMap::new(), failing: HashMap::new(), cleaned: None };
    while let Some(update) = receiver.recv().await {
        let repository = Target::repository(&update.target.api_url, &update.target.full_name);
        let outcome = match worker.deliver(&repository, &update).await {
            Ok(outcome) => {
                worker.failing.remove(&repository);
                let mut posted = posted.lock().unwrap_or_else(PoisonError::into_inner);
                posted.insert((repository, update.context), (update.sha.clone(), update.state));
                outcome
            }
            Err(Some(reason)) => {
                if worker.failing.get(&repository) != Some(&reason) {
                    tracing::warn!(repository = %update.target.full_name, sha = %update.sha, context = update.context,
                        error = %reason, "cannot post a commit status; a later pass tries again");
                    worker.failing.insert(repository, reason);
                }
                "failed"
            }
            // Held by another replica's post, or a stale `pending`: nothing to do here.
            Err(None) => "duplicate",
        };
        metrics.commit_statuses.with_label_values(&[update.context, update.state.as_str(), outcome]).inc();
        worker.clean_up().await;
    }
}

impl Worker {
    /// Claims, posts and marks posted: `Ok` with `posted` or `duplicate` (posted before);
    /// `Err(None)` when held elsewhere; `Err(Some(why))` when it could not be posted.
    async fn deliver(&mut self, repository: &str, update: &Update) -> Result<&'static str, Option<String>> {
        let (sha, context, state) = (update.sha.as_str(), update.context, update.state.as_str());
        let credential = (repository.to_owned(), fingerprint(&update.target.token));
        if self.refused.get(&credential).is_some_and(|at| at.elapsed() < REFUSAL_BACKOFF) {
            return Err(Some("GitHub refused this repository's statuses within the hour".to_owned()));
        }
        match self.store.claim_commit_status(repository, sha, context, state).await {
            Ok(StatusClaim::Claimed) => {}
            Ok(StatusClaim::Posted) => return Ok("duplicate"),
            Ok(StatusClaim::Held) => return Err(None),
            Err(err) => return Err(Some(format!("cannot claim it in the store: {err}"))),
        }
        match self.post(update).await {
            Ok(()) => {
                if let Err(err) = self.store.mark_commit_status_posted(repository, sha, context).await {
                    tracing::warn!(error = %err, "cannot record a posted commit status; it may be posted again");
                }
                self.refused.remove(&credential);
                Ok("posted")
            }
            Err(err) => {
                if let Err(e) = self.store.release_commit_status(repository, sha, context).await {
                    tracing::warn!(error = %e, "cannot give back a commit status claim");
                }
                if matches!(err, GithubError::Refused { .. } | GithubError::Client(_)) {
                    self.refused.insert(credential, Instant::now());
                }
                Err(Some(crate::telemetry::error_chain(&err)))
            }
        }
    }

    async fn post(&mut self, update: &Update) -> Result<(), GithubError> {
        let client = self.client(&update.target)?;
        let description = match &update.description {
            Description::Text(text) => text.clone(),
            Description::Synced { source } => match self.store.entity_count(source).await {
                Ok(1) => "1 entity synced".to_owned(),
                Ok(count) => format!("{count} entities synced"),
                Err(_) => "Catalog synced".to_owned(),
            },
            Description::InError { source } => match self.store.locations_in_error_of(source).await {
                Ok(files) => in_error(&files),
                Err(_) => "Some catalog files are in error".to_owned(),
            },
        };
        let body = json!({
            "state": update.state.as_str(),
            "context": update.context,
            "description": shorten(&description),
            "target_url": update.target_url,
        });
        let (name, sha) = (update.target.full_name.as_str(), update.sha.as_str());
        let post = || async { client.create_status(name, sha, &body).await };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(500))
            .with_max_delay(Duration::from_secs(30))
            .with_max_times(4)
            .with_jitter();
        // Outages pass; a rate limit was already waited out as far as Rigger waits.
        post.retry(backoff).when(|e| matches!(e, GithubError::Unavailable { .. })).await
    }

    /// One client per API and credential (an App's installation token changes hourly).
    fn client(&mut self, target: &Target) -> Result<Arc<GithubClient>, GithubError> {
        let key = (target.api_url.clone(), fingerprint(&target.token));
        if let Some(client) = self.clients.get(&key) {
            return Ok(client.clone());
        }
        let client = Arc::new(GithubClient::new(&target.api_url, Auth::Token(target.token.clone()))?);
        if self.clients.len() >= 256 {
            self.clients.clear();
        }
        self.clients.insert(key, client.clone());
        Ok(client)
    }

    async fn clean_up(&mut self) {
        if self.cleaned.is_some_and(|at| at.elapsed() < CLEANUP) {
            return;
        }
        self.cleaned = Some(Instant::now());
        if let Err(err) = self.store.forget_old_commit_statuses().await {
            tracing::debug!(error = %err, "cannot forget old commit statuses");
        }
    }
}

fn fingerprint(token: &Secret) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.expose().as_bytes()))
}

/// `catalog-info.yaml:6: <problem> (2 files in error)`: the line its document starts on.
fn in_error(files: &[crate::store::LocationRow]) -> String {
    let Some(first) = files.first() else { return "Some catalog files are in error".to_owned() };
    let problem = first.problems().into_iter().next();
    let line = problem.as_ref().and_then(|(line, _)| *line).map(|l| format!(":{l}")).unwrap_or_default();
    let message = problem.map_or_else(|| "in error".to_owned(), |(_, message)| message);
    let more = match files.len() {
        1 => String::new(),
        n => format!(" ({n} files in error)"),
    };
    format!("{}{line}: {message}{more}", first.path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_fit_github_s_limit() {
        assert_eq!(shorten("14 entities synced"), "14 entities synced");
        let long = "é".repeat(200);
        let short = shorten(&long);
        assert_eq!(short.chars().count(), MAX_DESCRIPTION);
        assert!(short.ends_with('…'));
    }
}
