//! GitHub organisation discovery against a fake GitHub API and real git repositories: paging,
//! filters, rate limits, conditional requests, and removal only on positive evidence.

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use crate::support::component;
use crate::support::db::TestDb;
use crate::support::fake_github::{repo, FakeGithub};
use crate::support::git::TestRepo;
use crate::support::http_git::GitHttpServer;
use crate::support::rigger::{free_port, run, stdout, write_config, Daemon, DEADLINE};

struct Org {
    dir: tempfile::TempDir,
    github: FakeGithub,
    db: TestDb,
    repos: Vec<TestRepo>,
    /// Serves the repositories over HTTP (`git http-backend`), as GitHub would.
    git: GitHttpServer,
}

/// An org with `pay` and `billing` (synced), `old` (archived) and `forked` (a fork).
async fn org() -> Org {
    let dir = tempfile::tempdir().unwrap();
    let github = FakeGithub::start().await;
    let git = GitHttpServer::start(dir.path().to_owned(), None).await;
    let mut repos = Vec::new();
    for (name, archived, fork) in
        [("pay", false, false), ("billing", false, false), ("old", true, false), ("forked", false, true)]
    {
        let repository = TestRepo::new(dir.path(), name);
        repository.commit("one", &[("catalog-info.yaml", Some(&component(name, "v1")))]);
        let mut listed = repo(name, &git.url(&format!("{name}.git")));
        listed["archived"] = json!(archived);
        listed["fork"] = json!(fork);
        github.with(|w| w.repos.insert(name.to_owned(), listed));
        repos.push(repository);
    }
    let db = TestDb::sqlite(dir.path());
    Org { dir, github, db, repos, git }
}

fn org_source(github: &FakeGithub, interval: &str) -> String {
    format!("  - name: acme\n    interval: {interval}\n    github:\n      org: acme\n      api_url: {}\n", github.base)
}

async fn sync_once(org: &Org) -> (Option<i32>, String) {
    let config = write_config(org.dir.path(), &org.db.url, "127.0.0.1:0", &org_source(&org.github, "1h"));
    let out = tokio::task::spawn_blocking(move || run(&config, &["sync", "--once"])).await.unwrap();
    (out.status.code(), stdout(&out))
}

