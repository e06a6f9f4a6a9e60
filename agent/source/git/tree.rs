//! Reading files of one commit straight from the object database.

use gix::ThreadSafeRepository;

use super::GitError;
use crate::source::{FileTree, TreeError};

pub struct GitTree {
    repo: ThreadSafeRepository,
    tree: gix::ObjectId,
}

impl GitTree {
    pub fn at_commit(repo: gix::Repository, commit: &str) -> Result<Self, GitError> {
        let err =
            |e: &dyn std::fmt::Display| GitError::ReadCommit { commit: commit.to_owned(), message: format!("{e:#}") };
        let id = gix::ObjectId::from_hex(commit.as_bytes()).map_err(|e| err(&e))?;
        let tree = repo.find_commit(id).map_err(|e| err(&e))?.tree_id().map_err(|e| err(&e))?.detach();
        Ok(Self { repo: repo.into_sync(), tree })
    }
}

impl FileTree for GitTree {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, TreeError> {
        let read_err = |e: &dyn std::fmt::Display| TreeError::Read { path: path.to_owned(), message: format!("{e:#}") };
        let repo = self.repo.to_thread_local();
        let tree = repo.find_tree(self.tree).map_err(|e| read_err(&e))?;
        let Some(entry) = tree.lookup_entry_by_path(path).map_err(|e| read_err(&e))? else {
            return Ok(None);
        };
        let mode = entry.mode();
        if mode.is_link() {
            return Err(TreeError::Symlink { path: path.to_owned() });
        }
        if !mode.is_blob() {
            return Ok(None);
        }
        let object = entry.object().map_err(|e| read_err(&e))?;
        Ok(Some(object.detach().data))
    }
}
