//! What a new operator meets first: the daemon's logs (written on change, readable in a file,
//! no debug formatting), the command line's exit codes, and the API's links.

use std::path::Path;

use crate::support::git::TestRepo;
use crate::support::rigger::{free_port, rigger, write_config, Daemon, DEADLINE};

/// Two bad documents in one file: a bad name, and a misspelled kind with no apiVersion.
const TWO_BAD_DOCUMENTS: &str = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: { name: -x- }\nspec: { type: service, lifecycle: production, owner: team-a }\n---\nkind: Compnent\nmetadata: { name: y }\n";

/// A daemon polling, every second, a local directory and a git repository that each hold two
/// bad documents, and a git remote that does not exist, on a fresh SQLite database; returns its
/// log once `passes` passes of the directory and of the repository have run.
async fn logs_after_polls(dir: &Path, global_args: &[&str], passes: u64) -> String {
    std::fs::create_dir_all(dir.join("catalog")).unwrap();
    std::fs::write(dir.join("catalog/catalog-info.yaml"), TWO_BAD_DOCUMENTS).unwrap();
    let repo = TestRepo::new(dir, "apps");
    repo.commit("two bad documents", &[("catalog-info.yaml", Some(TWO_BAD_DOCUMENTS))]);
    let port = free_port();
    let sources = format!(
        "  - name: local\n    interval: 1s\n    local: {{ path: catalog }}\n  - name: gone\n    interval: 1s\n    git: {{ url: '{}' }}\n  - name: apps\n    interval: 1s\n    git: {{ url: '{}' }}\n",
        dir.join("no-such-repository").display(),
        repo.file_url()
    );
    let db = format!("sqlite://{}/rigger.db", dir.display());
    let config = write_config(dir, &db, &format!("127.0.0.1:{port}"), &sources);
    let log = dir.join("rigger.log");
    let mut daemon = Daemon::start_logged(&config, port, global_args, &log);
    daemon.wait_for("/readyz", 200).await;
    let started = std::time::Instant::now();
    loop {
        let metrics = daemon.get_text("/metrics").await;
        if passes_of(&metrics, "local") >= passes && passes_of(&metrics, "apps") >= passes {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "the sources were not polled {passes} times");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(daemon.terminate().success());
    std::fs::read_to_string(&log).unwrap()
}

/// Passes of `source` that finished, whatever their outcome.
fn passes_of(metrics: &str, source: &str) -> u64 {
    let label = format!("source=\"{source}\"");
    metrics
        .lines()
        .filter(|l| l.starts_with("rigger_sync_runs_total{") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_say_each_thing_once_in_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let log = logs_after_polls(dir.path(), &[], 4).await;
    let lines = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(lines("catalog error"), 4, "each bad document is logged once, not once per poll:\n{log}");
    assert_eq!(lines("sync failed"), 1, "a failure that repeats is logged once:\n{log}");
    assert_eq!(lines(" synced "), 2, "a pass that changed nothing is not news:\n{log}");
    assert!(!log.contains('\u{1b}'), "no colour codes in a file:\n{log}");
    assert!(!log.contains("Some("), "no debug formatting:\n{log}");
    assert!(!log.contains("Message {") && !log.contains("Os {"), "errors in their own words:\n{log}");
    assert!(!log.contains("locked"), "a fresh SQLite start is quiet:\n{log}");
    let error = log
        .lines()
        .find(|l| l.contains("catalog error") && l.contains("source=local") && l.contains("document=1"))
        .unwrap_or_default();
    assert!(
        error.contains("source=local") && error.contains("file=catalog-info.yaml") && error.contains("line=5"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_with_plain_values() {
    let dir = tempfile::tempdir().unwrap();
    let log = logs_after_polls(dir.path(), &["--log-format", "json"], 2).await;
    let mut errors = 0;
    for line in log.lines() {
        let object: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        for (key, value) in object.as_object().unwrap() {
            let text = value.to_string();
            assert!(!text.contains("Some(") && !text.contains('\u{1b}'), "{key}: {text} in {line}");
        }
        if object["message"] == "catalog error" {
            errors += 1;
            assert!(object["source"] == "local" || object["source"] == "apps", "{line}");
            assert_eq!(object["file"], "catalog-info.yaml", "{line}");
            assert!(object["document"].is_u64(), "the document is a number: {line}");
            assert!(object["line"].is_u64(), "the line the document starts on: {line}");
        }
    }
    assert_eq!(errors, 4, "{log}");
}

#[test]
fn sync_runs_one_pass_with_or_without_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("catalog")).unwrap();
    std::fs::write(dir.path().join("catalog/catalog-info.yaml"), crate::support::component("svc", "fine")).unwrap();
    let db = format!("sqlite://{}/rigger.db", dir.path().display());
    let config = write_config(dir.path(), &db, "127.0.0.1:1", "  - name: local\n    local: { path: catalog }\n");
    for args in [&["sync"][..], &["sync", "--once"][..]] {
        let out = rigger().arg("--config").arg(&config).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn validate_of_a_path_that_does_not_exist_is_a_usage_error() {
    let out = rigger().args(["validate", "/no/such/catalog-info.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/no/such/catalog-info.yaml"), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_page_link_keeps_the_fields_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("catalog")).unwrap();
    let catalog: Vec<String> = ["a", "b", "c"].iter().map(|n| crate::support::component(n, "x")).collect();
    std::fs::write(dir.path().join("catalog/catalog-info.yaml"), catalog.join("---\n")).unwrap();
    let port = free_port();
    let db = format!("sqlite://{}/rigger.db", dir.path().display());
    let config = write_config(
        dir.path(),
        &db,
        &format!("127.0.0.1:{port}"),
        "  - name: local\n    interval: 1h\n    local: { path: catalog }\n",
    );
    let mut daemon = Daemon::start(&config, port);
    daemon.wait_for("/readyz", 200).await;
    let mut url = format!("{}/api/catalog/entities?fields=metadata.name&limit=1&order=asc:metadata.name", daemon.base);
    let mut names = Vec::new();
    for _ in 0..3 {
        let response = reqwest::get(&url).await.unwrap();
        let link = response.headers().get("link").map(|l| l.to_str().unwrap().to_owned());
        let page: serde_json::Value = response.json().await.unwrap();
        assert_eq!(page.as_array().map(Vec::len), Some(1), "{page}");
        assert_eq!(
            page[0].as_object().unwrap().keys().collect::<Vec<_>>(),
            ["metadata"],
            "only the fields asked for: {page}"
        );
        names.push(page[0]["metadata"]["name"].as_str().unwrap().to_owned());
        let Some(link) = link else { break };
        let path = link.trim_start_matches('<').split('>').next().unwrap();
        url = format!("{}{path}", daemon.base);
    }
    assert_eq!(names, ["a", "b", "c"]);
    assert!(daemon.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migrate_says_what_it_did_and_nothing_of_the_database_notices() {
    let db = crate::support::db::TestDb::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &db.url, "127.0.0.1:1", "  - name: local\n    local: { path: catalog }\n");
    for _ in 0..2 {
        let out = rigger().env_remove("RUST_LOG").arg("--config").arg(&config).arg("migrate").output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "migrations applied (PostgreSQL)\n");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "no notices, no statements");
    }
}

#[test]
fn config_errors_come_in_one_round_with_positions_and_suggestions() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rigger.yaml");
    std::fs::write(
        &config,
        "databse: { url: 'sqlite://x.db' }\nserver: { listen: nowhere, max_connections: lots }\nsources:\n  - name: ok\n    intervl: 5m\n    git: { url: 'https://x/y.git', token: { envv: T } }\n",
    )
    .unwrap();
    let out = rigger().arg("--config").arg(&config).args(["config", "check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = config.display();
    for line in [
        format!("{file}:1:1: databse: unknown key; did you mean `database`?"),
        format!("{file}:2:11: server.listen: expected host:port"),
        format!("{file}:2:28: server.max_connections: expected a whole number, found string \"lots\""),
        format!("{file}:5:5: sources[0].intervl: unknown key; did you mean `interval`?"),
        format!("{file}:6:45: sources[0].git.token.envv: unknown key; did you mean `env`?"),
    ] {
        assert!(stderr.contains(&line), "missing {line:?} in\n{stderr}");
    }
    assert!(stderr.contains("5 problems"), "one round:\n{stderr}");
    assert!(!stderr.contains("Raw") && !stderr.contains("u64"), "no internal type names:\n{stderr}");
}

#[test]
fn a_secret_that_does_not_resolve_is_named_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rigger.yaml");
    let text = "sources:\n  - name: a\n    git:\n      url: 'https://github.com/acme/a.git'\n      token: { env: RIGGER_TEST_SURELY_UNSET }\n";
    std::fs::write(&config, text).unwrap();
    for command in [&["config", "check"][..], &["run"][..]] {
        let out = rigger()
            .env_remove("RIGGER_TEST_SURELY_UNSET")
            .arg("--config")
            .arg(&config)
            .args(command)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let expected = format!(
            "{}:5:7: sources[0].git.token: environment variable RIGGER_TEST_SURELY_UNSET is not set",
            config.display()
        );
        assert!(stderr.contains(&expected), "{command:?}: {stderr}");
    }
}
