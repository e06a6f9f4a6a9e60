//! Commit statuses, posted by one worker from a bounded queue. Each (repository, commit,
//! context, state) is claimed in the store before it is posted, so replicas and restarts never
//! post it twice; a status GitHub refuses for good (after retries with backoff, and waiting out
//! rate limits as the API asks) gives its claim back for a later pass. A full queue drops the
//! status rather than wait: the sync never waits for GitHub.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use serde_json::json;
use tokio::sync::mpsc;

use crate::config::Secret;
use crate::source::github::{Auth, GithubClient, GithubError};
use crate::store::Store;
use crate::telemetry::Metrics;

pub const CATALOG_CONTEXT: &str = "rigger/catalog";
pub const CLUSTER_CONTEXT: &str = "rigger/cluster";

/// Statuses waiting to be posted; beyond it new ones are dropped (and counted).
const QUEUE: usize = 4096;
/// GitHub's limit on a status description, in characters.
const MAX_DESCRIPTION: usize = 140;
/// Statuses remembered as posted by this process, so a pass that finds the same verdict again
/// costs no store round trip.
const REMEMBERED: usize = 65_536;

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

/// One status for one commit.
pub struct Update {
    pub target: Target,
    pub sha: String,
    pub context: &'static str,
    pub state: StatusState,
    pub description: String,
    /// The page that explains it (the repository on the status page).
    pub target_url: String,
}

type Key = (String, String, &'static str, StatusState);

#[derive(Clone)]
pub struct Statuses {
    sender: mpsc::Sender<Update>,
    metrics: Metrics,
    /// Posted (or found claimed) by this process.
    known: Arc<Mutex<HashSet<Key>>>,
}

impl Statuses {
    /// The queue, and the worker that empties it (to be spawned; it ends when every sender is
    /// gone).
    pub fn start(store: Store, metrics: Metrics) -> (Self, impl std::future::Future<Output = ()>) {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let known = Arc::new(Mutex::new(HashSet::new()));
        let statuses = Self { sender, metrics: metrics.clone(), known: known.clone() };
        (statuses, work(receiver, store, metrics, known))
    }

    /// Whether this process already posted (or found claimed) this status.
    pub fn is_known(&self, target: &Target, sha: &str, context: &'static str, state: StatusState) -> bool {
        let key = (repository(target), sha.to_owned(), context, state);
        self.known.lock().unwrap_or_else(PoisonError::into_inner).contains(&key)
    }

    /// Queues a status, unless this process already posted it; never waits.
    pub fn post(&self, mut update: Update) {
        let key = key(&update);
        if self.known.lock().unwrap_or_else(PoisonError::into_inner).contains(&key) {
            return;
        }
        update.description = shorten(&update.description);
        let labels = [update.context, update.state.as_str()];
        if let Err(mpsc::error::TrySendError::Full(_)) = self.sender.try_send(update) {
            self.metrics.commit_statuses.with_label_values(&[labels[0], labels[1], "dropped"]).inc();
            tracing::warn!("the commit status queue is full; a status was dropped");
        }
    }
}

fn key(update: &Update) -> Key {
    (repository(&update.target), update.sha.clone(), update.context, update.state)
}

/// The repository as the store keys it: API and name, so two GitHub hosts never collide.
fn repository(target: &Target) -> String {
    format!("{}/{}", target.api_url.trim_end_matches('/'), target.full_name.to_lowercase())
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

async fn work(mut receiver: mpsc::Receiver<Update>, store: Store, metrics: Metrics, known: Arc<Mutex<HashSet<Key>>>) {
    let mut clients: HashMap<(String, String), Arc<GithubClient>> = HashMap::new();
    // The last failure logged per repository: a repository that keeps refusing (a token without
    // the permission, say) is logged when its reason changes, not on every pass.
    let mut failing: HashMap<String, String> = HashMap::new();
    while let Some(update) = receiver.recv().await {
        let outcome = match deliver(&store, &mut clients, &update).await {
            Ok(outcome) => {
                failing.remove(&update.target.full_name);
                outcome
            }
            Err(reason) => {
                let repository = update.target.full_name.clone();
                if failing.get(&repository) != Some(&reason) {
                    tracing::warn!(repository, sha = %update.sha, context = update.context, error = %reason,
                        "cannot post a commit status; a later pass tries again");
                    failing.insert(repository, reason);
                }
                "failed"
            }
        };
        metrics.commit_statuses.with_label_values(&[update.context, update.state.as_str(), outcome]).inc();
        if outcome != "failed" {
            let mut known = known.lock().unwrap_or_else(PoisonError::into_inner);
            if known.len() >= REMEMBERED {
                known.clear();
            }
            known.insert(key(&update));
        }
    }
}

/// Claims, posts and reports `posted` or `duplicate`; or why it could not.
async fn deliver(
    store: &Store,
    clients: &mut HashMap<(String, String), Arc<GithubClient>>,
    update: &Update,
) -> Result<&'static str, String> {
    let repository = repository(&update.target);
    let (sha, context, state) = (update.sha.as_str(), update.context, update.state.as_str());
    match store.claim_commit_status(&repository, sha, context, state).await {
        Ok(true) => {}
        Ok(false) => return Ok("duplicate"),
        Err(err) => return Err(format!("cannot claim it in the store: {err}")),
    }
    let client = match client(clients, &update.target) {
        Ok(client) => client,
        Err(err) => return Err(give_back(store, &repository, update, &err).await),
    };
    let body = json!({
        "state": state,
        "context": context,
        "description": update.description,
        "target_url": update.target_url,
    });
    let post = || async { client.create_status(&update.target.full_name, sha, &body).await };
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(30))
        .with_max_times(4)
        .with_jitter();
    match post.retry(backoff).when(GithubError::is_transient).await {
        Ok(()) => {
            tracing::debug!(repository = %update.target.full_name, sha, context, state, "commit status posted");
            Ok("posted")
        }
        Err(err) => Err(give_back(store, &repository, update, &err).await),
    }
}

/// A status that could not be posted gives its claim back; returns why.
async fn give_back(store: &Store, repository: &str, update: &Update, err: &GithubError) -> String {
    if let Err(e) = store.release_commit_status(repository, &update.sha, update.context, update.state.as_str()).await {
        tracing::warn!(error = %e, "cannot give back a commit status claim");
    }
    crate::telemetry::error_chain(err)
}

/// One client per API and credential (an App's installation token changes hourly).
fn client(
    clients: &mut HashMap<(String, String), Arc<GithubClient>>,
    target: &Target,
) -> Result<Arc<GithubClient>, GithubError> {
    use sha2::Digest;
    let fingerprint = hex::encode(sha2::Sha256::digest(target.token.expose().as_bytes()));
    let key = (target.api_url.clone(), fingerprint);
    if let Some(client) = clients.get(&key) {
        return Ok(client.clone());
    }
    let client = Arc::new(GithubClient::new(&target.api_url, Auth::Token(target.token.clone()))?);
    if clients.len() >= 256 {
        clients.clear();
    }
    clients.insert(key, client.clone());
    Ok(client)
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
