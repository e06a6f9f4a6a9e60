//! Reading files of one commit straight from the object database.

use gix::ThreadSafeRepository;

use super::GitError;
use crate::source::{check_size, FileTree, TreeError};

pub struct GitTree {
    repo: ThreadSafeRepository,
    tree: gix::ObjectId,
}

impl GitTree {
    pub fn at_commit(repo: gix::Repository, commit: &str) -> Result<Self, GitError> {
        let err = |e: &(dyn std::error::Error + 'static)| GitError::ReadCommit {
            commit: commit.to_owned(),
            message: crate::telemetry::error_chain(e),
        };
        let id = gix::ObjectId::from_hex(commit.as_bytes()).map_err(|e| err(&e))?;
        let tree = repo.find_commit(id).map_err(|e| err(&e))?.tree_id().map_err(|e| err(&e))?.detach();
        Ok(Self { repo: repo.into_sync(), tree })
    }
}

/// Links are followed inside the repository, this many hops at most.
const MAX_LINK_HOPS: usize = 8;

impl FileTree for GitTree {
    fn read(&self, path: &str, max_bytes: usize) -> Result<Option<Vec<u8>>, TreeError> {
        let repo = self.repo.to_thread_local();
        let tree = repo.find_tree(self.tree).map_err(|e| read_err(path, &e))?;
        let mut current = path.to_owned();
        for _ in 0..=MAX_LINK_HOPS {
            let Some(entry) = tree.lookup_entry_by_path(&current).map_err(|e| read_err(path, &e))? else {
                return Ok(None);
            };
            let mode = entry.mode();
            let header = repo.find_header(entry.object_id()).map_err(|e| read_err(path, &e))?;
            check_size(path, header.size(), max_bytes)?;
            let data = entry.object().map_err(|e| read_err(path, &e))?.detach().data;
            if mode.is_link() {
                current = link_target(&current, &data).ok_or_else(|| TreeError::Escapes { path: path.to_owned() })?;
                continue;
            }
            return Ok(mode.is_blob().then_some(data));
        }
        Err(TreeError::Symlink { path: path.to_owned() })
    }

    fn stat(&self, path: &str, max_bytes: usize) -> Result<Option<crate::source::FileStat>, TreeError> {
        let repo = self.repo.to_thread_local();
        let tree = repo.find_tree(self.tree).map_err(|e| read_err(path, &e))?;
        let Some(entry) = tree.lookup_entry_by_path(path).map_err(|e| read_err(path, &e))? else { return Ok(None) };
        let mode = entry.mode();
        if mode.is_link() {
            // What a link points at is read like `read` does; its id is the target's.
            return Ok(self.read(path, max_bytes)?.map(|content| crate::source::FileStat::of(&content, false)));
        }
        if !mode.is_blob() {
            return Ok(None);
        }
        let header = repo.find_header(entry.object_id()).map_err(|e| read_err(path, &e))?;
        check_size(path, header.size(), max_bytes)?;
        Ok(Some(crate::source::FileStat {
            mode: if mode.is_executable() { "100755" } else { "100644" }.to_owned(),
            size: header.size(),
            blob_id: entry.object_id().to_hex().to_string(),
        }))
    }

    fn list(&self) -> Result<Vec<String>, TreeError> {
        let repo = self.repo.to_thread_local();
        let tree = repo.find_tree(self.tree).map_err(|e| read_err("/", &e))?;
        let mut recorder = gix::traverse::tree::Recorder::default();
        tree.traverse().breadthfirst(&mut recorder).map_err(|e| read_err("/", &e))?;
        let mut paths: Vec<String> = recorder
            .records
            .into_iter()
            .filter(|entry| entry.mode.is_blob())
            .map(|entry| entry.filepath.to_string())
            .collect();
        paths.sort();
        Ok(paths)
    }
}

fn read_err(path: &str, e: &(dyn std::error::Error + 'static)) -> TreeError {
    TreeError::Read { path: path.to_owned(), message: crate::telemetry::error_chain(e) }
}

/// Where a link stored at `link` points, as a repository path; `None` when it leaves the
/// repository (absolute, or `..` above the root).
fn link_target(link: &str, target: &[u8]) -> Option<String> {
    let target = std::str::from_utf8(target).ok()?;
    if target.starts_with('/') {
        return None;
    }
    let dir = link.rsplit_once('/').map_or("", |(dir, _)| dir);
    crate::source::normalise(&format!("{dir}/{target}"))
}
