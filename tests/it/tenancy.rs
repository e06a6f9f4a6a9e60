//! Tenancy in a shared cluster, against the fake API server: ownership of an object is global
//! (one entity, whatever its source), and where a source may write comes from configuration the
//! platform team controls, never from the repository. One test per row of the threat table in
//! `docs/security.md`.

use std::path::{Path, PathBuf};

use rigger::store::Store;
use rigger::testkit::FakeApiServer;
use serde_json::Value;

use crate::support::db::TestDb;
use crate::support::git::TestRepo;
use crate::support::rigger::{free_port, rigger, stdout, write_config, Daemon};

/// A component whose cluster objects are in `./deploy.yaml`; `namespace` is its catalog namespace.
fn component(name: &str, namespace: Option<&str>) -> String {
    let namespace = namespace.map(|n| format!("  namespace: {n}\n")).unwrap_or_default();
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n{namespace}  annotations:\n    rigger.dev/manifests: ./deploy.yaml\nspec: {{ type: service, lifecycle: production, owner: team-a }}\n"
    )
}

fn config_map(name: &str, namespace: Option<&str>, value: &str) -> String {
    let namespace = namespace.map(|n| format!("  namespace: {n}\n")).unwrap_or_default();
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n{namespace}data: {{ value: {value} }}\n")
}

/// A repository holding one component and its manifests.
fn repository(root: &Path, name: &str, entity: &str, manifests: &str) -> TestRepo {
    let repo = TestRepo::new(root, name);
    repo.commit("initial", &[("catalog-info.yaml", Some(entity)), ("deploy.yaml", Some(manifests))]);
    repo
}

/// A git source for `repo` with the given `tenancy:` block (indented under the source).
fn git_source(name: &str, repo: &TestRepo, tenancy: &str) -> String {
    format!("  - name: {name}\n    interval: 1h\n    git: {{ url: '{}' }}\n{tenancy}", repo.file_url())
}

/// A config reconciling `sources` into `fake`.
fn config(dir: &Path, db: &TestDb, listen: &str, fake: &FakeApiServer, sources: &str) -> PathBuf {
    let kubeconfig = dir.join("kubeconfig");
    fake.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let path = write_config(dir, &db.url, listen, sources);
    let text = std::fs::read_to_string(&path).expect("config");
    let kubernetes = format!("kubernetes:\n  kubeconfig: {}\n  timeout: 2s\n  ingest: false\n", kubeconfig.display());
    std::fs::write(&path, text + &kubernetes).expect("config");
    path
}

/// `rigger <args>` on a blocking thread (the in-process fake keeps serving); exit code, stdout.
async fn rigger_cmd(config: &Path, args: &[&str]) -> (i32, String) {
    let (config, args): (PathBuf, Vec<String>) = (config.to_owned(), args.iter().map(|a| (*a).to_owned()).collect());
    let output = tokio::task::spawn_blocking(move || {
        rigger().arg("--config").arg(config).args(args).output().expect("rigger runs")
    })
    .await
    .expect("join");
    (output.status.code().unwrap_or(-1), stdout(&output) + &String::from_utf8_lossy(&output.stderr))
}

/// The entity's `status.items` as the API serves them.
async fn status_items(db: &TestDb, entity_ref: &str) -> Vec<Value> {
    let store = Store::connect(&db.url).await.expect("store");
    let entity = store.entity(entity_ref).await.expect("read").expect("the entity is in the catalog");
    store.close().await;
    entity.to_api()["status"]["items"].as_array().cloned().unwrap_or_default()
}

fn messages(items: &[Value], kind: &str) -> String {
    items.iter().filter(|i| i["type"] == kind).map(|i| i["message"].as_str().unwrap_or_default()).collect()
}

const GRANT_DEFAULT: &str = "    tenancy:\n      namespaces: { default: [default] }\n";

