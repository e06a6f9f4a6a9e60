//! Git repositories through gix: keep a bare clone per source in the cache directory, ask the
//! remote for its ref first and fetch only when it moved, and read files straight from the
//! object database at the synced commit — no working tree.

mod remote_url;
mod tree;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use gix::protocol::handshake::Ref;
use gix::remote::Direction;

pub use remote_url::{web_url, RemoteUrl};
use tree::GitTree;

use super::{Origin, Snapshot};
use crate::config::Secret;

/// What a git source tracks.
#[derive(Debug, Clone)]
pub struct GitRemote {
    /// The configured source name; names the cache directory and labels metrics.
    pub source: String,
    pub url: String,
    /// `None` follows the remote's `HEAD`.
    pub branch: Option<String>,
    pub catalog_path: String,
    /// Sent as the HTTPS password (GitHub accepts tokens this way).
    pub token: Option<Secret>,
}

/// The remote's tip, and whether getting it needed a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tip {
    pub commit: String,
    /// The branch name, resolved from the remote's `HEAD` when none was configured.
    pub branch: String,
    /// False when the remote still pointed at the commit we already had: no pack was fetched.
    pub fetched: bool,
    /// The cache did not open, so it was moved aside (`<name>.git.broken`) and cloned again.
    pub rebuilt: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot open the git cache {path}: {message}")]
    OpenCache { path: PathBuf, message: String },
    #[error("cannot fetch {url}: {message}")]
    FetchRemote { url: String, message: String },
    #[error("{url} has no branch {branch}")]
    MissingBranch { url: String, branch: String },
    #[error("cannot read commit {commit}: {message}")]
    ReadCommit { commit: String, message: String },
    #[error("fetch of {url} was interrupted")]
    Interrupted { url: String },
}

impl GitError {
    /// Network trouble is worth retrying; a missing branch or a broken cache is not.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::FetchRemote { .. })
    }
}

impl GitRemote {
    fn cache_path(&self, cache_dir: &Path) -> PathBuf {
        cache_dir.join(format!("{}.git", self.source))
    }

    /// Contacts the remote and brings the cache up to its tip. Blocking: run it off the async
    /// runtime. `last` is the commit of the last successful sync.
    pub fn fetch(&self, cache_dir: &Path, last: Option<&str>, interrupt: &AtomicBool) -> Result<Tip, GitError> {
        let path = self.cache_path(cache_dir);
        let (repo, rebuilt) = open_or_rebuild(&path)?;
        let fetch_err = |err: &(dyn std::error::Error + 'static)| GitError::FetchRemote {
            url: self.url.clone(),
            message: crate::telemetry::error_chain(err),
        };
        let spec = match &self.branch {
            Some(branch) => format!("+refs/heads/{branch}:refs/remotes/origin/{branch}"),
            None => "+HEAD:refs/remotes/origin/HEAD".to_owned(),
        };
        let remote = repo
            .remote_at(self.url.as_str())
            .and_then(|r| r.with_refspecs(Some(spec.as_str()), Direction::Fetch))
            .map_err(|e| fetch_err(&e))?;
        let connection = remote.connect(Direction::Fetch).map_err(|e| fetch_err(&e))?;
        let token = self.token.clone();
        let connection = connection.with_credentials(move |action| credentials(token.as_ref(), action));
        let prepare = connection
            .prepare_fetch(gix::progress::Discard, gix::remote::ref_map::Options::default())
            .map_err(|e| fetch_err(&e))?;
        let (commit, branch) = self.remote_tip(prepare.ref_map())?;
        let have = last == Some(commit.to_string().as_str()) && repo.has_object(commit);
        if have {
            // Dropping `prepare` ends the conversation: one ref advertisement, no pack.
            return Ok(Tip { commit: commit.to_string(), branch, fetched: false, rebuilt });
        }
        if interrupt.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(GitError::Interrupted { url: self.url.clone() });
        }
        prepare.receive(gix::progress::Discard, interrupt).map_err(|e| {
            // An interrupted fetch is shutdown, not a network problem: do not retry it.
            if interrupt.load(std::sync::atomic::Ordering::Relaxed) {
                GitError::Interrupted { url: self.url.clone() }
            } else {
                fetch_err(&e)
            }
        })?;
        Ok(Tip { commit: commit.to_string(), branch, fetched: true, rebuilt })
    }

    fn remote_tip(&self, map: &gix::remote::fetch::RefMap) -> Result<(gix::ObjectId, String), GitError> {
        let wanted = self.branch.as_deref().map_or_else(|| "HEAD".to_owned(), |b| format!("refs/heads/{b}"));
        let missing = || GitError::MissingBranch {
            url: self.url.clone(),
            branch: self.branch.clone().unwrap_or_else(|| "HEAD".into()),
        };
        let found = map.remote_refs.iter().find(|r| r.unpack().0 == wanted.as_bytes()).ok_or_else(missing)?;
        let (commit, target) = match found {
            Ref::Direct { object, .. } | Ref::Peeled { object, .. } => (*object, None),
            Ref::Symbolic { target, object, .. } => (*object, Some(target)),
            Ref::Unborn { .. } => return Err(missing()),
        };
        let branch = match (&self.branch, target) {
            (Some(branch), _) => branch.clone(),
            (None, Some(target)) => String::from_utf8_lossy(target).trim_start_matches("refs/heads/").to_owned(),
            // An old server that does not advertise HEAD's target: name it by what we asked for.
            (None, None) => "HEAD".to_owned(),
        };
        Ok((commit, branch))
    }

    /// A snapshot of the cached repository at `tip`.
    pub fn snapshot(&self, cache_dir: &Path, tip: &Tip) -> Result<Snapshot, GitError> {
        let path = self.cache_path(cache_dir);
        let repo = open_or_init(&path)?;
        let files = GitTree::at_commit(repo, &tip.commit)?;
        let remote = RemoteUrl::parse(&self.url);
        Ok(Snapshot {
            source: self.source.clone(),
            repo: remote.display_name(),
            revision: Some(tip.commit.clone()),
            origin: Origin::Git { web_url: remote.web_url(), branch: tip.branch.clone(), github: remote.is_github() },
            catalog_path: self.catalog_path.clone(),
            files: Arc::new(files),
        })
    }
}

