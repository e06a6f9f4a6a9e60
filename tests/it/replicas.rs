//! Several replicas on one PostgreSQL share the sources (one replica per source at a time, a dead
//! replica's sources picked up by the rest); SQLite refuses a second daemon.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::support::component;
use crate::support::db::TestDb;
use crate::support::git::TestRepo;
use crate::support::rigger::{free_port, rigger, write_config, Daemon, DEADLINE};

#[tokio::test]
async fn a_source_lease_is_held_by_one_replica_at_a_time() {
    let db = TestDb::postgres().await;
    let (a, b) =
        (rigger::store::Store::connect(&db.url).await.unwrap(), rigger::store::Store::connect(&db.url).await.unwrap());
    let held = a.try_lease("platform").await.unwrap().expect("free lease");
    assert!(b.try_lease("platform").await.unwrap().is_none(), "taken while another replica holds it");
    assert!(b.try_lease("other").await.unwrap().is_some(), "other sources are independent");
    drop(held);
    let started = Instant::now();
    // Dropping the lease rolls its transaction back on the pool's connection task.
    while b.try_lease("platform").await.unwrap().is_none() {
        assert!(started.elapsed() < DEADLINE, "the lease was not released");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replicas_sources_are_picked_up_by_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::postgres().await;
    let repos: Vec<TestRepo> = (0..3).map(|i| TestRepo::new(dir.path(), &format!("repo{i}"))).collect();
    let mut sources = String::new();
    for (i, repo) in repos.iter().enumerate() {
        repo.commit("one", &[("catalog-info.yaml", Some(&component(&format!("svc{i}"), "v1")))]);
        let url = repo.file_url();
        writeln!(sources, "  - name: repo{i}\n    interval: 1s\n    git:\n      url: {url}\n      branch: main")
            .unwrap();
    }
    let (port_a, port_b) = (free_port(), free_port());
    let dir_a = dir.path().join("a");
    let dir_b = dir.path().join("b");
    std::fs::create_dir_all(&dir_a).unwrap();
    std::fs::create_dir_all(&dir_b).unwrap();
    let mut a = Daemon::start(&write_config(&dir_a, &db.url, &format!("127.0.0.1:{port_a}"), &sources), port_a);
    let mut b = Daemon::start(&write_config(&dir_b, &db.url, &format!("127.0.0.1:{port_b}"), &sources), port_b);
    a.wait_for("/readyz", 200).await;
    b.wait_for("/readyz", 200).await;
    drop(a); // SIGKILL: no goodbye, possibly mid-pass

    for (i, repo) in repos.iter().enumerate() {
        repo.commit("two", &[("catalog-info.yaml", Some(&component(&format!("svc{i}"), "v2")))]);
    }
    let started = Instant::now();
    'wait: loop {
        for i in 0..repos.len() {
            let (_, svc) = b.get_json(&format!("/api/catalog/entities/by-name/component/default/svc{i}")).await;
            if svc["metadata"]["description"] != "v2" {
                assert!(started.elapsed() < DEADLINE, "svc{i} was not picked up by the surviving replica");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue 'wait;
            }
        }
        break;
    }
    assert_eq!(b.terminate().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_refuses_a_second_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite(dir.path());
    let (port_a, port_b) = (free_port(), free_port());
    let sources = "  - name: demo\n    local:\n      path: .\n";
    let mut first = Daemon::start(&write_config(dir.path(), &db.url, &format!("127.0.0.1:{port_a}"), sources), port_a);
    first.wait_for("/readyz", 200).await;
    let second_dir = dir.path().join("second");
    std::fs::create_dir_all(&second_dir).unwrap();
    let config = write_config(&second_dir, &db.url, &format!("127.0.0.1:{port_b}"), sources);
    let out = rigger().arg("--config").arg(&config).arg("run").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("SQLite mode is single-replica"), "{err}");
    assert_eq!(first.terminate().code(), Some(0));
}
