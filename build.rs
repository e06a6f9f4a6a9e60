//! Names the commit the binary is built from, for `rigger_build_info`: `RIGGER_COMMIT` when the
//! build sets it (a container build without `.git`), else git's `HEAD`, else `unknown`.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=RIGGER_COMMIT");
    // Only paths that exist: a missing one would make cargo run this script on every build.
    for path in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let commit =
        std::env::var("RIGGER_COMMIT").ok().filter(|c| !c.is_empty()).or_else(head).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=RIGGER_BUILD_COMMIT={commit}");
}

fn head() -> Option<String> {
    let output = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok()?;
    let commit = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !commit.is_empty()).then_some(commit)
}