/// Opens the cache, or — when it exists but does not open (a half-copied or truncated clone, a
/// cache committed by mistake) — moves it aside and starts a fresh one: a cache is only ever a
/// copy of the remote, so it heals by being fetched again. The last broken copy is kept for
/// inspection, replacing any earlier one.
fn open_or_rebuild(path: &Path) -> Result<(gix::Repository, bool), GitError> {
    if !path.exists() {
        return open_or_init(path).map(|repo| (repo, false));
    }
    let err = |e: &(dyn std::error::Error + 'static)| GitError::OpenCache {
        path: path.to_owned(),
        message: crate::telemetry::error_chain(e),
    };
    match gix::open(path) {
        Ok(repo) if path.join("objects").is_dir() => Ok((repo, false)),
        // A directory that cannot even be listed (permissions, no file handles left) is the
        // environment's problem, not a broken cache: cloning again would not help.
        Err(open) if std::fs::read_dir(path).is_err() => Err(err(&open)),
        _ => {
            let mut aside = path.as_os_str().to_owned();
            aside.push(".broken");
            let aside = PathBuf::from(aside);
            if aside.exists() {
                std::fs::remove_dir_all(&aside).map_err(|e| err(&e))?;
            }
            std::fs::rename(path, &aside).map_err(|e| err(&e))?;
            open_or_init(path).map(|repo| (repo, true))
        }
    }
}

fn open_or_init(path: &Path) -> Result<gix::Repository, GitError> {
    let err = |e: &(dyn std::error::Error + 'static)| GitError::OpenCache {
        path: path.to_owned(),
        message: crate::telemetry::error_chain(e),
    };
    if path.exists() {
        gix::open(path).map_err(|e| err(&e))
    } else {
        std::fs::create_dir_all(path).map_err(|e| err(&e))?;
        // The platform's capabilities instead of probing the directory (a symlink, an
        // executable and a case test written and removed per repository): a bare cache never
        // checks files out, and a thousand repositories' first pass pays for every inode.
        let options =
            gix::create::Options { fs_capabilities: Some(gix::fs::Capabilities::default()), ..Default::default() };
        gix::ThreadSafeRepository::init(path, gix::create::Kind::Bare, options).map(Into::into).map_err(|e| err(&e))
    }
}

/// Answers git's credential requests with the configured token, and nothing otherwise: a daemon
/// must never fall back to prompting. (gix's callback signature is fallible; ours never fails.)
#[allow(clippy::unnecessary_wraps)]
fn credentials(
    token: Option<&Secret>,
    action: gix::credentials::helper::Action,
) -> gix::Result<Option<gix::credentials::protocol::Outcome>> {
    match (token, action) {
        (Some(token), gix::credentials::helper::Action::Get(context)) => {
            Ok(Some(gix::credentials::protocol::Outcome {
                identity: gix::sec::identity::Account {
                    username: "x-access-token".to_owned(),
                    password: token.expose().to_owned(),
                    oauth_refresh_token: None,
                },
                next: context.into(),
            }))
        }
        _ => Ok(None),
    }
}
