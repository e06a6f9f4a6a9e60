//! Commit statuses on GitHub for the commits an organisation's repositories sync, against the
//! fake GitHub API (real git repositories served over HTTP): `pending` when a commit is picked
//! up, then `success` with the entity count or `failure` naming the first file and line in
//! error, each linking to the repository's page on the status page; once per commit and state,
//! across restarts.

use std::time::Instant;

use serde_json::Value;

use crate::support::component;
use crate::support::db::TestDb;
use crate::support::fake_github::{repo, FakeGithub};
use crate::support::git::TestRepo;
use crate::support::http_git::GitHttpServer;
use crate::support::rigger::{free_port, write_config, Daemon, DEADLINE};

/// The second document, starting on line 6 (its `---`), has no owner.
const BROKEN: &str = "apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: billing
spec: { type: service, lifecycle: production, owner: team-a }
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: { name: invoices }
spec: { type: service, lifecycle: production }
";

/// `(repository, sha, state, description, target_url)` of each `rigger/catalog` status posted
/// so far.
fn posted(github: &FakeGithub) -> Vec<(String, String, String, String, String)> {
    posted_in(github, "rigger/catalog")
}

fn posted_in(github: &FakeGithub, context: &str) -> Vec<(String, String, String, String, String)> {
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    github.with(|w| {
        w.commit_statuses
            .iter()
            .filter(|(_, _, body)| body["context"] == context)
            .map(|(repo, sha, body)| {
                (repo.clone(), sha.clone(), text(body, "state"), text(body, "description"), text(body, "target_url"))
            })
            .collect()
    })
}

