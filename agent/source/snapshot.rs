//! What a source hands to the catalog: the files of one repository at one revision, and enough
//! about where they came from to write Backstage's location annotations. No git types leak out.

use std::path::PathBuf;
use std::sync::Arc;

/// The files of a repository (or directory) at one revision.
#[derive(Clone)]
pub struct Snapshot {
    /// The configured source name (bounded; a metric label).
    pub source: String,
    /// The repository's display name (`owner/name`, or the directory path).
    pub repo: String,
    /// The commit id for git sources; `None` for plain directories.
    pub revision: Option<String>,
    pub origin: Origin,
    /// The root catalog file, repository-relative.
    pub catalog_path: String,
    pub files: Arc<dyn FileTree>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("source", &self.source)
            .field("repo", &self.repo)
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

/// Where a snapshot's files live, for forming location references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A git repository at a branch. `web_url` is the browsable base without `.git`
    /// (`https://github.com/acme/platform`); `github` enables GitHub's edit URLs.
    Git { web_url: String, branch: String, github: bool },
    /// A plain directory; locations are `file:` references below `root`.
    Local { root: PathBuf },
}

/// Read access to a snapshot's files by normalised repository-relative path (`a/b.yaml`; no
/// leading `/`, no `.` or `..` segments — the catalog normalises before asking).
pub trait FileTree: Send + Sync {
    /// `Ok(None)` when no regular file exists at `path`. A file larger than `max_bytes` is an
    /// error found before its content is loaded, so hostile files cost no memory.
    fn read(&self, path: &str, max_bytes: usize) -> Result<Option<Vec<u8>>, TreeError>;

    /// Every regular file's path, sorted; for glob targets.
    fn list(&self) -> Result<Vec<String>, TreeError>;

    /// A file's mode, size and git blob id, `Ok(None)` when there is no regular file. The
    /// default reads the content and hashes it as git would; trees that know (git) answer
    /// without loading it.
    fn stat(&self, path: &str, max_bytes: usize) -> Result<Option<FileStat>, TreeError> {
        Ok(self.read(path, max_bytes)?.map(|content| FileStat::of(&content, false)))
    }
}

/// What identifies a file's version: git's mode (`100644`, `100755`), its size and blob id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStat {
    pub mode: String,
    pub size: u64,
    pub blob_id: String,
}

impl FileStat {
    /// Git's blob id (SHA-1 of `blob <size>\0<content>`), so ids agree across git and plain
    /// directories.
    pub fn of(content: &[u8], executable: bool) -> Self {
        use sha1::{Digest, Sha1};
        let mut hasher = Sha1::new();
        hasher.update(format!("blob {}\0", content.len()).as_bytes());
        hasher.update(content);
        Self {
            mode: if executable { "100755" } else { "100644" }.to_owned(),
            size: content.len() as u64,
            blob_id: hex::encode(hasher.finalize()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("{path} is a symbolic link; links are not followed")]
    Symlink { path: String },
    #[error("{path} resolves outside the source directory")]
    Escapes { path: String },
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path} is {size} bytes, larger than the limit of {limit} bytes")]
    TooLarge { path: String, size: u64, limit: usize },
    #[error("{path} is inside .git; repository metadata is never read")]
    GitMetadata { path: String },
}

/// An in-memory tree, for tests and for `rigger validate`.
#[derive(Debug, Default, Clone)]
pub struct MemoryTree(pub std::collections::BTreeMap<String, Vec<u8>>);

impl MemoryTree {
    #[must_use]
    pub fn with(mut self, path: &str, content: &str) -> Self {
        self.0.insert(path.to_owned(), content.as_bytes().to_vec());
        self
    }
}

impl FileTree for MemoryTree {
    fn read(&self, path: &str, max_bytes: usize) -> Result<Option<Vec<u8>>, TreeError> {
        let Some(content) = self.0.get(path) else { return Ok(None) };
        check_size(path, content.len() as u64, max_bytes)?;
        Ok(Some(content.clone()))
    }

    fn list(&self) -> Result<Vec<String>, TreeError> {
        Ok(self.0.keys().cloned().collect())
    }
}

/// Collapses `.` and `..` segments of a repository path; `None` when `..` would climb above the
/// root. Every path a source is asked for has been through this.
pub fn normalise(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// The size check every tree runs before loading a file.
pub fn check_size(path: &str, size: u64, max_bytes: usize) -> Result<(), TreeError> {
    if size > max_bytes as u64 {
        return Err(TreeError::TooLarge { path: path.to_owned(), size, limit: max_bytes });
    }
    Ok(())
}
