//! A plain directory as a source: for sidecar use beside git-sync and for demos. Files are read
//! from disk, confined to the directory (symlinks may not lead out of it).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{check_size, FileTree, Origin, Snapshot, TreeError};

#[derive(Debug, Clone)]
pub struct LocalDir {
    pub source: String,
    pub root: PathBuf,
    pub catalog_path: String,
}

impl LocalDir {
    /// A snapshot of the directory as it is now. Files are read lazily by the catalog.
    pub fn snapshot(&self) -> Result<Snapshot, TreeError> {
        let root = self
            .root
            .canonicalize()
            .map_err(|e| TreeError::Read { path: self.root.display().to_string(), message: e.to_string() })?;
        // Locations are named after the configured path, not the resolved one: git-sync swaps a
        // symlink to a new worktree on every update, and entity keys must not change with it.
        let named = std::path::absolute(&self.root).unwrap_or_else(|_| self.root.clone());
        Ok(Snapshot {
            source: self.source.clone(),
            repo: named.display().to_string(),
            revision: None,
            origin: Origin::Local { root: named },
            catalog_path: self.catalog_path.clone(),
            files: Arc::new(DirTree { root }),
        })
    }
}

struct DirTree {
    root: PathBuf,
}

impl FileTree for DirTree {
    fn read(&self, path: &str, max_bytes: usize) -> Result<Option<Vec<u8>>, TreeError> {
        if path.split('/').any(|segment| segment == ".git") {
            return Err(TreeError::GitMetadata { path: path.to_owned() });
        }
        let joined = self.root.join(path);
        let resolved = match joined.canonicalize() {
            Ok(resolved) => resolved,
            // A file that is missing only because the whole directory vanished (git-sync swapped
            // its worktree mid-walk) is not evidence that the file is gone.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.root.is_dir() => return Ok(None),
            Err(e) => return Err(TreeError::Read { path: path.to_owned(), message: e.to_string() }),
        };
        if !resolved.starts_with(&self.root) {
            return Err(TreeError::Escapes { path: path.to_owned() });
        }
        let Ok(metadata) = resolved.metadata() else { return Ok(None) };
        if !metadata.is_file() {
            return Ok(None);
        }
        check_size(path, metadata.len(), max_bytes)?;
        read_file(&resolved, path).map(Some)
    }

    fn stat(&self, path: &str, max_bytes: usize) -> Result<Option<crate::source::FileStat>, TreeError> {
        use std::os::unix::fs::PermissionsExt;
        let Some(content) = self.read(path, max_bytes)? else { return Ok(None) };
        let executable = self.root.join(path).metadata().is_ok_and(|m| m.permissions().mode() & 0o111 != 0);
        Ok(Some(crate::source::FileStat::of(&content, executable)))
    }

    fn list(&self) -> Result<Vec<String>, TreeError> {
        let mut out = Vec::new();
        self.walk(&self.root, &mut out)?;
        out.sort();
        Ok(out)
    }
}

impl DirTree {
    fn walk(&self, dir: &Path, out: &mut Vec<String>) -> Result<(), TreeError> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| TreeError::Read { path: dir.display().to_string(), message: e.to_string() })?;
        for entry in entries.flatten() {
            let path = entry.path();
            // Links are not walked into: a link to / would make listing unbounded.
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() {
                // A checkout's git metadata is not part of the catalog tree.
                if entry.file_name() != ".git" {
                    self.walk(&path, out)?;
                }
            } else if kind.is_file() {
                if let Ok(relative) = path.strip_prefix(&self.root) {
                    out.push(relative.to_string_lossy().into_owned());
                }
            }
        }
        Ok(())
    }
}

fn read_file(resolved: &Path, path: &str) -> Result<Vec<u8>, TreeError> {
    std::fs::read(resolved).map_err(|e| TreeError::Read { path: path.to_owned(), message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_keep_the_configured_name_when_the_directory_is_a_swapped_link() {
        let dir = tempfile::tempdir().unwrap();
        for worktree in ["rev-1", "rev-2"] {
            std::fs::create_dir(dir.path().join(worktree)).unwrap();
        }
        let link = dir.path().join("current");
        std::os::unix::fs::symlink(dir.path().join("rev-1"), &link).unwrap();
        let local = LocalDir { source: "demo".into(), root: link.clone(), catalog_path: "catalog-info.yaml".into() };
        let before = local.snapshot().unwrap().origin;
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(dir.path().join("rev-2"), &link).unwrap();
        assert_eq!(local.snapshot().unwrap().origin, before);
        assert_eq!(before, Origin::Local { root: link });
    }

    #[test]
    fn reads_files_and_refuses_symlinks_that_leave_the_directory() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.yaml"), "x").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("catalog-info.yaml"), "a: 1").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.yaml"), dir.path().join("link.yaml")).unwrap();
        let local =
            LocalDir { source: "demo".into(), root: dir.path().into(), catalog_path: "catalog-info.yaml".into() };
        let snapshot = local.snapshot().unwrap();
        assert_eq!(snapshot.files.read("catalog-info.yaml", 100).unwrap().unwrap(), b"a: 1");
        assert!(snapshot.files.read("missing.yaml", 100).unwrap().is_none());
        assert!(matches!(snapshot.files.read("link.yaml", 100), Err(TreeError::Escapes { .. })));
        assert!(matches!(snapshot.files.read("catalog-info.yaml", 2), Err(TreeError::TooLarge { .. })));
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        std::fs::write(dir.path().join(".git/config"), "token").unwrap();
        assert!(matches!(snapshot.files.read(".git/config", 100), Err(TreeError::GitMetadata { .. })));
    }
}
