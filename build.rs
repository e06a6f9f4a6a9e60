//! Names the commit the binary is built from, for `rigger_build_info`: `RIGGER_COMMIT` when the
//! build sets it (a container build without `.git`), else git's `HEAD`, else `unknown`.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=RIGGER_COMMIT");
    // Only paths that exist: a missing one would make cargo run this script on every build. In
    // a worktree `.git` is a file; git says where the repository's own files are.
    if let Some(git_dir) = git(&["rev-parse", "--git-dir"]) {
        let common = git(&["rev-parse", "--git-common-dir"]).unwrap_or_else(|| git_dir.clone());
        let watched = [
            Path::new(&git_dir).join("HEAD"),
            Path::new(&common).join("refs/heads"),
            Path::new(&common).join("packed-refs"),
        ];
        for path in watched.iter().filter(|p| p.exists()) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    let commit =
        std::env::var("RIGGER_COMMIT").ok().filter(|c| !c.is_empty()).or_else(head).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=RIGGER_BUILD_COMMIT={commit}");
}

fn head() -> Option<String> {
    git(&["rev-parse", "--short=12", "HEAD"])
}

/// What `git ARGS` prints, trimmed, when it succeeds.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !text.is_empty()).then_some(text)
}
