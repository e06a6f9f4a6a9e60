//! The HTTP surface under bad input and load: every bad parameter is a 400 in Backstage's
//! error shape, and readiness answers from state while queries queue.
#![allow(clippy::format_collect)] // test inputs, built for readability

use serde_json::Value;

use crate::support::component;
use crate::support::db::TestDb;
use crate::support::rigger::{free_port, write_config, Daemon};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_are_400s_in_backstages_shape() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("catalog")).unwrap();
    std::fs::write(dir.path().join("catalog/catalog-info.yaml"), component("svc", "Fine")).unwrap();
    let db = TestDb::sqlite(dir.path());
    let port = free_port();
    let sources = "  - name: demo\n    interval: 1h\n    local:\n      path: catalog\n";
    let config = write_config(dir.path(), &db.url, &format!("127.0.0.1:{port}"), sources);
    let mut daemon = Daemon::start(&config, port);
    daemon.wait_for("/readyz", 200).await;

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

/// Readiness answers from state the agent holds: a thousand concurrent catalog queries on
/// SQLite (four pooled connections) must not make a Kubernetes-style probe (2 s timeout) fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_holds_under_query_load() {
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("catalog")).unwrap();
    let many: String = (0..400).map(|i| format!("---\n{}", component(&format!("svc-{i}"), "Load"))).collect();
    std::fs::write(dir.path().join("catalog/catalog-info.yaml"), many).unwrap();
    let db = TestDb::sqlite(dir.path());
    let port = free_port();
    let sources = "  - name: demo\n    interval: 1h\n    local:\n      path: catalog\n";
    let config = write_config(dir.path(), &db.url, &format!("127.0.0.1:{port}"), sources);
    let mut daemon = Daemon::start(&config, port);
    daemon.wait_for("/readyz", 200).await;

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
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("catalog")).unwrap();
    std::fs::write(dir.path().join("catalog/catalog-info.yaml"), component("svc", "Fine")).unwrap();
    let db = TestDb::sqlite(dir.path());
    let port = free_port();
    let sources = "  - name: demo\n    interval: 1h\n    local:\n      path: catalog\n";
    let config = write_config(dir.path(), &db.url, &format!("127.0.0.1:{port}"), sources);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}webhooks:\n  github:\n    secret: {{ env: RIGGER_TEST_HOOK }}\n")).unwrap();
    let mut daemon = Daemon::start_with_env(&config, port, &[("RIGGER_TEST_HOOK", "s3cret")]);
    daemon.wait_for("/readyz", 200).await;
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