/// Waits until `done` holds for what the fake GitHub recorded.
async fn until(github: &FakeGithub, what: &str, done: impl Fn(&[(String, String, String, String, String)]) -> bool) {
    let started = Instant::now();
    while !done(&posted(github)) {
        assert!(started.elapsed() < DEADLINE, "{what}: {:#?}", posted(github));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_commit_gets_its_verdict_once_linking_to_the_status_page() {
    let dir = tempfile::tempdir().unwrap();
    let github = FakeGithub::start().await;
    let git = GitHttpServer::start(dir.path().to_owned(), None).await;
    let pay = TestRepo::new(dir.path(), "pay");
    let pay_v1 = pay.commit("one", &[("catalog-info.yaml", Some(&component("pay", "v1")))]);
    let billing = TestRepo::new(dir.path(), "billing");
    let billing_v1 = billing.commit("one", &[("catalog-info.yaml", Some(BROKEN))]);
    for name in ["pay", "billing"] {
        github.with(|w| w.repos.insert(name.to_owned(), repo(name, &git.url(&format!("{name}.git")))));
    }
    github.with(|w| w.token = Some("ghp_test".into()));
    std::fs::write(dir.path().join("token"), "ghp_test\n").unwrap();
    let db = TestDb::sqlite(dir.path());
    let port = free_port();
    let sources = format!(
        "  - name: acme\n    interval: 1s\n    github:\n      org: acme\n      api_url: {}\n      token: {{ file: token }}\n",
        github.base
    );
    let config = write_config(dir.path(), &db.url, &format!("127.0.0.1:{port}"), &sources);
    let text =
        std::fs::read_to_string(&config).unwrap() + "commit_statuses:\n  page_url: https://status.example.com/rigger\n";
    std::fs::write(&config, text).unwrap();

    let mut daemon = Daemon::start(&config, port);
    daemon.wait_for("/readyz", 200).await;
    until(&github, "both verdicts", |p| p.iter().filter(|s| s.2 != "pending").count() == 2).await;
    let statuses = posted(&github);
    let of = |repo: &str| statuses.iter().filter(|s| s.0 == repo).cloned().collect::<Vec<_>>();
    let pay_page = "https://status.example.com/rigger/sources/acme/pay".to_owned();
    assert_eq!(
        of("acme/pay"),
        [
            (
                "acme/pay".into(),
                pay_v1.clone(),
                "pending".into(),
                "Rigger is syncing this commit into the catalog".into(),
                pay_page.clone()
            ),
            ("acme/pay".into(), pay_v1.clone(), "success".into(), "1 entity synced".into(), pay_page.clone()),
        ]
    );
    let billing_statuses = of("acme/billing");
    assert_eq!(billing_statuses.len(), 2, "{billing_statuses:#?}");
    let (_, sha, state, description, target) = &billing_statuses[1];
    assert_eq!((sha, state.as_str()), (&billing_v1, "failure"));
    assert!(description.starts_with("catalog-info.yaml:6: "), "the first file and line: {description}");
    assert!(description.contains("owner"), "the problem: {description}");
    assert_eq!(target, "https://status.example.com/rigger/sources/acme/billing");

    // Passes that find the same commits post nothing again, in this process or the next.
    let metrics = daemon.get_text("/metrics").await;
    assert!(
        metrics.contains(
            "rigger_commit_statuses_total{context=\"rigger/catalog\",outcome=\"posted\",state=\"success\"} 1"
        ),
        "{metrics}"
    );
    assert_eq!(daemon.terminate().code(), Some(0));
    let mut daemon = Daemon::start(&config, port);
    daemon.wait_for("/readyz", 200).await;
    let started = Instant::now();
    loop {
        let metrics = daemon.get_text("/metrics").await;
        // Both verdicts were found claimed in the store, not posted again.
        if metrics.contains("outcome=\"duplicate\",state=\"success\"} 1")
            && metrics.contains("outcome=\"duplicate\",state=\"failure\"} 1")
        {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "no duplicate check after the restart: {metrics}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(posted(&github).len(), 4, "nothing posted twice: {:#?}", posted(&github));

    // A new commit gets its own statuses.
    let pay_v2 = pay.commit("two", &[("catalog-info.yaml", Some(&component("pay", "v2")))]);
    until(&github, "the new commit's verdict", |p| p.iter().any(|s| s.1 == pay_v2 && s.2 == "success")).await;
    let states: Vec<String> = posted(&github).into_iter().filter(|s| s.1 == pay_v2).map(|s| s.2).collect();
    assert_eq!(states, ["pending", "success"]);
    assert_eq!(daemon.terminate().code(), Some(0));
}

/// A git source on a GitHub Enterprise host (`commit_statuses.api_urls`) whose entities declare
/// cluster objects: `rigger/cluster` names the tenancy refusal; the sibling entity still applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_context_names_what_the_tenancy_guard_refused() {
    let dir = tempfile::tempdir().unwrap();
    let github = FakeGithub::start().await;
    let fake = rigger::testkit::FakeApiServer::start().await.expect("fake API server");
    let git = GitHttpServer::start(dir.path().to_owned(), None).await;
    let entity = |name: &str| {
        format!("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  annotations:\n    rigger.dev/manifests: ./{name}.yaml\nspec: {{ type: service, lifecycle: production, owner: team-a }}\n")
    };
    let greedy =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: greedy, namespace: kube-system }\ndata: { k: v }\n";
    let modest = "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: modest }\ndata: { k: v }\n";
    let repo = TestRepo::new(&dir.path().join("acme"), "tenants");
    let sha = repo.commit(
        "tenants",
        &[
            ("catalog-info.yaml", Some(&format!("{}---\n{}", entity("greedy"), entity("modest")))),
            ("greedy.yaml", Some(greedy)),
            ("modest.yaml", Some(modest)),
        ],
    );
    github.with(|w| w.token = Some("ghp_test".into()));
    std::fs::write(dir.path().join("token"), "ghp_test\n").unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    fake.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let db = TestDb::sqlite(dir.path());
    let port = free_port();
    let url = git.url("acme/tenants.git");
    let sources = format!(
        "  - name: tenants\n    interval: 1h\n    git: {{ url: '{url}', token: {{ file: token }} }}\n    tenancy: {{ namespaces: [default] }}\n"
    );
    let config = write_config(dir.path(), &db.url, &format!("127.0.0.1:{port}"), &sources);
    let host = url.trim_start_matches("http://").split('/').next().unwrap().to_owned();
    let text = std::fs::read_to_string(&config).unwrap()
        + &format!(
            "kubernetes:\n  kubeconfig: {}\n  timeout: 2s\ncommit_statuses:\n  page_url: https://status.example.com/\n  api_urls: {{ '{host}': '{}' }}\n",
            kubeconfig.display(),
            github.base
        );
    std::fs::write(&config, text).unwrap();
    let mut daemon = Daemon::start(&config, port);
    daemon.wait_for("/readyz", 200).await;
    let started = Instant::now();
    while posted_in(&github, "rigger/cluster").is_empty() {
        assert!(
            started.elapsed() < DEADLINE,
            "no rigger/cluster status: {:#?}",
            github.with(|w| w.commit_statuses.clone())
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let cluster = posted_in(&github, "rigger/cluster");
    let (repository, commit, state, description, target) = &cluster[0];
    assert_eq!((repository.as_str(), commit, state.as_str()), ("acme/tenants", &sha, "failure"), "{cluster:#?}");
    assert!(description.contains("greedy") && description.contains("kube-system"), "the refusal: {description}");
    assert_eq!(target, "https://status.example.com/sources/tenants");
    assert!(fake.get("v1", "ConfigMap", Some("default"), "modest").is_some(), "the sibling still applies");
    assert_eq!(daemon.terminate().code(), Some(0));
}

/// GitHub down: the sync goes on regardless, the status is retried with backoff, counted as
/// failed, and posted by a later pass once GitHub answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_being_down_delays_no_sync_and_the_status_lands_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let github = FakeGithub::start().await;
    let git = GitHttpServer::start(dir.path().to_owned(), None).await;
    let pay = TestRepo::new(dir.path(), "pay");
    let sha = pay.commit("one", &[("catalog-info.yaml", Some(&component("pay", "v1")))]);
    github.with(|w| {
        w.repos.insert("pay".to_owned(), repo("pay", &git.url("pay.git")));
        w.statuses_outage = Some(502);
    });
    let db = TestDb::sqlite(dir.path());
    let port = free_port();
    std::fs::write(dir.path().join("token"), "ghp_test\n").unwrap();
    let sources = format!(
        "  - name: acme\n    interval: 1s\n    github:\n      org: acme\n      api_url: {}\n      token: {{ file: token }}\n",
        github.base
    );
    let config = write_config(dir.path(), &db.url, &format!("127.0.0.1:{port}"), &sources);
    let text =
        std::fs::read_to_string(&config).unwrap() + "commit_statuses:\n  page_url: https://status.example.com/\n";
    std::fs::write(&config, text).unwrap();
    let mut daemon = Daemon::start(&config, port);
    daemon.wait_for("/readyz", 200).await;
    let (status, _) = daemon.get_json("/api/catalog/entities/by-name/component/default/pay").await;
    assert_eq!(status, 200, "the catalog synced while GitHub refused every status");
    let started = Instant::now();
    while !daemon.get_text("/metrics").await.contains("outcome=\"failed\",state=\"success\"} 1") {
        assert!(started.elapsed() < DEADLINE, "{}", daemon.get_text("/metrics").await);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let attempts = github.statuses("/repos/acme/pay/statuses").len();
    assert!(attempts > 2, "retried with backoff before giving up: {attempts} attempts");
    github.with(|w| w.statuses_outage = None);
    until(&github, "the status once GitHub answers", |p| p.iter().any(|s| s.1 == sha && s.2 == "success")).await;
    assert_eq!(daemon.terminate().code(), Some(0));
}