async fn names(org: &Org) -> Vec<String> {
    let store = rigger::store::Store::connect(&org.db.url).await.unwrap();
    let mut names = Vec::new();
    for name in ["pay", "billing", "old", "forked"] {
        if store.entity(&format!("component:default/{name}")).await.unwrap().is_some() {
            names.push(name.to_owned());
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organisation_is_paged_filtered_and_rate_limits_are_waited_out() {
    let org = org().await;
    org.github.with(|w| {
        w.secondary_limit_once = true;
        w.token = Some("ghp_test".into());
    });
    std::fs::write(org.dir.path().join("token"), "ghp_test\n").unwrap();
    let source = format!("{}      token: {{ file: token }}\n", org_source(&org.github, "1h"));
    let config = write_config(org.dir.path(), &org.db.url, "127.0.0.1:0", &source);
    let out = tokio::task::spawn_blocking(move || run(&config, &["sync", "--once"])).await.unwrap();
    let (code, out) = (out.status.code(), stdout(&out));
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(names(&org).await, ["pay", "billing"], "archived repositories and forks are left out");
    assert_eq!(org.github.statuses("/orgs/acme/repos?page=1"), [403, 200], "secondary limit waited out, then retried");
    assert_eq!(org.github.statuses("/orgs/acme/repos?page=2"), [200], "the Link header led to page 2");
    assert!(out.contains("acme: synced working tree: 2 added"), "{out}");
    let store = rigger::store::Store::connect(&org.db.url).await.unwrap();
    let sources = store.source_names_with_prefix("acme/").await.unwrap();
    assert_eq!(sources, ["acme/billing", "acme/pay"], "each repository is its own source");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repositories_leave_the_catalog_only_on_positive_evidence() {
    let org = org().await;
    assert_eq!(sync_once(&org).await.0, Some(0));
    assert_eq!(names(&org).await, ["pay", "billing"]);

    org.github.with(|w| w.outage = Some(502));
    let (code, out) = sync_once(&org).await;
    assert_eq!(code, Some(1), "an API outage fails the pass: {out}");
    assert_eq!(names(&org).await, ["pay", "billing"], "…and removes nothing");

    // Left the listing but the API still answers 200 for it (listing lag): kept.
    org.github.with(|w| {
        w.outage = None;
        let pay = w.repos.remove("pay").unwrap();
        w.hidden.insert("pay".into(), pay);
    });
    assert_eq!(sync_once(&org).await.0, Some(0));
    assert_eq!(names(&org).await, ["pay", "billing"]);

    // Deleted: 404 is positive evidence.
    org.github.with(|w| w.repos.remove("billing"));
    assert_eq!(sync_once(&org).await.0, Some(0));
    assert_eq!(names(&org).await, ["pay"]);

    // Renamed: the old name answers 301, the new one is listed with the same repository.
    org.github.with(|w| {
        w.hidden.clear();
        w.moved.push("pay".into());
        w.repos.insert("payments".into(), repo("payments", &org.git.url("pay.git")));
    });
    let (code, out) = sync_once(&org).await;
    assert_eq!(code, Some(0), "the new name takes the entity over without a conflict: {out}");
    assert_eq!(names(&org).await, ["pay"]);
    let store = rigger::store::Store::connect(&org.db.url).await.unwrap();
    let sources = store.source_names_with_prefix("acme/").await.unwrap();
    assert_eq!(sources, ["acme/payments"], "the old name was pruned (301), the new one synced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_organisation_costs_only_conditional_requests_and_pushes_reach_discovered_repositories() {
    let org = org().await;
    let port = free_port();
    let config =
        write_config(org.dir.path(), &org.db.url, &format!("127.0.0.1:{port}"), &org_source(&org.github, "1s"));
    std::fs::write(org.dir.path().join("secret"), "s").unwrap();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("webhooks:\n  github:\n    secret: { file: secret }\n");
    std::fs::write(&config, text).unwrap();
    let mut daemon = Daemon::start(&config, port);
    daemon.wait_for("/readyz", 200).await;

    let started = Instant::now();
    while org.github.statuses("/orgs/acme/repos?page=1").len() < 3 {
        assert!(started.elapsed() < DEADLINE, "discovery did not run again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pages = org.github.statuses("/orgs/acme/repos");
    assert_eq!(&pages[..2], [200, 200], "the first discovery reads both pages");
    assert!(pages[2..].iter().all(|s| *s == 304), "later ones are conditional and unchanged: {pages:?}");
    let metrics = daemon.get_text("/metrics").await;
    assert!(metrics.contains("rigger_github_rate_limit_remaining{source=\"acme\"} 4998"), "{metrics}");
    assert!(
        metrics.contains("rigger_queue_requests_total{reason=\"discovery\"}"),
        "the daemon's discovery queues each repository as its own entry:\n{metrics}"
    );

    org.repos[0].commit("two", &[("catalog-info.yaml", Some(&component("pay", "v2")))]);
    let body = serde_json::to_vec(&json!({"ref": "refs/heads/main",
        "repository": {"full_name": "acme/pay", "default_branch": "main", "clone_url": org.git.url("pay.git")}}))
    .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(b"s").unwrap();
    mac.update(&body);
    let response = reqwest::Client::new()
        .post(format!("{}/webhooks/github", daemon.base))
        .header("X-GitHub-Event", "push")
        .header("X-GitHub-Delivery", "d-1")
        .header("X-Hub-Signature-256", format!("sha256={}", hex::encode(mac.finalize().into_bytes())))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap(), json!({"queued": ["acme/pay"]}));
    let started = Instant::now();
    loop {
        let (_, pay) = daemon.get_json("/api/catalog/entities/by-name/component/default/pay").await;
        if pay["metadata"]["description"] == "v2" {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "push to a discovered repository not synced: {pay}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(daemon.terminate().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_repositories_cost_fifty_requests_then_fifty_free_ones_within_the_budget() {
    let github = FakeGithub::start().await;
    github.with(|w| {
        w.page_size = 100;
        for i in 0..5000 {
            let name = format!("repo-{i:04}");
            w.repos.insert(name.clone(), repo(&name, "file:///nowhere.git"));
        }
        // Only 30 requests left in this window, which turns over in two seconds.
        w.remaining = 30;
        w.reset_at = crate::support::fake_github::now() + 2;
    });
    let client =
        rigger::source::github::GithubClient::new(&github.base, rigger::source::github::Auth::Anonymous).unwrap();
    assert_eq!(client.org_repos("acme").await.unwrap().len(), 5000);
    let first = github.statuses("/orgs/acme/repos");
    assert_eq!(first.len(), 50, "100 per page");
    assert!(first.iter().all(|s| *s == 200), "waited for the reset instead of running into 403s: {first:?}");

    assert_eq!(client.org_repos("acme").await.unwrap().len(), 5000);
    let second = &github.statuses("/orgs/acme/repos")[50..];
    assert_eq!(second.len(), 50);
    assert!(second.iter().all(|s| *s == 304), "an unchanged org answers 304 page by page: {second:?}");
    assert_eq!(client.budget().remaining, Some(5000 - 20), "304s cost nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_app_installation_discovers_with_its_installation_token() {
    let org = org().await;
    org.github.with(|w| w.app_id = Some(1234));
    let key = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/fixtures/github-app-test-key.pem");
    let source = format!(
        "{}      app:\n        app_id: 1234\n        installation_id: 42\n        private_key: {{ file: {key} }}\n",
        org_source(&org.github, "1h")
    );
    let config = write_config(org.dir.path(), &org.db.url, "127.0.0.1:0", &source);
    let out = tokio::task::spawn_blocking(move || run(&config, &["sync", "--once"])).await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(names(&org).await, ["pay", "billing"]);
    assert_eq!(org.github.statuses("/app/installations/42/access_tokens")[0], 201, "the App's JWT was accepted");
    assert!(org.github.statuses("/orgs/acme/repos").iter().all(|s| *s == 200), "listed with the installation token");

    // Without the App's key, the API refuses: discovery fails and removes nothing.
    org.github.with(|w| w.app_id = Some(999));
    let config = org.dir.path().join("rigger.yaml");
    let out = tokio::task::spawn_blocking(move || run(&config, &["sync", "--once"])).await.unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(names(&org).await, ["pay", "billing"]);
}
