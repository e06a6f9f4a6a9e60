//! What discovery knows across passes, apart from the passes: each GitHub source's client and
//! the repositories it found, which the queue, the webhook and the status page look up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crate::config::{SourceConfig, SourceKind};
use crate::serve::Tracked;
use crate::source::git::RemoteUrl;
use crate::source::github::GithubClient;

/// What discovery knows across passes: a client per source (its ETag cache lives there) and the
/// repositories each source found, for the queue and the webhook.
#[derive(Default)]
pub struct Discovery {
    pub(super) clients: Mutex<HashMap<String, Arc<GithubClient>>>,
    /// Discovered repository name (`<source>/<repository>`) → its organisation source and config;
    /// looked up by name for every queue entry, so a map rather than a scan.
    repos: RwLock<HashMap<String, (String, SourceConfig)>>,
    /// Discovered repositories as the webhook matches pushes; shared with the HTTP side.
    pub tracked: Arc<RwLock<Vec<Tracked>>>,
}

impl Discovery {
    /// A discovered repository's git source, by its `<source>/<repository>` name.
    pub fn repository(&self, name: &str) -> Option<SourceConfig> {
        let repos = self.repos.read().unwrap_or_else(PoisonError::into_inner);
        repos.get(name).map(|(_, source)| source.clone())
    }

    pub(super) fn remember(&self, source: &str, found: Vec<SourceConfig>) {
        let mut repos = self.repos.write().unwrap_or_else(PoisonError::into_inner);
        repos.retain(|_, (org, _)| org != source);
        repos.extend(found.into_iter().map(|repo| (repo.name.clone(), (source.to_owned(), repo))));
        let tracked: Vec<Tracked> = repos.values().filter_map(|(_, repo)| tracked(repo)).collect();
        *self.tracked.write().unwrap_or_else(PoisonError::into_inner) = tracked;
    }
}

/// A git source as the webhook matches pushes against it; `None` for other kinds.
pub fn tracked(source: &SourceConfig) -> Option<Tracked> {
    match &source.kind {
        SourceKind::Git(git) => {
            Some(Tracked { source: source.name.clone(), url: RemoteUrl::parse(&git.url), branch: git.branch.clone() })
        }
        _ => None,
    }
}
