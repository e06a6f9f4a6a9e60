//! Real git repositories made with the `git` CLI: a bare "remote" and a work tree that pushes to it.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct TestRepo {
    pub bare: PathBuf,
    work: PathBuf,
}

/// Runs git with a fixed identity and no user or system config, so the host cannot interfere.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(["-c", "user.name=Rigger Test", "-c", "user.email=test@rigger.dev", "-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git runs");
    assert!(output.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

impl TestRepo {
    /// A bare repository `<root>/<name>.git` with one work tree on branch `main`.
    pub fn new(root: &Path, name: &str) -> Self {
        let bare = root.join(format!("{name}.git"));
        let work = root.join(format!("{name}-work"));
        std::fs::create_dir_all(&bare).expect("bare dir");
        std::fs::create_dir_all(&work).expect("work dir");
        git(&bare, &["init", "--bare", "--quiet"]);
        git(&work, &["init", "--quiet"]);
        git(&work, &["remote", "add", "origin", bare.to_str().expect("utf-8 path")]);
        Self { bare, work }
    }

    /// Writes (or, with `None`, deletes) files, commits, pushes to `main`; returns the commit id.
    pub fn commit(&self, message: &str, files: &[(&str, Option<&str>)]) -> String {
        for (path, content) in files {
            let full = self.work.join(path);
            match content {
                Some(content) => {
                    std::fs::create_dir_all(full.parent().expect("parent")).expect("dirs");
                    std::fs::write(&full, content).expect("write file");
                }
                None => std::fs::remove_file(&full).expect("remove file"),
            }
        }
        git(&self.work, &["add", "-A"]);
        git(&self.work, &["commit", "--quiet", "--allow-empty", "-m", message]);
        git(&self.work, &["push", "--quiet", "origin", "HEAD:main"]);
        git(&self.work, &["rev-parse", "HEAD"])
    }

    pub fn file_url(&self) -> String {
        format!("file://{}", self.bare.display())
    }
}

impl TestRepo {
    /// Adds a symbolic link to the work tree (committed by the next `commit`).
    pub fn symlink(&self, path: &str, target: &str) {
        std::os::unix::fs::symlink(target, self.work.join(path)).expect("symlink");
    }
}

/// A git remote that accepts connections and never answers: a source pointing at it stays in
/// its fetch until the returned task is aborted (which closes every connection it holds).
/// Returns the URL of a repository on it.
pub async fn silent_remote() -> (String, tokio::task::JoinHandle<()>) {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let remote = silent.local_addr().unwrap();
    let holding = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = silent.accept().await {
            held.push(connection);
        }
    });
    (format!("http://{remote}/stuck.git"), holding)
}
