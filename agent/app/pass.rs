//! How a sync pass ends, shared by the pass and the work that follows it (reconcile, discovery,
//! template sources, commit statuses, plan and render): the pass's outcome and error, the
//! source's files as last synced, and the git remote or directory a source reads.

use std::sync::Arc;

use super::context::Context;
use crate::catalog::Limits;
use crate::config::{Config, GitSourceConfig, SecretError, SourceConfig, SourceKind};
use crate::retry::Transient;
use crate::source::git::{GitError, GitRemote, Tip};
use crate::source::local::LocalDir;
use crate::source::TreeError;
use crate::store::stream::StreamError;
use crate::store::{Changes, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("cannot read the source directory: {0}")]
    ReadDirectory(#[from] TreeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("secret for source {source_name}: {error}")]
    Secret { source_name: String, error: SecretError },
    #[error("a blocking task failed: {0}")]
    Join(String),
    #[error(transparent)]
    Github(#[from] crate::source::github::GithubError),
    /// The catalog synced; reconciling its cluster objects failed for the whole source.
    #[error("catalog synced, cluster reconcile failed: {0}")]
    Reconcile(#[from] crate::reconcile::ReconcileError),
}

impl Transient for SyncError {
    fn is_transient(&self) -> bool {
        match self {
            Self::Git(e) => e.is_transient(),
            Self::Store(e) => e.is_transient(),
            Self::Github(e) => e.is_transient(),
            Self::Reconcile(e) => e.is_transient(),
            Self::ReadDirectory(_) | Self::Secret { .. } | Self::Join(_) => false,
        }
    }
}

impl From<StreamError> for SyncError {
    fn from(err: StreamError) -> Self {
        match err {
            StreamError::Store(err) => Self::Store(err),
            StreamError::Join(message) => Self::Join(message),
        }
    }
}

/// How a pass ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pass {
    /// The remote still pointed at the synced commit: no fetch, no writes. `files_in_error`
    /// counts the catalog files still in error from that commit.
    Unchanged { revision: String, files_in_error: u64 },
    /// The snapshot was read and written. `errors` lists `path[#index]: message` per problem.
    Synced { revision: Option<String>, changes: Changes, errors: Vec<String> },
    /// Another replica holds the source right now (PostgreSQL work sharing).
    Skipped,
}

impl Pass {
    /// True when some file or document of the source is in error.
    pub fn has_errors(&self) -> bool {
        match self {
            Self::Unchanged { files_in_error, .. } => *files_in_error > 0,
            Self::Synced { errors, .. } => !errors.is_empty(),
            Self::Skipped => false,
        }
    }
}

/// The files of the source at the revision last synced (git: from the local cache, no fetch;
/// a directory: as it is now). For the work that follows a catalog pass.
pub async fn synced_tree(ctx: &Context, source: &SourceConfig) -> Result<Arc<dyn crate::source::FileTree>, String> {
    match &source.kind {
        SourceKind::Git(git) => {
            let revision = ctx
                .store
                .source_revision(&source.name)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "the source has not been synced yet".to_owned())?;
            let remote = git_remote(&source.name, git, None);
            let branch = git.branch.clone().unwrap_or_else(|| "HEAD".into());
            let tip = Tip { commit: revision, branch, fetched: false, rebuilt: false };
            let cache = ctx.config.cache_dir.clone();
            tokio::task::spawn_blocking(move || remote.snapshot(&cache, &tip))
                .await
                .map_err(|e| e.to_string())?
                .map(|s| s.files)
                .map_err(|e| e.to_string())
        }
        SourceKind::Local(local) => {
            local_dir(&source.name, local).snapshot().map(|s| s.files).map_err(|e| e.to_string())
        }
        SourceKind::Github(_) => Err("an organisation has no tree of its own".into()),
    }
}

/// The git remote a configured (or discovered) git source reads.
pub fn git_remote(source: &str, git: &GitSourceConfig, token: Option<crate::config::Secret>) -> GitRemote {
    GitRemote {
        source: source.to_owned(),
        url: git.url.clone(),
        branch: git.branch.clone(),
        catalog_path: git.catalog_path.clone(),
        token,
    }
}

/// The directory a `local` source reads.
pub fn local_dir(source: &str, local: &crate::config::LocalSourceConfig) -> LocalDir {
    LocalDir { source: source.to_owned(), root: local.path.clone(), catalog_path: local.catalog_path.clone() }
}

/// The walk's bounds, as configured.
pub fn limits(config: &Config) -> Limits {
    Limits {
        max_depth: config.sync.location_depth,
        max_file_bytes: config.catalog.max_file_bytes,
        max_documents: config.catalog.max_documents_per_file,
    }
}
