//! Bad input gets a clear error naming repo, file and document, and loses nothing: every other
//! location keeps syncing and nothing already in the store is deleted.

use rigger::store::Store;

use crate::support::db::TestDb;
use crate::support::git::TestRepo;
use crate::support::rigger::{run, stdout, write_config};
use crate::support::{as_files, component, full_catalog, ROOT_CATALOG};

fn git_source(name: &str, url: &str) -> String {
    format!("  - name: {name}\n    git:\n      url: {url}\n      branch: main\n")
}

async fn descriptions(db: &TestDb) -> Vec<(String, String)> {
    let store = Store::connect(&db.url).await.unwrap();
    let entities = store.entities(None).await.unwrap();
    store.close().await;
    entities
        .iter()
        .map(|e| (e.entity_ref.clone(), e.body["metadata"]["description"].as_str().unwrap_or_default().to_owned()))
        .collect()
}

/// A repository with the full catalog, synced once into a fresh SQLite store.
fn synced_platform(dir: &std::path::Path) -> (TestDb, TestRepo, std::path::PathBuf) {
    let db = TestDb::sqlite(dir);
    let repo = TestRepo::new(dir, "platform");
    repo.commit("good", &as_files(&full_catalog()));
    let config = write_config(dir, &db.url, "127.0.0.1:0", &git_source("platform", &repo.file_url()));
    assert!(run(&config, &["sync", "--once"]).status.success());
    (db, repo, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_documents_keep_their_last_good_entities_while_siblings_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (db, repo, config) = synced_platform(dir.path());

    let root_with_junk = format!("{ROOT_CATALOG}---\n- just a list\n");
    repo.commit(
        "break things",
        &[
            ("catalog-info.yaml", Some(&root_with_junk)),
            ("services/billing/catalog-info.yaml", Some("kind: [unclosed\n")),
            ("services/search/catalog-info.yaml", Some(&component("search", "Finds more things"))),
        ],
    );
    let out = run(&config, &["sync", "--once"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("error: services/billing/catalog-info.yaml document 0: malformed YAML"), "{text}");
    assert!(
        text.contains("error: catalog-info.yaml document 3: document is not a mapping (found a sequence)"),
        "{text}"
    );

    let found = descriptions(&db).await;
    assert!(
        found.contains(&("component:default/billing".into(), "Sends invoices".into())),
        "last good billing kept: {found:?}"
    );
    assert!(
        found.contains(&("component:default/search".into(), "Finds more things".into())),
        "sibling synced: {found:?}"
    );
    assert!(found.iter().any(|(r, _)| r == "component:default/web"), "root's good documents kept: {found:?}");

    let again = run(&config, &["sync", "--once"]);
    assert_eq!(again.status.code(), Some(1), "errors persist while the commit is unchanged");
    assert!(stdout(&again).contains("0 added, 0 updated, 0 deleted, 4 unchanged, 2 error(s)"), "{}", stdout(&again));

    let store = Store::connect(&db.url).await.unwrap();
    let locations = store.locations().await.unwrap();
    let billing = locations.iter().find(|l| l.path == "services/billing/catalog-info.yaml").unwrap();
    assert_eq!(billing.state, "error");
    assert!(billing.errors.as_ref().unwrap()[0]["message"].as_str().unwrap().starts_with("malformed YAML"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_catalog_file_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (db, repo, config) = synced_platform(dir.path());
    let before = descriptions(&db).await;

    repo.commit("oops", &[("catalog-info.yaml", None)]);
    let out = run(&config, &["sync", "--once"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("error: catalog-info.yaml: not found in"), "{}", stdout(&out));
    assert_eq!(descriptions(&db).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn location_targets_cannot_escape_the_repository() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite(dir.path());
    let repo = TestRepo::new(dir.path(), "platform");
    let escaping = "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: { name: sneaky }\nspec:\n  targets: [../../../etc/passwd, /etc/hostname, https://example.com/x.yaml]\n";
    repo.commit("sneaky", &[("catalog-info.yaml", Some(escaping))]);
    let config = write_config(dir.path(), &db.url, "127.0.0.1:0", &git_source("platform", &repo.file_url()));
    let out = run(&config, &["sync", "--once"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text.contains("catalog-info.yaml document 0: target \"../../../etc/passwd\" escapes the repository"),
        "{text}"
    );
    assert!(text.contains("target \"/etc/hostname\" is an absolute path"), "{text}");
    assert!(text.contains("target \"https://example.com/x.yaml\" points outside this repository"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_remote_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite(dir.path());
    let repo = TestRepo::new(dir.path(), "platform");
    let commit = repo.commit("good", &as_files(&full_catalog()));
    let sources = format!(
        "{}{}",
        git_source("broken", &format!("file://{}/does-not-exist.git", dir.path().display())),
        git_source("platform", &repo.file_url())
    );
    let config = write_config(dir.path(), &db.url, "127.0.0.1:0", &sources);
    let out = run(&config, &["sync", "--once"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("broken: failed: cannot fetch file://"), "{text}");
    assert!(text.contains(&format!("platform: synced {commit}: 5 added")), "{text}");

    let store = Store::connect(&db.url).await.unwrap();
    let runs = store.sync_runs(10).await.unwrap();
    let broken = runs.iter().find(|r| r.source == "broken").expect("failed run recorded");
    assert!(broken.error.as_deref().unwrap().contains("does-not-exist.git"));
}

#[test]
fn a_database_that_is_down_is_a_clear_failure() {
    let dir = tempfile::tempdir().unwrap();
    let repo = TestRepo::new(dir.path(), "platform");
    repo.commit("good", &as_files(&full_catalog()));
    let port = crate::support::rigger::free_port();
    let db = format!("postgres://postgres@127.0.0.1:{port}/nothing");
    let config = write_config(dir.path(), &db, "127.0.0.1:0", &git_source("platform", &repo.file_url()));
    let out = run(&config, &["sync", "--once"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("rigger sync: database migration failed"), "{err}");
}
