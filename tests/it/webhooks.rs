//! `POST /webhooks/github` against a running daemon: a signed push syncs its repository at once
//! (the poll interval is an hour), forged, unsigned, oversized and replayed deliveries do nothing,
//! and an accepted push is recorded before it is acknowledged, surviving a crash.

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::support::component;
use crate::support::db::TestDb;
use crate::support::git::TestRepo;
use crate::support::rigger::{free_port, write_config, Daemon, DEADLINE};

const SECRET: &str = "It's a Secret to Everybody";

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn push_body(repo: &TestRepo, branch: &str) -> Vec<u8> {
    let payload = json!({
        "ref": format!("refs/heads/{branch}"),
        "after": "0000000000000000000000000000000000000000",
        "repository": {"full_name": "acme/platform", "default_branch": "main", "clone_url": repo.file_url()},
    });
    serde_json::to_vec(&payload).unwrap()
}

/// Sends one delivery; `signature` None leaves the header out.
async fn deliver(base: &str, event: &str, delivery: &str, body: Vec<u8>, signature: Option<String>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{base}/webhooks/github"))
        .header("X-GitHub-Event", event)
        .header("X-GitHub-Delivery", delivery)
        .header("Content-Type", "application/json")
        .body(body);
    if let Some(signature) = signature {
        request = request.header("X-Hub-Signature-256", signature);
    }
    let response = match request.send().await {
        Ok(response) => response,
        // A body refused from its Content-Length is never read: the agent answers and closes
        // while a large upload is still being written, so the client sees the connection go.
        Err(err) if is_closed_mid_upload(&err) => {
            return (0, Value::Null);
        }
        Err(err) => panic!("POST: {err:?}"),
    };
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn is_closed_mid_upload(err: &reqwest::Error) -> bool {
    let text = format!("{err:?}");
    text.contains("BrokenPipe") || text.contains("ConnectionReset") || text.contains("BodyWrite")
}

/// A daemon tracking `repo` (branch main, polled hourly) with the webhook secret in a file.
fn start(dir: &std::path::Path, db_url: &str, repo: &TestRepo) -> Daemon {
    let port = free_port();
    let sources =
        format!("  - name: platform\n    interval: 1h\n    git:\n      url: {}\n      branch: main\n", repo.file_url());
    let config = write_config(dir, db_url, &format!("127.0.0.1:{port}"), &sources);
    std::fs::write(dir.join("webhook-secret"), format!("{SECRET}\n")).unwrap();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("webhooks:\n  github:\n    secret: { file: webhook-secret }\n");
    std::fs::write(&config, text).unwrap();
    Daemon::start(&config, port)
}

async fn description(daemon: &Daemon) -> Value {
    daemon.get_json("/api/catalog/entities/by-name/component/default/svc").await.1["metadata"]["description"].clone()
}

async fn wait_for_description(daemon: &Daemon, wanted: &str) {
    let started = Instant::now();
    while description(daemon).await != wanted {
        assert!(started.elapsed() < DEADLINE, "{wanted:?} never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_pushes_sync_at_once_and_forged_unsigned_oversized_or_replayed_ones_do_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let repo = TestRepo::new(dir.path(), "platform");
    repo.commit("one", &[("catalog-info.yaml", Some(&component("svc", "First")))]);
    let db = TestDb::sqlite(dir.path());
    let mut daemon = start(dir.path(), &db.url, &repo);
    daemon.wait_for("/readyz", 200).await;
    assert_eq!(description(&daemon).await, "First");
    let base = daemon.base.clone();

    repo.commit("two", &[("catalog-info.yaml", Some(&component("svc", "Second")))]);
    let body = push_body(&repo, "main");
    let forged = deliver(&base, "push", "d-1", body.clone(), Some(sign("guess", &body))).await;
    assert_eq!(forged.0, 401, "{forged:?}");
    assert_eq!(deliver(&base, "push", "d-1", body.clone(), None).await.0, 401, "unsigned");
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    assert_eq!(deliver(&base, "push", "d-1", tampered, Some(sign(SECRET, &body))).await.0, 401, "body changed");
    let huge = vec![b' '; rigger::serve::MAX_WEBHOOK_BYTES + 1];
    let signature = sign(SECRET, &huge);
    let refused = deliver(&base, "push", "d-2", huge, Some(signature)).await.0;
    assert!(refused == 413 || refused == 0, "oversized: {refused}");
    let counted = metric(
        &daemon.get_text("/metrics").await,
        "rigger_webhook_deliveries_total{event=\"push\",outcome=\"too_large\"}",
    );
    assert_eq!(counted, 1, "the oversized delivery was refused as too large");
    let metrics = daemon.get_text("/metrics").await;
    assert_eq!(metric(&metrics, "rigger_webhook_deliveries_total{event=\"push\",outcome=\"bad_signature\"}"), 3);
    assert_eq!(metric(&metrics, "rigger_queue_requests_total{reason=\"webhook\"}"), 0, "nothing queued yet");

    let ping = json!({"zen": "Design for failure."}).to_string().into_bytes();
    assert_eq!(deliver(&base, "ping", "d-3", ping.clone(), Some(sign(SECRET, &ping))).await.0, 200);
    let other_branch = push_body(&repo, "feature");
    let (status, answer) = deliver(&base, "push", "d-4", other_branch.clone(), Some(sign(SECRET, &other_branch))).await;
    assert_eq!((status, answer["ignored"].is_string()), (200, true), "{answer}");

    let (status, answer) = deliver(&base, "push", "d-5", body.clone(), Some(sign(SECRET, &body))).await;
    assert_eq!((status, answer), (202, json!({"queued": ["platform"]})));
    wait_for_description(&daemon, "Second").await;

    let (status, answer) = deliver(&base, "push", "d-5", body.clone(), Some(sign(SECRET, &body))).await;
    assert_eq!((status, answer), (200, json!({"duplicate": "d-5"})), "a redelivery is acknowledged, not run");
    let metrics = daemon.get_text("/metrics").await;
    assert_eq!(metric(&metrics, "rigger_queue_requests_total{reason=\"webhook\"}"), 1);
    assert_eq!(metric(&metrics, "rigger_webhook_deliveries_total{event=\"push\",outcome=\"duplicate\"}"), 1);
    assert_eq!(daemon.terminate().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_push_is_recorded_until_a_pass_serves_it_even_across_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let repo = TestRepo::new(dir.path(), "platform");
    repo.commit("one", &[("catalog-info.yaml", Some(&component("svc", "First")))]);
    let db = TestDb::postgres().await;
    let first = dir.path().join("first");
    std::fs::create_dir_all(&first).unwrap();
    let mut daemon = start(&first, &db.url, &repo);
    daemon.wait_for("/readyz", 200).await;

    // Another replica (this test) holds the source: the daemon can accept the push but not serve it.
    let store = rigger::store::Store::connect(&db.url).await.unwrap();
    let lease = store.try_lease("platform").await.unwrap().expect("lease is free between passes");
    repo.commit("two", &[("catalog-info.yaml", Some(&component("svc", "Second")))]);
    let body = push_body(&repo, "main");
    let (status, _) = deliver(&daemon.base, "push", "d-1", body.clone(), Some(sign(SECRET, &body))).await;
    assert_eq!(status, 202);
    let pending = store.pending_syncs().await.unwrap();
    assert_eq!(pending.iter().map(|p| p.source.as_str()).collect::<Vec<_>>(), ["platform"], "recorded before the 202");

    drop(daemon); // SIGKILL right after acknowledging
    let second = dir.path().join("second");
    std::fs::create_dir_all(&second).unwrap();
    let mut daemon = start(&second, &db.url, &repo);
    drop(lease);
    daemon.wait_for("/readyz", 200).await;
    wait_for_description(&daemon, "Second").await;
    let started = Instant::now();
    while !store.pending_syncs().await.unwrap().is_empty() {
        assert!(started.elapsed() < DEADLINE, "the served request was never cleared");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(daemon.terminate().code(), Some(0));
}

/// A push that arrives while the cold start's backlog waits goes ahead of it: with the only
/// worker held by a git remote that never answers, five repositories queue for their first
/// pass; a push for the last of them makes it the first to sync once the worker is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_during_the_cold_start_goes_ahead_of_the_backlog() {
    use std::fmt::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let (remote, holding) = crate::support::git::silent_remote().await;
    let mut sources = format!("  - name: stuck\n    interval: 1h\n    git: {{ url: '{remote}' }}\n");
    let mut repos = Vec::new();
    for r in 0..5 {
        let repo = TestRepo::new(dir.path(), &format!("repo-{r}"));
        repo.commit("one", &[("catalog-info.yaml", Some(&component(&format!("svc-{r}"), "Cold")))]);
        writeln!(sources, "  - name: r{r}\n    interval: 1h\n    git: {{ url: '{}', branch: main }}", repo.file_url())
            .unwrap();
        repos.push(repo);
    }
    let port = free_port();
    let db = TestDb::sqlite(dir.path());
    let config = write_config(dir.path(), &db.url, &format!("127.0.0.1:{port}"), &sources);
    std::fs::write(dir.path().join("webhook-secret"), format!("{SECRET}\n")).unwrap();
    let text = std::fs::read_to_string(&config).unwrap().replace("sync:\n", "sync:\n  concurrency: 1\n");
    std::fs::write(&config, text + "webhooks:\n  github:\n    secret: { file: webhook-secret }\n").unwrap();
    let mut daemon = Daemon::start(&config, port);
    // Listening (the status is polled from the first pass on).
    daemon.wait_for("/healthz", 200).await;

    let started = Instant::now();
    loop {
        assert!(started.elapsed() < DEADLINE, "the backlog never formed");
        let (_, body) = daemon.get_json("/api/rigger/sources").await;
        let state = |name: &str| {
            body["items"]
                .as_array()
                .and_then(|i| i.iter().find(|i| i["name"] == name))
                .map(|i| i["progress"]["state"].clone())
        };
        if state("stuck") == Some(json!("fetching")) && state("r4") == Some(json!("queued")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let body = push_body(&repos[4], "main");
    let (status, answer) = deliver(&daemon.base, "push", "cold-1", body.clone(), Some(sign(SECRET, &body))).await;
    assert_eq!(status, 202, "{answer}");
    holding.abort();

    let store = rigger::store::Store::connect(&db.url).await.unwrap();
    let started = Instant::now();
    let runs = loop {
        assert!(started.elapsed() < DEADLINE, "the repositories did not sync");
        let runs = store.sync_runs(100).await.unwrap();
        if (0..5).all(|r| runs.iter().any(|run| run.source == format!("r{r}") && run.error.is_none())) {
            break runs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    store.close().await;
    let first_at = |name: &str| runs.iter().filter(|r| r.source == name).map(|r| r.started_at).min().unwrap();
    for r in 0..4 {
        assert!(first_at("r4") <= first_at(&format!("r{r}")), "the pushed repository synced first: {runs:?}");
    }
    daemon.terminate();
}

/// GitHub does not redeliver a failed webhook on its own: a push that arrives while the agent
/// is starting (HTTP up, database not yet migrated) waits for the store instead of being refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_while_the_database_is_not_up_yet_waits_for_it() {
    let pg = crate::support::pg_server::PgServer::init();
    let repo = TestRepo::new(pg.path(), "platform");
    repo.commit("one", &[("catalog-info.yaml", Some(&component("svc", "First")))]);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let sources =
        format!("  - name: platform\n    interval: 1h\n    git:\n      url: {}\n      branch: main\n", repo.file_url());
    let config = write_config(dir.path(), &pg.url(), &format!("127.0.0.1:{port}"), &sources);
    std::fs::write(dir.path().join("webhook-secret"), format!("{SECRET}\n")).unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text + "webhooks:\n  github:\n    secret: { file: webhook-secret }\n").unwrap();
    let mut daemon = Daemon::start(&config, port);
    daemon.wait_for("/healthz", 200).await;
    assert_eq!(daemon.get_json("/readyz").await.0, 503, "the database is not up");

    let body = push_body(&repo, "main");
    let base = daemon.base.clone();
    let push =
        tokio::spawn(async move { deliver(&base, "push", "early-1", body.clone(), Some(sign(SECRET, &body))).await });
    pg.start();
    let (status, answer) = push.await.unwrap();
    assert_eq!(status, 202, "{answer}");
    daemon.wait_for("/readyz", 200).await;
    let (_, entity) = daemon.get_json("/api/catalog/entities/by-name/component/default/svc").await;
    assert_eq!(entity["metadata"]["description"], "First");
}
