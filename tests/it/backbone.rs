//! The backbone end to end, on SQLite and PostgreSQL: a real bare repository synced by
//! `rigger sync --once`, observed through the daemon's catalog API and the store's history.

use std::path::Path;

use serde_json::Value;

use crate::support::db::TestDb;
use crate::support::git::TestRepo;
use crate::support::rigger::{free_port, run, stdout, write_config, Daemon};
use crate::support::{component, ROOT_CATALOG};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_git_repository_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = TestDb::sqlite(dir.path());
    git_repository_round_trip(&db, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_git_repository_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = TestDb::postgres().await;
    git_repository_round_trip(&db, dir.path()).await;
}

fn refs(entities: &Value) -> Vec<String> {
    let mut refs: Vec<String> = entities
        .as_array()
        .expect("array")
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                e["kind"].as_str().unwrap_or_default().to_lowercase(),
                e["metadata"]["name"].as_str().unwrap_or_default()
            )
        })
        .collect();
    refs.sort();
    refs
}

async fn sync_runs(db: &TestDb) -> usize {
    let store = rigger::store::Store::connect(&db.url).await.expect("store");
    let runs = store.sync_runs(1000).await.expect("runs").len();
    store.close().await;
    runs
}

async fn git_repository_round_trip(db: &TestDb, dir: &Path) {
    let repo = TestRepo::new(dir, "platform");
    let first = repo.commit(
        "initial catalog",
        &[
            ("catalog-info.yaml", Some(ROOT_CATALOG)),
            ("services/billing/catalog-info.yaml", Some(&component("billing", "Sends invoices"))),
            ("services/search/catalog-info.yaml", Some(&component("search", "Finds things"))),
        ],
    );
    let port = free_port();
    let sources = format!("  - name: platform\n    git:\n      url: {}\n      branch: main\n", repo.file_url());
    let config = write_config(dir, &db.url, &format!("127.0.0.1:{port}"), &sources);

    let out = run(&config, &["sync", "--once"]);
    assert!(out.status.success(), "first sync failed: {}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout(&out).contains(&format!("platform: synced {first}: 5 added, 0 updated, 0 deleted")),
        "{}",
        stdout(&out)
    );

    let mut daemon = Daemon::start(&config, port);
    daemon.wait_for("/readyz", 200).await;
    let (status, entities) = daemon.get_json("/api/catalog/entities").await;
    assert_eq!(status, 200);
    assert_eq!(
        refs(&entities),
        ["component:billing", "component:search", "component:web", "group:team-a", "location:services"]
    );

    // Backstage's annotation formats: the root file in /blob/ form, Location targets in /tree/ form.
    let web_base =
        format!("file:///{}", repo.bare.display().to_string().trim_start_matches('/').trim_end_matches(".git"));
    let (_, billing) = daemon.get_json("/api/catalog/entities/by-name/component/default/billing").await;
    let annotations = &billing["metadata"]["annotations"];
    assert_eq!(
        annotations["backstage.io/managed-by-location"],
        format!("url:{web_base}/tree/main/services/billing/catalog-info.yaml")
    );
    assert_eq!(
        annotations["backstage.io/managed-by-origin-location"],
        format!("url:{web_base}/blob/main/catalog-info.yaml")
    );
    assert_eq!(
        annotations["backstage.io/view-url"],
        format!("{web_base}/tree/main/services/billing/catalog-info.yaml")
    );
    assert_eq!(annotations["backstage.io/source-location"], format!("url:{web_base}/tree/main/services/billing/"));
    assert_eq!(billing["metadata"]["namespace"], "default");
    assert_eq!(billing["relations"], serde_json::json!([{"type": "ownedBy", "targetRef": "group:default/team-a"}]));
    let (billing_uid, billing_etag) = (billing["metadata"]["uid"].clone(), billing["metadata"]["etag"].clone());

    // The daemon's own first pass found the remote unchanged: one ref check, no entity writes.
    let metrics = daemon.get_text("/metrics").await;
    assert!(metrics.contains("rigger_sync_runs_total{outcome=\"unchanged\",source=\"platform\"} 1"), "{metrics}");
    assert!(metrics.contains("rigger_store_entity_writes_total{operation=\"insert\"} 0"), "{metrics}");

    let (_, filtered) = daemon.get_json("/api/catalog/entities?filter=kind=component,spec.type=service").await;
    assert_eq!(refs(&filtered), ["component:billing", "component:search"]);
    let (_, narrow) = daemon.get_json("/api/catalog/entities?filter=metadata.name=web&fields=kind,metadata.name").await;
    assert_eq!(narrow, serde_json::json!([{"kind": "Component", "metadata": {"name": "web"}}]));

    // A commit that removes one entity (web) and edits another (billing).
    let root_without_web = ROOT_CATALOG.split_once("---\n").expect("documents").1;
    let second = repo.commit(
        "drop web, reword billing",
        &[
            ("catalog-info.yaml", Some(root_without_web)),
            ("services/billing/catalog-info.yaml", Some(&component("billing", "Sends invoices, on time"))),
        ],
    );
    let out = run(&config, &["sync", "--once"]);
    assert!(
        stdout(&out).contains(&format!("platform: synced {second}: 0 added, 1 updated, 1 deleted, 3 unchanged")),
        "{}",
        stdout(&out)
    );
    let (status, _) = daemon.get_json("/api/catalog/entities/by-name/component/default/web").await;
    assert_eq!(status, 404);
    let (_, billing) = daemon.get_json("/api/catalog/entities/by-name/Component/default/BILLING").await;
    assert_eq!(billing["metadata"]["description"], "Sends invoices, on time");
    assert_eq!(billing["metadata"]["uid"], billing_uid, "uid is stable across edits");
    assert_ne!(billing["metadata"]["etag"], billing_etag, "etag changes with the entity");

    // No new commit: nothing is fetched and nothing is written, not even history.
    let runs_before = sync_runs(db).await;
    let out = run(&config, &["sync", "--once"]);
    assert!(out.status.success());
    assert_eq!(stdout(&out).trim(), format!("platform: unchanged at {second}"));
    assert_eq!(sync_runs(db).await, runs_before);

    // A commit that touches no catalog file: a history row, but zero entity writes.
    repo.commit("docs only", &[("README.md", Some("# platform\n"))]);
    let out = run(&config, &["sync", "--once"]);
    assert!(stdout(&out).contains("0 added, 0 updated, 0 deleted, 4 unchanged"), "{}", stdout(&out));

    // The Location stops targeting search and the file is gone: positive evidence, so it is pruned.
    let root_only_billing = root_without_web.replace(", ./services/search/catalog-info.yaml", "");
    repo.commit(
        "retire search",
        &[("catalog-info.yaml", Some(&root_only_billing)), ("services/search/catalog-info.yaml", None)],
    );
    let out = run(&config, &["sync", "--once"]);
    // The Location entity itself changed (one target fewer): one update; the search file: one delete.
    assert!(stdout(&out).contains("0 added, 1 updated, 1 deleted, 2 unchanged"), "{}", stdout(&out));
    let (_, entities) = daemon.get_json("/api/catalog/entities").await;
    assert_eq!(refs(&entities), ["component:billing", "group:team-a", "location:services"]);

    let status = daemon.terminate();
    assert!(status.success(), "SIGTERM should end rigger run with exit 0, got {status}");
}