// The same object declared from two repositories ---------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_the_same_object_from_two_repositories_stays_with_the_first_until_it_lets_go() {
    let dir = tempfile::tempdir().expect("tempdir");
    two_repositories_one_object(&TestDb::sqlite(dir.path()), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_the_same_object_from_two_repositories_stays_with_the_first_until_it_lets_go() {
    let dir = tempfile::tempdir().expect("tempdir");
    two_repositories_one_object(&TestDb::postgres().await, dir.path()).await;
}

async fn two_repositories_one_object(db: &TestDb, dir: &Path) {
    let fake = FakeApiServer::start().await.expect("fake API server");
    let first = repository(dir, "first", &component("alpha", None), &config_map("shared", None, "from-alpha"));
    let second = repository(dir, "second", &component("beta", None), &config_map("own", None, "beta"));
    let sources = git_source("a", &first, GRANT_DEFAULT) + &git_source("b", &second, GRANT_DEFAULT);
    let port = free_port();
    let config = config(dir, db, &format!("127.0.0.1:{port}"), &fake, &sources);
    let (code, out) = rigger_cmd(&config, &["sync", "--once"]).await;
    assert_eq!(code, 0, "{out}");
    let shared = || fake.get("v1", "ConfigMap", Some("default"), "shared").expect("the shared ConfigMap");
    let uid = shared()["metadata"]["uid"].clone();

    // The second repository declares the same object: refused, on every pass, from either side.
    second.commit(
        "beta wants it too",
        &[(
            "deploy.yaml",
            Some(&format!("{}---\n{}", config_map("own", None, "beta"), config_map("shared", None, "from-beta"))),
        )],
    );
    for _ in 0..3 {
        let (code, out) = rigger_cmd(&config, &["sync", "--once"]).await;
        assert_eq!(code, 1, "a refused claim is an error: {out}");
        assert!(out.contains("component:default/alpha (source a) declares it and holds it"), "{out}");
        let now = shared();
        assert_eq!(now["data"]["value"], "from-alpha", "nothing changes hands");
        assert_eq!(now["metadata"]["annotations"]["rigger.dev/entity-ref"], "component:default/alpha");
        assert_eq!(now["metadata"]["uid"], uid);
    }
    let (_, plan) = rigger_cmd(&config, &["plan"]).await;
    assert!(plan.contains("declares it and holds it"), "rigger plan shows the refusal first: {plan}");
    let beta = status_items(db, "component:default/beta").await;
    assert!(
        messages(&beta, "rigger.dev/cluster").contains("component:default/alpha (source a) declares it"),
        "{beta:?}"
    );
    let alpha = status_items(db, "component:default/alpha").await;
    assert!(
        messages(&alpha, "rigger.dev/ownership")
            .contains("component:default/beta (source b) declares it too and was refused"),
        "the holder is told too: {alpha:?}"
    );
    let mut daemon = Daemon::start(&config, port);
    daemon.wait_for("/readyz", 200).await;
    let metrics = daemon.get_text("/metrics").await;
    assert!(metrics.contains("rigger_cluster_claims_refused{source=\"b\"} 1"), "{metrics}");
    assert!(metrics.contains("rigger_cluster_claims_refused{source=\"a\"} 0"), "{metrics}");
    assert!(daemon.terminate().success());

    // The first lets go: the object is handed over as it stands, never deleted in between.
    first.commit("alpha lets go", &[("deploy.yaml", Some(&config_map("alpha-own", None, "alpha")))]);
    let (code, out) = rigger_cmd(&config, &["sync", "--once"]).await;
    let (code, out) = if code == 0 { (code, out) } else { rigger_cmd(&config, &["sync", "--once"]).await };
    assert_eq!(code, 0, "{out}");
    let now = shared();
    assert_eq!(now["metadata"]["annotations"]["rigger.dev/entity-ref"], "component:default/beta", "handed over");
    assert_eq!(now["data"]["value"], "from-beta");
    assert_eq!(now["metadata"]["uid"], uid, "the same object");
    assert!(fake.requests().iter().all(|r| r.method != "DELETE"), "nothing was deleted");
    assert_eq!(messages(&status_items(db, "component:default/alpha").await, "rigger.dev/ownership"), "");
    let beta = status_items(db, "component:default/beta").await;
    assert!(!messages(&beta, "rigger.dev/cluster").contains("holds it"), "{beta:?}");
}
