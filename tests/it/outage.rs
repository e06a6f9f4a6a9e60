//! The store goes away and comes back, against a PostgreSQL server the test starts and stops:
//! the agent keeps running, says it is not ready, retries, and catches up by itself.

use std::time::{Duration, Instant};

use crate::support::component;
use crate::support::git::TestRepo;
use crate::support::pg_server::PgServer;
use crate::support::rigger::{free_port, write_config, Daemon, DEADLINE};

async fn description(daemon: &Daemon) -> Option<String> {
    let (status, entity) = daemon.get_json("/api/catalog/entities/by-name/component/default/svc").await;
    (status == 200).then(|| entity["metadata"]["description"].as_str().unwrap_or_default().to_owned())
}

async fn eventually(daemon: &Daemon, wanted: &str) {
    let started = Instant::now();
    while description(daemon).await.as_deref() != Some(wanted) {
        assert!(started.elapsed() < DEADLINE, "the catalog did not catch up to {wanted:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outages_are_survived_and_caught_up() {
    let pg = PgServer::init();
    let repo = TestRepo::new(pg.path(), "platform");
    repo.commit("one", &[("catalog-info.yaml", Some(&component("svc", "First")))]);
    let port = free_port();
    let sources =
        format!("  - name: platform\n    interval: 1s\n    git:\n      url: {}\n      branch: main\n", repo.file_url());
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &pg.url(), &format!("127.0.0.1:{port}"), &sources);

    // Unreachable at start: alive, not ready, and it says why.
    let mut daemon = Daemon::start(&config, port);
    daemon.wait_for("/healthz", 200).await;
    let (status, ready) = daemon.get_json("/readyz").await;
    assert_eq!((status, &ready["checks"]["store"]["ok"]), (503, &serde_json::json!(false)));

    // The database appears: migrations, first pass, ready — without a restart.
    pg.start();
    daemon.wait_for("/readyz", 200).await;
    eventually(&daemon, "First").await;

    // The database goes away mid-life; a change lands meanwhile.
    pg.stop();
    daemon.wait_for("/readyz", 503).await;
    repo.commit("two", &[("catalog-info.yaml", Some(&component("svc", "Second")))]);
    assert!(daemon.get_text("/metrics").await.contains("rigger_store_up 0"));
    // What fails is said, not the database's own words (hosts, users, SQL).
    for path in ["/api/catalog/entities", "/api/rigger/sources", "/readyz", "/api/catalog/entity-facets?facet=kind"] {
        let body = daemon.get_text(path).await;
        assert!(body.contains("unavailable") || body.contains("\"ok\":false"), "{path}: {body}");
        for leak in ["127.0.0.1", "postgres", "connection", "SELECT", "pool"] {
            assert!(!body.contains(leak), "{path} leaks {leak:?}: {body}");
        }
    }
    // Passes keep trying (and failing, counted) while the database is down.
    let started = Instant::now();
    while daemon
        .get_text("/metrics")
        .await
        .contains("rigger_sync_runs_total{outcome=\"failure\",source=\"platform\"} 0")
    {
        assert!(started.elapsed() < DEADLINE, "no failed pass was counted during the outage");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // It comes back: the agent catches up by itself, and nothing was lost.
    pg.start();
    daemon.wait_for("/readyz", 200).await;
    eventually(&daemon, "Second").await;

    assert_eq!(daemon.terminate().code(), Some(0));
}
