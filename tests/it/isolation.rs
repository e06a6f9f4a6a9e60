//! Failure isolation: one bad document, file or cache fails only itself, visibly, on both
//! backends — long values, hostile YAML, held deletions, broken caches, organisation-sized files.
#![allow(clippy::format_collect)] // test inputs, built for readability

use rigger::store::Store;
use serde_json::Value;

use crate::support::component;
use crate::support::db::TestDb;
use crate::support::git::TestRepo;
use crate::support::rigger::{run, stdout, write_config};

fn git_source(name: &str, url: &str) -> String {
    format!("  - name: {name}\n    git:\n      url: {url}\n      branch: main\n")
}

async fn bodies(db: &TestDb) -> std::collections::BTreeMap<String, Value> {
    let store = Store::connect(&db.url).await.unwrap();
    let entities = store.entities(None).await.unwrap();
    store.close().await;
    entities.into_iter().map(|e| (e.entity_ref, e.body)).collect()
}

/// Random-looking text, as base64 blobs and certificates are: nothing for compression to find.
fn incompressible(len: usize) -> String {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[(state % 64) as usize])
        })
        .collect()
}

const ROOT: &str = "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: root\nspec:\n  targets: [./services/*.yaml]\n";

/// A one-shot config syncing `repo` as the source `platform` into `db`.
fn platform_config(db: &TestDb, dir: &std::path::Path, repo: &TestRepo) -> std::path::PathBuf {
    write_config(dir, &db.url, "127.0.0.1:0", &git_source("platform", &repo.file_url()))
}

fn repo_with(dir: &std::path::Path, files: &[(&str, Option<&str>)]) -> TestRepo {
    let repo = TestRepo::new(dir, "platform");
    let mut all = vec![("catalog-info.yaml", Some(ROOT))];
    all.extend_from_slice(files);
    repo.commit("initial", &all);
    repo
}

// Long values -------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_long_incompressible_values_are_stored_and_searchable() {
    let dir = tempfile::tempdir().unwrap();
    long_values(&TestDb::sqlite(dir.path()), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_long_incompressible_values_are_stored_and_searchable() {
    let dir = tempfile::tempdir().unwrap();
    long_values(&TestDb::postgres().await, dir.path()).await;
}

async fn long_values(db: &TestDb, dir: &std::path::Path) {
    let blob = incompressible(9_000);
    let long = format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: certs\n  description: {blob}\n  annotations:\n    acme.io/ca-bundle: {blob}\n  {key}: x\nspec: {{ type: service, lifecycle: production, owner: team-a }}\n",
        key = "k".repeat(250),
    );
    let sibling = component("billing", "Sends invoices");
    let repo = repo_with(dir, &[("services/certs.yaml", Some(&long)), ("services/billing.yaml", Some(&sibling))]);
    let config = platform_config(db, dir, &repo);
    let out = run(&config, &["sync", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));

    let found = bodies(db).await;
    assert_eq!(found["component:default/certs"]["metadata"]["description"], Value::String(blob.clone()));
    assert!(found.contains_key("component:default/billing"));

    // Filters and facets behave as Backstage's: a long value is not matched by value, but
    // `exists` finds it; short values of the same entity still match.
    let store = Store::connect(&db.url).await.unwrap();
    let by = |filter: &str| rigger::store::EntityQuery {
        filter: rigger::catalog::search::Filter::parse(&[filter]).unwrap(),
        ..rigger::store::EntityQuery::default()
    };
    let exists = store.query_refs(&by("metadata.annotations.acme.io/ca-bundle")).await.unwrap().0;
    assert_eq!(exists, vec!["component:default/certs"]);
    let by_value = store.query_refs(&by(&format!("metadata.annotations.acme.io/ca-bundle={blob}"))).await.unwrap().0;
    assert!(by_value.is_empty(), "{by_value:?}");
    let by_name = store.query_refs(&by("metadata.name=certs")).await.unwrap().0;
    assert_eq!(by_name, vec!["component:default/certs"]);
    store.close().await;
}

