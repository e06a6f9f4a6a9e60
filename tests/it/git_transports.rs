//! The git source against real repositories over `file://`, smart HTTP (`git http-backend`, with
//! and without basic auth) and ssh (a stand-in `ssh` program that runs the remote command
//! locally, which is exactly what sshd would do after authentication).

use std::path::Path;
use std::sync::atomic::AtomicBool;

use rigger::config::Secret;
use rigger::source::git::{GitError, GitRemote, Tip};

use crate::support::git::TestRepo;
use crate::support::http_git::GitHttpServer;
use crate::support::rigger::{stdout, write_config};
use crate::support::{as_files, component, full_catalog, ROOT_CATALOG};

fn remote(url: String, branch: Option<&str>, token: Option<&str>) -> GitRemote {
    GitRemote {
        source: "platform".into(),
        url,
        branch: branch.map(str::to_owned),
        catalog_path: "catalog-info.yaml".into(),
        token: token.map(Secret::from_config),
    }
}

async fn fetch(remote: &GitRemote, cache: &Path, last: Option<&str>) -> Result<Tip, GitError> {
    let (remote, cache, last) = (remote.clone(), cache.to_owned(), last.map(str::to_owned));
    tokio::task::spawn_blocking(move || remote.fetch(&cache, last.as_deref(), &AtomicBool::new(false)))
        .await
        .expect("fetch task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_fetch_checks_the_remote_ref_before_fetching() {
    let root = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let repo = TestRepo::new(root.path(), "platform");
    let first = repo.commit("one", &[("catalog-info.yaml", Some(ROOT_CATALOG))]);
    let server = GitHttpServer::start(root.path().to_owned(), None).await;
    let remote = remote(server.url("platform.git"), None, None);

    let tip = fetch(&remote, cache.path(), None).await.unwrap();
    assert_eq!(
        tip,
        Tip { commit: first.clone(), branch: "main".into(), fetched: true, rebuilt: false },
        "HEAD resolves to main"
    );
    let snapshot = remote.snapshot(cache.path(), &tip).unwrap();
    assert_eq!(snapshot.files.read("catalog-info.yaml", 1 << 20).unwrap().unwrap(), ROOT_CATALOG.as_bytes());
    assert!(snapshot.files.read("missing.yaml", 1 << 20).unwrap().is_none());

    let packs = |server: &GitHttpServer| {
        server
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.starts_with("POST") && r.ends_with("/git-upload-pack"))
            .count()
    };
    assert!(
        packs(&server) >= 2,
        "the first fetch listed refs and fetched a pack: {:?}",
        server.requests.lock().unwrap()
    );
    let before = (packs(&server), server.requests.lock().unwrap().len());
    let again = fetch(&remote, cache.path(), Some(&first)).await.unwrap();
    assert!(!again.fetched, "an unmoved ref costs no fetch");
    let requests = server.requests.lock().unwrap().clone();
    let ref_checks = &requests[before.1..];
    // Protocol v2 lists refs with one upload-pack POST (ls-refs); a fetch would need a second one.
    assert!(packs(&server) - before.0 <= 1, "only the ref advertisement was requested: {ref_checks:?}");

    let second = repo.commit("two", &[("services/a/catalog-info.yaml", Some(&component("a", "A")))]);
    let moved = fetch(&remote, cache.path(), Some(&first)).await.unwrap();
    assert_eq!((moved.commit.as_str(), moved.fetched), (second.as_str(), true));
    let snapshot = remote.snapshot(cache.path(), &moved).unwrap();
    assert!(snapshot.files.read("services/a/catalog-info.yaml", 1 << 20).unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_is_never_sent_over_plain_http() {
    let root = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let repo = TestRepo::new(root.path(), "private");
    repo.commit("one", &[("catalog-info.yaml", Some(ROOT_CATALOG))]);
    let server = GitHttpServer::start(root.path().to_owned(), Some(("x-access-token", "s3cret"))).await;
    let anonymous = fetch(&remote(server.url("private.git"), Some("main"), None), cache.path(), None).await;
    assert!(matches!(anonymous, Err(GitError::FetchRemote { .. })), "{anonymous:?}");
    let refused = fetch(&remote(server.url("private.git"), Some("main"), Some("s3cret")), cache.path(), None).await;
    let message = refused.unwrap_err().to_string();
    assert!(message.contains("clear text"), "gix refuses to send credentials over http: {message}");
    assert!(!message.contains("s3cret"), "the token must not appear in errors");
}

/// Token auth for HTTPS from an env var, end to end through the binary: the server demands
/// basic auth (as GitHub does for private repositories) and trusts only our throw-away CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_token_from_env_authenticates() {
    let root = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let repo = TestRepo::new(root.path(), "private");
    let commit = repo.commit("one", &as_files(&full_catalog()));
    let server = GitHttpServer::start_tls(root.path().to_owned(), Some(("x-access-token", "s3cret")), dir.path()).await;
    let sources = format!(
        "  - name: private\n    git:\n      url: {}\n      branch: main\n      token: {{ env: PRIVATE_REPO_TOKEN }}\n",
        server.url("private.git")
    );
    let db = format!("sqlite://{}/rigger.db", dir.path().display());
    let config = write_config(dir.path(), &db, "127.0.0.1:0", &sources);
    let sync = |token: &str| {
        let mut command = crate::support::rigger::rigger();
        command.env("SSL_CERT_FILE", server.ca_file.as_ref().unwrap()).env("PRIVATE_REPO_TOKEN", token);
        command.arg("--config").arg(&config).args(["sync", "--once"]);
        tokio::task::spawn_blocking(move || command.output().unwrap())
    };
    let wrong = sync("tok-NOT-RIGHT-123").await.unwrap();
    let (out, err) = (stdout(&wrong), String::from_utf8_lossy(&wrong.stderr).into_owned());
    assert_eq!(wrong.status.code(), Some(1), "{out}{err}");
    assert!(!out.contains("tok-NOT-RIGHT-123") && !err.contains("tok-NOT-RIGHT-123"), "secrets never reach output");
    let right = sync("s3cret").await.unwrap();
    assert!(right.status.success(), "{}{}", stdout(&right), String::from_utf8_lossy(&right.stderr));
    assert!(stdout(&right).contains(&format!("private: synced {commit}: 5 added")), "{}", stdout(&right));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_branch_is_a_permanent_error() {
    let root = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let repo = TestRepo::new(root.path(), "platform");
    repo.commit("one", &[("catalog-info.yaml", Some(ROOT_CATALOG))]);
    let err = fetch(&remote(repo.file_url(), Some("release"), None), cache.path(), None).await.unwrap_err();
    assert!(matches!(err, GitError::MissingBranch { .. }), "{err}");
    assert!(!err.is_transient());
}

/// Stands in for OpenSSH: answers the `-G` capability probe, ignores options and host, and runs
/// the remote command (`git-upload-pack '<path>'`, all words after the host, joined as ssh joins
/// them) locally, as sshd would after authentication.
const FAKE_SSH: &str = r#"#!/bin/sh
[ "$1" = "-G" ] && exit 0
while [ $# -gt 0 ]; do
  case "$1" in
    -o|-p|-i|-l) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
shift
exec sh -c "$*"
"#;

#[test]
fn ssh_remote_syncs_through_the_ssh_program() {
    let dir = tempfile::tempdir().unwrap();
    let repo = TestRepo::new(dir.path(), "platform");
    let commit = repo.commit("one", &as_files(&full_catalog()));
    let fake_ssh = dir.path().join("fake-ssh");
    std::fs::write(&fake_ssh, FAKE_SSH).unwrap();
    std::fs::set_permissions(&fake_ssh, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let url = format!("ssh://git@git.example.com{}", repo.bare.display());
    let sources = format!("  - name: platform\n    git:\n      url: {url}\n      branch: main\n");
    let db = format!("sqlite://{}/rigger.db", dir.path().display());
    let config = write_config(dir.path(), &db, "127.0.0.1:0", &sources);
    let out = crate::support::rigger::rigger()
        .env("GIT_SSH_COMMAND", &fake_ssh)
        .arg("--config")
        .arg(&config)
        .args(["sync", "--once"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&out).contains(&format!("platform: synced {commit}: 5 added")), "{}", stdout(&out));
}
