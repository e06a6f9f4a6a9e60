//! The HTTP surface under bad input and load: every bad parameter is a 400 in Backstage's
//! error shape, and readiness answers from state while queries queue.
#![allow(clippy::format_collect)] // test inputs, built for readability

use serde_json::Value;

use crate::support::component;
use crate::support::db::TestDb;
use crate::support::rigger::{free_port, write_config, Daemon};

/// Which store a test's agent uses.
#[derive(Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A daemon-to-be syncing one local directory whose catalog file is `catalog`; `customise`
/// edits the config text before it is written.
struct LocalAgent {
    dir: tempfile::TempDir,
    _db: TestDb,
    config: std::path::PathBuf,
    port: u16,
}

impl LocalAgent {
    fn new(catalog: &str, customise: impl FnOnce(String) -> String) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = TestDb::sqlite(dir.path());
        Self::with_db(dir, db, catalog, customise)
    }

    async fn on(backend: Backend, catalog: &str, customise: impl FnOnce(String) -> String) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = match backend {
            Backend::Sqlite => TestDb::sqlite(dir.path()),
            Backend::Postgres => TestDb::postgres().await,
        };
        Self::with_db(dir, db, catalog, customise)
    }

    fn with_db(dir: tempfile::TempDir, db: TestDb, catalog: &str, customise: impl FnOnce(String) -> String) -> Self {
        std::fs::create_dir_all(dir.path().join("catalog")).unwrap();
        std::fs::write(dir.path().join("catalog/catalog-info.yaml"), catalog).unwrap();
        let port = free_port();
        let sources = "  - name: demo\n    interval: 1h\n    local:\n      path: catalog\n";
        let config = write_config(dir.path(), &db.url, &format!("127.0.0.1:{port}"), sources);
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, customise(text)).unwrap();
        Self { dir, _db: db, config, port }
    }

    /// Starts the daemon and waits until it is ready.
    async fn start(&self, env: &[(&str, &str)]) -> Daemon {
        let mut daemon = Daemon::start_with_env(&self.config, self.port, env);
        daemon.wait_for("/readyz", 200).await;
        daemon
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_bad_parameters_are_400s_in_backstages_shape() {
    bad_parameters(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_bad_parameters_are_400s_in_backstages_shape() {
    bad_parameters(Backend::Postgres).await;
}

async fn bad_parameters(backend: Backend) {
    let agent = LocalAgent::on(backend, &component("svc", "Fine"), |text| text).await;
    let daemon = agent.start(&[]).await;

    // A cursor that carries an offset no database can take.
    let cursor = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(
            br#"{"filters":[],"order":null,"full_text_term":null,"full_text_fields":[],"offset":18446744073709551615}"#,
        )
    };
    let bad = [
        "/api/catalog/entities?limit=18446744073709551615".to_owned(),
        "/api/catalog/entities?offset=18446744073709551615".to_owned(),
        "/api/catalog/entities?offset=9223372036854775807".to_owned(),
        "/api/catalog/entities?limit=-1".to_owned(),
        "/api/catalog/entities?limit=abc".to_owned(),
        "/api/catalog/entities/by-query?limit=99999999999".to_owned(),
        "/api/catalog/entities/by-query?offset=-5".to_owned(),
        format!("/api/catalog/entities/by-query?cursor={}", url_encode(&cursor)),
    ];
    for path in bad {
        let (status, body) = daemon.get_json(&path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["name"], "InputError", "{path}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{path}: {body}");
        assert_eq!(body["response"]["statusCode"], 400, "{path}: {body}");
    }
    // The largest accepted values still answer normally.
    let (status, body) = daemon.get_json("/api/catalog/entities?limit=1000000000&offset=1000000000").await;
    assert_eq!((status, body), (200, Value::Array(vec![])));
    daemon.terminate();
}

fn url_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Readiness answers from state the agent holds: a thousand concurrent catalog queries (on
/// SQLite, four pooled connections; on PostgreSQL, the API's eight) must not make a Kubernetes-style probe (2 s timeout) fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_readiness_holds_under_query_load() {
    readiness_under_query_load(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_readiness_holds_under_query_load() {
    readiness_under_query_load(Backend::Postgres).await;
}

async fn readiness_under_query_load(backend: Backend) {
    use std::time::Duration;
    let many: String = (0..400).map(|i| format!("---\n{}", component(&format!("svc-{i}"), "Load"))).collect();
    let agent = LocalAgent::on(backend, &many, |text| text).await;
    let daemon = agent.start(&[]).await;

    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let base = daemon.base.clone();
    let load: Vec<_> = (0..1000)
        .map(|_| {
            let (client, url) = (client.clone(), format!("{base}/api/catalog/entities"));
            tokio::spawn(async move { client.get(url).send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    let probe = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
    let mut answers = Vec::new();
    for _ in 0..10 {
        let ready = probe.get(format!("{base}/readyz")).send().await.map(|r| r.status().as_u16());
        let healthy = probe.get(format!("{base}/healthz")).send().await.map(|r| r.status().as_u16());
        answers.push((ready.map_err(|e| e.to_string()), healthy.map_err(|e| e.to_string())));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut served = 0;
    for request in load {
        if let Ok(Ok(200)) = request.await {
            served += 1;
        }
    }
    assert!(answers.iter().all(|(r, h)| r == &Ok(200) && h == &Ok(200)), "{answers:?}");
    assert!(served > 0, "the load was served");
    daemon.terminate();
}

/// A flood of unsigned 5 MB deliveries is refused from their headers: no body is buffered, memory
/// stays flat, and health keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_webhook_floods_are_refused_without_reading_them() {
    use std::time::Duration;
    let hook = |text| format!("{text}webhooks:\n  github:\n    secret: {{ env: RIGGER_TEST_HOOK }}\n");
    let agent = LocalAgent::new(&component("svc", "Fine"), hook);
    let daemon = agent.start(&[("RIGGER_TEST_HOOK", "s3cret")]).await;
    let before = daemon.peak_rss_kib();

    let body = axum::body::Bytes::from(vec![b'x'; 5 * 1024 * 1024]);
    let client = reqwest::Client::new();
    let url = format!("{}/webhooks/github", daemon.base);
    let flood: Vec<_> = (0..200)
        .map(|i| {
            let request = client
                .post(&url)
                .header("x-github-event", "push")
                .header("x-github-delivery", format!("flood-{i}"))
                .body(body.clone());
            tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    let (mut refused, mut busy) = (0, 0);
    for request in flood {
        // The agent may answer before the client finished sending; either way nothing is read.
        match request.await.unwrap() {
            Ok(401) => refused += 1,
            Ok(503) => busy += 1,
            _ => {}
        }
    }
    assert!(refused > 0, "unsigned deliveries are answered 401");
    assert_eq!(busy, 0, "refused from their headers, unsigned deliveries never wait for a verification slot");
    let probe = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
    assert_eq!(probe.get(format!("{}/healthz", daemon.base)).send().await.unwrap().status().as_u16(), 200);
    let grown = daemon.peak_rss_kib().saturating_sub(before);
    assert!(grown < 100 * 1024, "200 unsigned 5 MB posts grew the agent by {grown} KiB");
    daemon.terminate();
}

/// 1,100 idle connections (more than systemd's default open-file limit once took) leave the
/// agent answering; a client that sends half its headers is cut off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_do_not_hang_the_agent() {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let agent = LocalAgent::new(&component("svc", "Fine"), |text| text);
    let daemon = agent.start(&[]).await;

    let mut idle = Vec::new();
    for _ in 0..1100 {
        if let Ok(socket) = tokio::net::TcpStream::connect(("127.0.0.1", agent.port)).await {
            idle.push(socket);
        }
    }
    assert!(idle.len() >= 1000, "the test holds its idle sockets ({})", idle.len());
    let probe = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
    for path in ["/healthz", "/readyz", "/api/catalog/entities"] {
        let status = probe.get(format!("{}{path}", daemon.base)).send().await.map(|r| r.status().as_u16());
        assert_eq!(status.map_err(|e| e.to_string()), Ok(200), "{path} with {} idle connections open", idle.len());
    }

    // Half a request's headers, then nothing: the agent closes the connection.
    let mut slow = tokio::net::TcpStream::connect(("127.0.0.1", agent.port)).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = Instant::now();
    let mut buffer = [0u8; 256];
    let closed = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match slow.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "a half-sent request is cut off (after {:?})", started.elapsed());
    drop(idle);
    daemon.terminate();
}

/// Beyond `server.max_concurrent_requests` the catalog API answers 503 with Retry-After, in
/// Backstage's error shape, while the probes keep answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_catalog_queries_beyond_the_bound_are_shed_with_retry_after() {
    shedding_beyond_the_bound(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_catalog_queries_beyond_the_bound_are_shed_with_retry_after() {
    shedding_beyond_the_bound(Backend::Postgres).await;
}

async fn shedding_beyond_the_bound(backend: Backend) {
    let many: String = (0..400).map(|i| format!("---\n{}", component(&format!("svc-{i}"), "Load"))).collect();
    let limit = |text: String| text.replace("server:\n", "server:\n  max_concurrent_requests: 1\n");
    let agent = LocalAgent::on(backend, &many, limit).await;
    let daemon = agent.start(&[]).await;

    let client = reqwest::Client::new();
    let load: Vec<_> = (0..300)
        .map(|_| {
            let request = client.get(format!("{}/api/catalog/entities", daemon.base));
            tokio::spawn(async move {
                let response = request.send().await.ok()?;
                let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap_or("").to_owned());
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                Some((status, retry_after, body))
            })
        })
        .collect();
    let (ready, _) = daemon.get_json("/readyz").await;
    let mut shed = 0;
    for request in load {
        let Some((status, retry_after, body)) = request.await.unwrap() else { continue };
        if status == 503 {
            shed += 1;
            assert_eq!(retry_after.as_deref(), Some("1"));
            assert_eq!(body["error"]["name"], "ServiceUnavailableError", "{body}");
        } else {
            assert_eq!(status, 200);
        }
    }
    assert!(shed > 0, "with one request at a time, some of 300 concurrent ones are shed");
    assert_eq!(ready, 200, "readiness is never shed");
    daemon.terminate();
}

/// Under systemd's default open-file limit (1,024) the connection bound lowers itself, so a
/// flood of idle connections never makes the agent run out of file handles: it is slowed for at
/// most the header timeout, never hung, and never fails for "too many open files".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_open_file_limit_lowers_the_connection_bound() {
    use std::time::{Duration, Instant};
    let agent = LocalAgent::new(&component("svc", "Fine"), |text| text);
    let (dir, config, port) = (&agent.dir, &agent.config, agent.port);
    let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
    let mut child = std::process::Command::new("prlimit")
        .args(["--nofile=1024:1024", "--", env!("CARGO_BIN_EXE_rigger"), "--config"])
        .arg(config)
        .arg("run")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("prlimit runs rigger");
    let base = format!("http://127.0.0.1:{port}");
    let probe = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
    let started = Instant::now();
    while !matches!(probe.get(format!("{base}/readyz")).send().await, Ok(r) if r.status() == 200) {
        assert!(started.elapsed() < crate::support::rigger::DEADLINE, "not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut idle = Vec::new();
    for _ in 0..1100 {
        // Past the bound and the kernel's backlog a connect waits; the flood stops there. (On
        // loopback a SYN is now and then retried after a second: hence the 3 s.)
        let connect = tokio::net::TcpStream::connect(("127.0.0.1", port));
        match tokio::time::timeout(Duration::from_secs(3), connect).await {
            Ok(Ok(socket)) => idle.push(socket),
            _ => break,
        }
    }
    assert!(idle.len() > 768, "the flood reaches past the lowered bound ({})", idle.len());
    // The idle ones beyond the bound wait in the backlog; the bound's own are cut off after the
    // header timeout, so a patient probe gets through.
    let patient = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let status = patient.get(format!("{base}/healthz")).send().await.map(|r| r.status().as_u16());
    assert_eq!(status.map_err(|e| e.to_string()), Ok(200));
    drop(idle);
    let _ = child.kill();
    let _ = child.wait();
    let logged = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
    assert!(logged.contains("server.max_connections lowered"), "{logged}");
    assert!(!logged.to_lowercase().contains("too many open files"), "{logged}");
}

/// Whole-catalog answers (a list without `limit`, `by-refs` of everything) are written a slice
/// at a time: ten of each at once over a 20 MB catalog cost the agent a bounded amount of memory,
/// and every answer is whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_whole_catalog_answers_are_streamed_in_bounded_memory() {
    streamed_whole_catalog_answers(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_whole_catalog_answers_are_streamed_in_bounded_memory() {
    streamed_whole_catalog_answers(Backend::Postgres).await;
}

async fn streamed_whole_catalog_answers(backend: Backend) {
    let root = "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: parts\nspec:\n  targets: [./parts/*.yaml]\n";
    let agent = LocalAgent::on(backend, root, |text| text).await;
    // 10 files of 100 entities with 20 KB descriptions each (a file stays under 8 MiB).
    let long = "lorem ipsum ".repeat(1700);
    let parts = agent.dir.path().join("catalog/parts");
    std::fs::create_dir_all(&parts).unwrap();
    for part in 0..10 {
        let docs: String =
            (0..100).map(|i| format!("---\n{}", component(&format!("svc-{}", part * 100 + i), &long))).collect();
        std::fs::write(parts.join(format!("{part}.yaml")), docs).unwrap();
    }
    let daemon = agent.start(&[]).await;
    let before = daemon.peak_rss_kib();

    let refs: Vec<String> = (0..1000).map(|i| format!("component:default/svc-{i}")).collect();
    let client = reqwest::Client::new();
    let mut requests = Vec::new();
    for _ in 0..10 {
        let list = client.get(format!("{}/api/catalog/entities", daemon.base));
        requests.push(tokio::spawn(async move { list.send().await.unwrap().json::<Value>().await.unwrap() }));
        let by_refs = client
            .post(format!("{}/api/catalog/entities/by-refs", daemon.base))
            .json(&serde_json::json!({ "entityRefs": refs }));
        requests.push(tokio::spawn(async move { by_refs.send().await.unwrap().json::<Value>().await.unwrap() }));
    }
    for request in requests {
        let answer = request.await.unwrap();
        let items = answer.as_array().or_else(|| answer["items"].as_array()).expect("an array or {items}");
        let described =
            items.iter().filter(|e| e["metadata"]["description"].as_str().is_some_and(|d| d.len() > 20_000));
        assert_eq!(described.count(), 1000, "every answer is whole");
    }
    let grown = daemon.peak_rss_kib().saturating_sub(before);
    eprintln!("20 concurrent whole-catalog answers (20 MB each) grew the agent by {grown} KiB");
    assert!(grown < 300 * 1024, "grew by {grown} KiB");
    daemon.terminate();
}

/// Posts `body`, again if the connection was reset first: the agent answers an oversized body
/// without reading the rest of it, so a client still sending may see the reset before the answer.
async fn send_until_answered(client: &reqwest::Client, url: &str, body: Vec<u8>) -> reqwest::Response {
    let mut attempts = 0;
    loop {
        let sent = client.post(url).header("content-type", "application/json").body(body.clone()).send().await;
        match sent {
            Ok(response) => return response,
            Err(err) if err.is_request() && attempts < 5 => attempts += 1,
            Err(err) => panic!("no answer after {attempts} resets: {err}"),
        }
    }
}

/// The catalog API takes request bodies up to 1 MiB; beyond that, and for a body that is not the
/// JSON asked for, it answers in Backstage's error shape without touching the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_request_bodies_are_bounded_and_checked() {
    let agent = LocalAgent::new(&component("svc", "Fine"), |text| text);
    let daemon = agent.start(&[]).await;
    let url = format!("{}/api/catalog/entities/by-refs", daemon.base);
    let client = reqwest::Client::new();
    let refs: Vec<String> = (0..60_000).map(|i| format!("component:default/service-number-{i}")).collect();
    let oversized = serde_json::to_vec(&serde_json::json!({ "entityRefs": refs })).unwrap();
    assert!(oversized.len() > 1024 * 1024);
    let cases: [(Vec<u8>, u16, &str); 3] = [
        (oversized, 413, "PayloadTooLargeError"),
        (b"{\"entityRefs\": [".to_vec(), 400, "InputError"),
        (b"{\"refs\": []}".to_vec(), 400, "InputError"),
    ];
    for (body, status, name) in cases {
        let response = send_until_answered(&client, &url, body).await;
        assert_eq!(response.status().as_u16(), status);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["name"], name, "{answer}");
        assert_eq!(answer["response"]["statusCode"], status, "{answer}");
    }
    // A body within the limit is an ordinary request.
    let fitting = client.post(&url).json(&serde_json::json!({ "entityRefs": ["component:default/svc"] }));
    let answer: Value = fitting.send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["items"][0]["metadata"]["name"], "svc", "{answer}");
    daemon.terminate();
}
