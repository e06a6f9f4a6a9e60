//! Sources know repositories and revisions, nothing about Backstage: they produce a
//! [`Snapshot`] — the files of one repository at one commit — for the catalog to read.

pub mod git;
pub mod github;
pub mod local;
pub mod remote;
mod snapshot;
pub mod watch;

pub use snapshot::{check_size, normalise, FileStat, FileTree, MemoryTree, Origin, Snapshot, TreeError};
