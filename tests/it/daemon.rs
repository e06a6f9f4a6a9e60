//! `rigger run` as a process: health, readiness, metrics, file-change triggers, SIGTERM.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::component;
use crate::support::db::TestDb;
use crate::support::rigger::{free_port, write_config, Daemon, DEADLINE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_serves_health_metrics_follows_file_changes_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog");
    std::fs::create_dir_all(&catalog).unwrap();
    std::fs::write(catalog.join("catalog-info.yaml"), component("svc", "First")).unwrap();
    let db = TestDb::sqlite(dir.path());
    let port = free_port();
    let sources = "  - name: demo\n    interval: 1h\n    local:\n      path: catalog\n";
    let config = write_config(dir.path(), &db.url, &format!("127.0.0.1:{port}"), sources);
    let mut daemon = Daemon::start(&config, port);

    daemon.wait_for("/readyz", 200).await;
    let (status, health) = daemon.get_json("/healthz").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    let (_, ready) = daemon.get_json("/readyz").await;
    assert_eq!(ready["checks"]["store"]["ok"], true);
    assert_eq!(ready["checks"]["initial_sync"]["ok"], true);

    let metrics = daemon.get_text("/metrics").await;
    for expected in [
        "rigger_store_up 1",
        "rigger_catalog_entities{kind=\"component\"} 1",
        "rigger_sync_runs_total{outcome=\"success\",source=\"demo\"} 1",
        "rigger_sync_last_success_timestamp_seconds{source=\"demo\"}",
        "rigger_sync_duration_seconds_count{source=\"demo\"} 1",
        "rigger_location_errors{source=\"demo\"} 0",
    ] {
        assert!(metrics.contains(expected), "missing {expected} in\n{metrics}");
    }

    // The interval is an hour: only the file watcher can bring this change in.
    std::fs::write(catalog.join("catalog-info.yaml"), component("svc", "Second")).unwrap();
    let started = Instant::now();
    loop {
        let (_, svc) = daemon.get_json("/api/catalog/entities/by-name/component/default/svc").await;
        if svc["metadata"]["description"] == "Second" {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "file change not synced: {svc}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let status = daemon.terminate();
    assert_eq!(status.code(), Some(0), "SIGTERM ends rigger run with exit 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_tells_the_truth_when_the_database_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let db_port = free_port();
    let db = format!("postgres://postgres@127.0.0.1:{db_port}/nothing");
    let config =
        write_config(dir.path(), &db, &format!("127.0.0.1:{port}"), "  - name: demo\n    local:\n      path: .\n");
    let mut daemon = Daemon::start(&config, port);
    daemon.wait_for("/healthz", 200).await;
    let (status, ready) = daemon.get_json("/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(ready["checks"]["store"]["ok"], false);
    assert!(ready["checks"]["store"]["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert!(daemon.get_text("/metrics").await.contains("rigger_store_up 0"));
    let status = daemon.terminate();
    assert_eq!(status.code(), Some(0), "shutdown while waiting for the database is clean");
    drop(TestDb::sqlite(dir.path()));
}

fn scope_count(metrics: &str, scope: &str) -> u64 {
    let series = format!("rigger_local_rescans_total{{scope=\"{scope}\",source=\"demo\"}} ");
    metrics.lines().find_map(|l| l.strip_prefix(series.as_str())).map_or(0, |v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_source_rereads_only_the_files_that_changed() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog");
    std::fs::create_dir_all(&catalog).unwrap();
    let root = |targets: &str| {
        format!("apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {{ name: root }}\nspec:\n  targets: [{targets}]\n")
    };
    std::fs::write(catalog.join("catalog-info.yaml"), root("./a.yaml, ./b.yaml")).unwrap();
    std::fs::write(catalog.join("a.yaml"), component("a", "A1")).unwrap();
    std::fs::write(catalog.join("b.yaml"), component("b", "B1")).unwrap();
    let db = TestDb::sqlite(dir.path());
    let port = free_port();
    let sources = "  - name: demo\n    interval: 1h\n    local:\n      path: catalog\n";
    let config = write_config(dir.path(), &db.url, &format!("127.0.0.1:{port}"), sources);
    let mut daemon = Daemon::start(&config, port);
    daemon.wait_for("/readyz", 200).await;
    assert_eq!(scope_count(&daemon.get_text("/metrics").await, "full"), 1, "the first pass walks everything");

    let description = |name: &'static str| {
        let base = daemon.base.clone();
        async move {
            let url = format!("{base}/api/catalog/entities/by-name/component/default/{name}");
            let response = reqwest::get(url).await.unwrap();
            if response.status() != 200 {
                return serde_json::Value::Null;
            }
            response.json::<serde_json::Value>().await.unwrap()["metadata"]["description"].clone()
        }
    };
    std::fs::write(catalog.join("b.yaml"), component("b", "B2")).unwrap();
    let started = Instant::now();
    while description("b").await != "B2" {
        assert!(started.elapsed() < DEADLINE, "the edit was not synced");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = daemon.get_text("/metrics").await;
    assert_eq!(scope_count(&metrics, "full"), 1, "an edited catalog file is re-read alone:\n{metrics}");
    assert!(scope_count(&metrics, "changed_files") >= 1);
    assert_eq!(description("a").await, "A1", "the untouched file's entity stays");

    // A new target changes the tree's shape: only a full walk finds it.
    std::fs::write(catalog.join("c.yaml"), component("c", "C1")).unwrap();
    std::fs::write(catalog.join("catalog-info.yaml"), root("./a.yaml, ./b.yaml, ./c.yaml")).unwrap();
    let started = Instant::now();
    while description("c").await != "C1" {
        assert!(started.elapsed() < DEADLINE, "the new target was not found");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(scope_count(&daemon.get_text("/metrics").await, "full") >= 2);
    assert_eq!(daemon.terminate().code(), Some(0));
}

/// While passes run, `/api/rigger/sources` and `rigger_sources_in_state` say what each source is
/// doing: with one worker held by a git remote that never answers, that source is `fetching`
/// and the others `queued`; once the remote goes away the others sync and are idle again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_show_their_progress_while_passes_run() {
    use std::fmt::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let (remote, holding) = crate::support::git::silent_remote().await;
    let mut sources = format!("  - name: stuck\n    interval: 1h\n    git: {{ url: '{remote}' }}\n");
    for s in 0..3 {
        let repo = crate::support::git::TestRepo::new(dir.path(), &format!("repo-{s}"));
        repo.commit("one", &[("catalog-info.yaml", Some(&component(&format!("svc-{s}"), "Waiting")))]);
        writeln!(sources, "  - name: s{s}\n    interval: 1h\n    git: {{ url: '{}' }}", repo.file_url()).unwrap();
    }
    let db = TestDb::sqlite(dir.path());
    let port = free_port();
    let config = write_config(dir.path(), &db.url, &format!("127.0.0.1:{port}"), &sources);
    std::fs::write(&config, std::fs::read_to_string(&config).unwrap().replace("sync:\n", "sync:\n  concurrency: 1\n"))
        .unwrap();
    let mut daemon = Daemon::start(&config, port);
    // Listening (the status is polled from the first pass on).
    daemon.wait_for("/healthz", 200).await;

    let progress = |body: &Value, name: &str| {
        body["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["name"] == name))
            .map(|i| i["progress"].clone())
    };
    let started = Instant::now();
    let mut last = Value::Null;
    loop {
        assert!(started.elapsed() < DEADLINE, "the stuck source never showed as fetching with the rest queued: {last}");
        let (status, body) = daemon.get_json("/api/rigger/sources").await;
        last = body.clone();
        let state = |name: &str| progress(&body, name).map(|p| p["state"].clone());
        if status == 200
            && state("stuck") == Some(Value::from("fetching"))
            && (0..3).all(|s| state(&format!("s{s}")) == Some(Value::from("queued")))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let metrics = daemon.get_text("/metrics").await;
    assert!(metrics.contains("rigger_sources_in_state{state=\"queued\"} 3"), "{metrics}");
    assert!(metrics.contains("rigger_sources_in_state{state=\"fetching\"} 1"), "{metrics}");

    // The remote goes away: the worker moves on, and the waiting sources sync and go idle.
    holding.abort();
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < DEADLINE, "the waiting sources did not sync");
        let (_, body) = daemon.get_json("/api/rigger/sources").await;
        let done = (0..3).all(|s| {
            let name = format!("s{s}");
            progress(&body, &name) == Some(Value::Null)
                && body["items"].as_array().is_some_and(|items| {
                    items.iter().any(|i| i["name"] == name.as_str() && !i["lastSuccessSeconds"].is_null())
                })
        });
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    daemon.terminate();
}