// A row the database refuses ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_value_the_database_refuses_fails_only_its_document() {
    let dir = tempfile::tempdir().unwrap();
    refused_value(&TestDb::sqlite(dir.path()), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_value_the_database_refuses_fails_only_its_document() {
    let dir = tempfile::tempdir().unwrap();
    refused_value(&TestDb::postgres().await, dir.path()).await;
}

/// PostgreSQL's text cannot hold a NUL character; YAML's `"\0"` writes one. SQLite stores it.
async fn refused_value(db: &TestDb, dir: &std::path::Path) {
    let nul = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: nul\n  title: \"a\\0b\"\nspec: { type: service, lifecycle: production, owner: team-a }\n";
    let same_file = format!("{nul}---\n{}", component("neighbour", "Same file"));
    let sibling = component("billing", "Sends invoices");
    let repo = repo_with(dir, &[("services/nul.yaml", Some(&same_file)), ("services/billing.yaml", Some(&sibling))]);
    let config = platform_config(db, dir, &repo);
    let out = run(&config, &["sync", "--once"]);
    let text = stdout(&out);
    let found = bodies(db).await;
    assert!(found.contains_key("component:default/neighbour"), "same file's other document stored: {text}");
    assert!(found.contains_key("component:default/billing"), "sibling file stored: {text}");
    if db.url.starts_with("postgres") {
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(text.contains("component:default/nul cannot be stored"), "{text}");
        assert!(!found.contains_key("component:default/nul"));
    } else {
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert_eq!(found["component:default/nul"]["metadata"]["title"], "a\u{0}b");
    }
}

// Deletions -----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_broken_file_holds_back_only_the_deletions_it_could_cause() {
    let dir = tempfile::tempdir().unwrap();
    held_deletions(&TestDb::sqlite(dir.path()), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_broken_file_holds_back_only_the_deletions_it_could_cause() {
    let dir = tempfile::tempdir().unwrap();
    held_deletions(&TestDb::postgres().await, dir.path()).await;
}

async fn held_deletions(db: &TestDb, dir: &std::path::Path) {
    let teams = "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: teams\nspec:\n  targets: [./team-x.yaml]\n";
    let team_x = "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: team-x\nspec: { type: team, children: [] }\n";
    let root = "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: root\nspec:\n  targets: [./services/*.yaml, ./teams/catalog-info.yaml]\n";
    let repo = TestRepo::new(dir, "platform");
    let (a, b) = (component("a", "A"), component("b", "B"));
    repo.commit(
        "initial",
        &[
            ("catalog-info.yaml", Some(root)),
            ("services/a.yaml", Some(&a)),
            ("services/b.yaml", Some(&b)),
            ("teams/catalog-info.yaml", Some(teams)),
            ("teams/team-x.yaml", Some(team_x)),
        ],
    );
    let config = platform_config(db, dir, &repo);
    assert!(run(&config, &["sync", "--once"]).status.success());

    // One file breaks, a Location file breaks and the file it led to goes, an unrelated file goes.
    repo.commit(
        "break and delete",
        &[
            ("services/a.yaml", Some("kind: [unclosed\n")),
            ("services/b.yaml", None),
            ("teams/catalog-info.yaml", Some("spec: [unclosed\n")),
            ("teams/team-x.yaml", None),
        ],
    );
    let out = run(&config, &["sync", "--once"]);
    let logged = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let found = bodies(db).await;
    assert!(!found.contains_key("component:default/b"), "the unrelated deletion went ahead: {found:?}");
    assert!(found.contains_key("component:default/a"), "a broken file keeps its last good entities");
    assert!(found.contains_key("group:default/team-x"), "what the broken Location led to is held");
    assert!(logged.contains("no longer reached"), "the hold is told: {logged}");

    let store = Store::connect(&db.url).await.unwrap();
    let locations = store.locations().await.unwrap();
    store.close().await;
    let team_file = locations.iter().find(|l| l.path == "teams/team-x.yaml").expect("held location kept");
    let location_file = locations.iter().find(|l| l.path == "teams/catalog-info.yaml").unwrap();
    assert_eq!(team_file.held_by.as_ref(), Some(&location_file.location_key), "held by the broken Location file");
    assert!(locations.iter().all(|l| l.path != "services/b.yaml"));

    // Told once: the next pass at the same commit holds it without saying so again.
    let again = run(&config, &["sync", "--once"]);
    assert!(!String::from_utf8_lossy(&again.stderr).contains("no longer reached"));

    // Fixed: the Location no longer leads to the file, and only now is it deleted.
    repo.commit("fix", &[("teams/catalog-info.yaml", Some(&teams.replace("./team-x.yaml", "./team-y.yaml")))]);
    let _ = run(&config, &["sync", "--once"]);
    assert!(!bodies(db).await.contains_key("group:default/team-x"));
}

// Caches and the shipped config ------------------------------------------------------------

/// The README's first command syncs every shipped source (checked as `sync --once` on a copy of
/// `config/rigger.yaml` pointing at this checkout), and a broken git cache heals.
#[test]
fn the_shipped_config_syncs_every_source_and_a_broken_cache_heals() {
    let checkout = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let shipped = std::fs::read_to_string(checkout.join("config/rigger.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rigger.yaml");
    let text = shipped
        .replace("url: ..\n", &format!("url: {}\n", checkout.display()))
        .replace("path: ../examples\n", &format!("path: {}\n", checkout.join("examples").display()));
    assert_ne!(text, shipped, "the shipped config names this checkout and its examples");
    std::fs::write(&config, text).unwrap();
    let out = run(&config, &["sync", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    for source in ["self", "examples"] {
        assert!(stdout(&out).contains(&format!("{source}: synced")), "{}", stdout(&out));
    }

    // A cache without its objects (as a half-copied or committed one is) is moved aside and
    // cloned again, instead of failing the source on every pass.
    let cache = dir.path().join(".rigger-cache/self.git");
    std::fs::remove_dir_all(cache.join("objects")).unwrap();
    let out = run(&config, &["sync", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join(".rigger-cache/self.git.broken").is_dir(), "the broken cache is kept aside");
    assert!(String::from_utf8_lossy(&out.stderr).contains("moved aside"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_never_synced_shows_in_readiness_and_status() {
    use crate::support::rigger::{free_port, Daemon};
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("catalog")).unwrap();
    std::fs::write(dir.path().join("catalog/catalog-info.yaml"), component("svc", "Fine")).unwrap();
    let db = TestDb::sqlite(dir.path());
    let port = free_port();
    let missing = dir.path().join("no-such-repo");
    let sources = format!(
        "  - name: good\n    interval: 1h\n    local:\n      path: catalog\n{}",
        git_source("broken", &format!("file://{}", missing.display()))
    );
    let config = write_config(dir.path(), &db.url, &format!("127.0.0.1:{port}"), &sources);
    let mut daemon = Daemon::start(&config, port);
    daemon.wait_for("/readyz", 200).await;
    let (_, ready) = daemon.get_json("/readyz").await;
    assert_eq!(ready["checks"]["sources"]["not_synced"], serde_json::json!(["broken"]), "{ready}");
    let (_, status) = daemon.get_json("/api/rigger/sources").await;
    let broken = status["items"].as_array().unwrap().iter().find(|s| s["name"] == "broken").expect("listed");
    assert!(broken["error"].as_str().is_some_and(|e| !e.is_empty()), "{status}");
    assert_eq!(broken["lastSuccessSeconds"], Value::Null);
    let metrics = daemon.get_text("/metrics").await;
    for series in [
        "rigger_location_deletions_held{source=\"good\"} 0",
        "rigger_catalog_panics_total{source=\"good\"} 0",
        "rigger_git_cache_rebuilds_total{source=\"broken\"} 0",
    ] {
        assert!(metrics.contains(series), "missing {series}");
    }
    daemon.terminate();
}

// Hostile YAML --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_aliases_across_documents_fail_their_documents_and_the_pass_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    cross_document_aliases(&TestDb::sqlite(dir.path()), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_aliases_across_documents_fail_their_documents_and_the_pass_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    cross_document_aliases(&TestDb::postgres().await, dir.path()).await;
}

/// Aliases that no document of the file defines: errors of their documents, never a panic.
async fn cross_document_aliases(db: &TestDb, dir: &std::path::Path) {
    let first = component("first", "Defines the anchor").replace("spec:", "spec: &spec");
    let file = format!(
        "{first}---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: second
spec: *spec
---
metadata: *nowhere
---
{}",
        component("last", "After the bad ones")
    );
    let sibling = component("billing", "Sends invoices");
    let repo = repo_with(dir, &[("services/aliases.yaml", Some(&file)), ("services/billing.yaml", Some(&sibling))]);
    let config = platform_config(db, dir, &repo);
    let out = run(&config, &["sync", "--once"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "document errors, not a failed pass: {text}");
    assert!(text.contains("services/aliases.yaml document 1: unresolved alias"), "{text}");
    assert!(!text.contains("panicked") && !text.contains("blocking task"), "{text}");
    let found = bodies(db).await;
    for name in ["first", "last", "billing"] {
        assert!(found.contains_key(&format!("component:default/{name}")), "{name} synced: {text}");
    }
}

/// The file that took the agent down: a 25,000-scalar anchor aliased 25,000 times (~125 KB).
fn alias_bomb() -> String {
    let list: String = (0..25_000).map(|i| format!("{},", i % 10)).collect();
    let uses: String = (0..25_000).map(|i| format!("    k{i}: *a\n")).collect();
    format!("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: bomb\n  x: &a [{list}]\n  y:\n{uses}spec: {{ type: service, lifecycle: production, owner: team-a }}\n")
}

/// Comfortably above a debug build's own footprint, far below the gigabytes the bomb took.
const PEAK_RSS_CEILING_KIB: u64 = 300 * 1024;

#[test]
fn validate_refuses_an_alias_bomb_in_bounded_memory_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("catalog-info.yaml");
    std::fs::write(&file, alias_bomb()).unwrap();
    let (out, peak) = crate::support::rigger::run_measured(&["validate", "--format", "json", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "an error verdict, not a crash: {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&out).contains("resource exhaustion") || stdout(&out).contains("expand"), "{}", stdout(&out));
    assert!(peak < PEAK_RSS_CEILING_KIB, "peak RSS {peak} KiB");

    // Aliases across documents and undefined aliases are errors of their documents, not panics.
    let cross =
        format!("{}---\nspec: *spec\n---\nmetadata: *nowhere\n", component("a", "A").replace("spec:", "spec: &spec"));
    std::fs::write(&file, cross).unwrap();
    let out = crate::support::rigger::rigger().args(["validate", "--format", "json"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["ok"], true);
    assert!(lines[1..].iter().all(|l| l["ok"] == false), "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_refuses_an_alias_bomb_once_per_commit_and_syncs_its_siblings() {
    use crate::support::rigger::{free_port, Daemon, DEADLINE};
    let dir = tempfile::tempdir().unwrap();
    let bomb = alias_bomb();
    let sibling = component("billing", "Sends invoices");
    let repo = repo_with(dir.path(), &[("services/bomb.yaml", Some(&bomb)), ("services/billing.yaml", Some(&sibling))]);
    let db = TestDb::sqlite(dir.path());
    let port = free_port();
    let sources =
        format!("  - name: platform\n    interval: 1s\n    git:\n      url: {}\n      branch: main\n", repo.file_url());
    let config = write_config(dir.path(), &db.url, &format!("127.0.0.1:{port}"), &sources);
    let mut daemon = Daemon::start(&config, port);
    daemon.wait_for("/readyz", 200).await;
    let (_, listed) = daemon.get_json("/api/catalog/entities/by-name/component/default/billing").await;
    assert_eq!(listed["metadata"]["name"], "billing", "the sibling synced");

    // Polls go on every second; wait until three have seen the unchanged commit.
    let unchanged = || async {
        let metrics = daemon.get_text("/metrics").await;
        let line = metrics
            .lines()
            .find(|l| l.starts_with("rigger_sync_runs_total{outcome=\"unchanged\",source=\"platform\"}"));
        line.and_then(|l| l.rsplit(' ').next()).and_then(|n| n.parse::<u64>().ok()).unwrap_or(0)
    };
    let started = std::time::Instant::now();
    while unchanged().await < 3 {
        assert!(started.elapsed() < DEADLINE, "no unchanged polls");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let metrics = daemon.get_text("/metrics").await;
    assert!(
        metrics.contains("rigger_sync_runs_total{outcome=\"success\",source=\"platform\"} 1"),
        "the refused file was read once, not on every poll:\n{metrics}"
    );
    let (_, status) = daemon.get_json("/api/rigger/sources").await;
    let text = status.to_string();
    assert!(text.contains("resource exhaustion") || text.contains("expand"), "{text}");
    assert_eq!(daemon.get_json("/healthz").await.0, 200);
    let peak = daemon.peak_rss_kib();
    assert!(peak < PEAK_RSS_CEILING_KIB, "peak RSS {peak} KiB");
    daemon.terminate();
}

// Organisation-sized files -------------------------------------------------------------------

/// An organisation file as exported from LDAP or GitHub: 20,000 users and groups, about 4 MB.
fn org_file(users: usize) -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    for i in 0..users {
        let group = i % 200;
        let _ = write!(
            text,
            "---\napiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: user-{i:05}\n  description: Engineer number {i} of the organisation, member of team {group}\n  annotations:\n    github.com/user-login: user-{i:05}\n    acme.io/employee-id: \"{i:08}\"\nspec:\n  profile:\n    displayName: User Number {i}\n    email: user-{i:05}@example.com\n  memberOf: [team-{group:03}]\n"
        );
    }
    text
}

/// One 4 MB file is written in one transaction, its entities, relations and search rows all in
/// memory at once: about 270 MiB in a debug build (docs/benchmarks.md). The ceiling leaves room
/// for a busy machine and catches memory that grows with more than the file.
const ORG_FILE_CEILING_KIB: u64 = 512 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_twenty_thousand_entity_file_is_taken_whole_and_the_document_cap_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    organisation_file(&TestDb::sqlite(dir.path()), dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_twenty_thousand_entity_file_is_taken_whole_and_the_document_cap_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    organisation_file(&TestDb::postgres().await, dir.path());
}

fn organisation_file(db: &TestDb, dir: &std::path::Path) {
    let org = org_file(20_000);
    assert!(org.len() > 4_000_000, "about 4 MB: {}", org.len());
    let repo = TestRepo::new(dir, "org");
    repo.commit("org", &[("catalog-info.yaml", Some(&org))]);
    let config = write_config(dir, &db.url, "127.0.0.1:0", &git_source("org", &repo.file_url()));
    let (out, peak) = crate::support::rigger::run_measured(&["--config", config.to_str().unwrap(), "sync", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&out).contains("20000 added"), "{}", stdout(&out));
    eprintln!("peak RSS syncing a 20,000-entity file: {peak} KiB");
    assert!(peak < ORG_FILE_CEILING_KIB, "memory follows the largest file: peak RSS {peak} KiB");

    // With a lower cap the file gets one error past it; what it read is kept, nothing deleted.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}catalog:\n  max_documents_per_file: 1000\n")).unwrap();
    repo.commit("touch", &[("README.md", Some("org\n"))]);
    let out = run(&config, &["sync", "--once"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("max_documents_per_file"), "{}", stdout(&out));
    assert!(stdout(&out).contains("0 deleted"), "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_file_two_locations_lead_to_is_held_while_either_is_broken() {
    let dir = tempfile::tempdir().unwrap();
    diamond(&TestDb::sqlite(dir.path()), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_file_two_locations_lead_to_is_held_while_either_is_broken() {
    let dir = tempfile::tempdir().unwrap();
    diamond(&TestDb::postgres().await, dir.path()).await;
}

async fn diamond(db: &TestDb, dir: &std::path::Path) {
    let location = |name: &str, targets: &str| {
        format!("apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: {name}\nspec:\n  targets: [{targets}]\n")
    };
    let root = location("root", "./a.yaml, ./b.yaml");
    let (a, b) = (location("a", "./shared.yaml"), location("b", "./shared.yaml"));
    let shared = component("shared", "Reached twice");
    let repo = TestRepo::new(dir, "platform");
    let files = [("catalog-info.yaml", Some(root.as_str())), ("a.yaml", Some(&a)), ("b.yaml", Some(&b))];
    repo.commit("diamond", &[&files[..], &[("shared.yaml", Some(shared.as_str()))]].concat());
    let config = platform_config(db, dir, &repo);
    assert!(run(&config, &["sync", "--once"]).status.success());

    // A stops leading to the shared file, and B breaks: B may still lead there, so it is held.
    repo.commit(
        "a lets go, b breaks",
        &[("a.yaml", Some(&location("a", "./other.yaml"))), ("b.yaml", Some("kind: [\n"))],
    );
    let out = run(&config, &["sync", "--once"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(bodies(db).await.contains_key("component:default/shared"), "held: {}", stdout(&out));

    // B is fixed and no longer leads there either: now it goes.
    repo.commit("b fixed", &[("b.yaml", Some(&location("b", "./other.yaml")))]);
    let _ = run(&config, &["sync", "--once"]);
    assert!(!bodies(db).await.contains_key("component:default/shared"));
}
