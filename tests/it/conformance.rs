//! Backstage catalog semantics end to end: real git repositories synced by `rigger sync --once`,
//! read back through the daemon's catalog API.

use std::path::Path;

use serde_json::{json, Value};

use crate::support::db::TestDb;
use crate::support::git::TestRepo;
use crate::support::rigger::{free_port, run, stdout, write_config, Daemon};

const ROOT: &str = "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: { name: root }\nspec:\n  targets: [./org.yaml, ./services/*/catalog-info.yaml]\n";

const ORG: &str = "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: { name: team-a }\nspec: { type: team, children: [], members: [jane] }\n---\napiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: { name: jane }\nspec: { memberOf: [] }\n";

fn pay(owner: &str) -> String {
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {{ name: pay }}\nspec:\n  type: service\n  lifecycle: production\n  owner: {owner}\n  providesApis: [pay-api]\n  dependsOn: [resource:db]\n---\napiVersion: backstage.io/v1alpha1\nkind: API\nmetadata: {{ name: pay-api }}\nspec:\n  type: openapi\n  lifecycle: production\n  owner: team-a\n  definition:\n    $text: ./openapi.yaml\n"
    )
}

const OPENAPI: &str = "openapi: 3.0.0\ninfo: { title: Pay, version: 1.0.0 }\n";

struct Setup {
    dir: tempfile::TempDir,
    db: TestDb,
    repo: TestRepo,
    config: std::path::PathBuf,
    daemon: Daemon,
}

fn git_source(name: &str, url: &str) -> String {
    format!("  - name: {name}\n    interval: 1h\n    git:\n      url: {url}\n      branch: main\n")
}

/// A repository with the organisation and the pay service, synced once, and a daemon to read it.
async fn setup(extra_config: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite(dir.path());
    let repo = TestRepo::new(dir.path(), "platform");
    repo.commit(
        "catalog",
        &[
            ("catalog-info.yaml", Some(ROOT)),
            ("org.yaml", Some(ORG)),
            ("services/pay/catalog-info.yaml", Some(&pay("team-a"))),
            ("services/pay/openapi.yaml", Some(OPENAPI)),
        ],
    );
    let port = free_port();
    let sources = format!("{}{extra_config}", git_source("platform", &repo.file_url()));
    let config = write_config(dir.path(), &db.url, &format!("127.0.0.1:{port}"), &sources);
    let out = run(&config, &["sync", "--once"]);
    assert!(out.status.success(), "{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    let mut daemon = Daemon::start(&config, port);
    daemon.wait_for("/readyz", 200).await;
    Setup { dir, db, repo, config, daemon }
}

async fn entity(daemon: &Daemon, kind: &str, name: &str) -> (u16, Value) {
    daemon.get_json(&format!("/api/catalog/entities/by-name/{kind}/default/{name}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relations_placeholders_and_globs_through_the_api() {
    let s = setup("").await;
    let (_, pay) = entity(&s.daemon, "component", "pay").await;
    assert_eq!(
        pay["relations"],
        json!([
            {"type": "dependsOn", "targetRef": "resource:default/db"},
            {"type": "ownedBy", "targetRef": "group:default/team-a"},
            {"type": "providesApi", "targetRef": "api:default/pay-api"},
        ])
    );
    let (_, team) = entity(&s.daemon, "group", "team-a").await;
    assert_eq!(
        team["relations"],
        json!([
            {"type": "hasMember", "targetRef": "user:default/jane"},
            {"type": "ownerOf", "targetRef": "api:default/pay-api"},
            {"type": "ownerOf", "targetRef": "component:default/pay"},
        ])
    );
    let (_, jane) = entity(&s.daemon, "user", "jane").await;
    assert_eq!(
        jane["relations"],
        json!([{"type": "memberOf", "targetRef": "group:default/team-a"}]),
        "declared by the group"
    );

    let (_, api) = entity(&s.daemon, "api", "pay-api").await;
    assert_eq!(api["spec"]["definition"], OPENAPI, "$text read from the same commit");
    assert!(pay["metadata"]["annotations"]["backstage.io/managed-by-location"]
        .as_str()
        .unwrap()
        .ends_with("/services/pay/catalog-info.yaml"));

    let (_, owned) = s.daemon.get_json("/api/catalog/entities?filter=relations.ownedby=group:default/team-a").await;
    assert_eq!(owned.as_array().unwrap().len(), 2);
    let (_, status) = s.daemon.get_json("/api/rigger/sources").await;
    let source = &status["items"][0];
    assert_eq!((source["name"].as_str(), source["error"].is_null()), (Some("platform"), true));
    assert_eq!(source["revision"].as_str().map(str::len), Some(40), "{source}");
    assert!(source["lastSuccessSeconds"].as_i64().is_some(), "the daemon's own pass succeeded: {source}");
    assert_eq!(source["locations"].as_array().unwrap().len(), 3, "root, org.yaml, services/pay: {source}");
    let (_, dangling) = s.daemon.get_json("/api/rigger/relations/unresolved").await;
    assert_eq!(
        dangling["items"],
        json!([{"source": "component:default/pay", "type": "dependsOn", "target": "resource:default/db"}])
    );
    assert!(s.daemon.get_text("/metrics").await.contains("rigger_catalog_unresolved_relations 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_file_keeps_its_entities_and_uids() {
    let s = setup("").await;
    let (_, before) = entity(&s.daemon, "component", "pay").await;
    s.repo.commit(
        "rename the service folder",
        &[
            ("services/pay/catalog-info.yaml", None),
            ("services/pay/openapi.yaml", None),
            ("services/payments/catalog-info.yaml", Some(&pay("team-a"))),
            ("services/payments/openapi.yaml", Some(OPENAPI)),
        ],
    );
    let out = run(&s.config, &["sync", "--once"]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("0 added, 2 updated, 0 deleted"), "both entities adopted: {}", stdout(&out));
    let (_, after) = entity(&s.daemon, "component", "pay").await;
    assert_eq!(after["metadata"]["uid"], before["metadata"]["uid"]);
    assert!(after["metadata"]["annotations"]["backstage.io/managed-by-location"]
        .as_str()
        .unwrap()
        .ends_with("/services/payments/catalog-info.yaml"));
    let (_, all) = s.daemon.get_json("/api/catalog/entities?filter=metadata.name=pay").await;
    assert_eq!(all.as_array().unwrap().len(), 1, "no stale duplicate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_document_keeps_its_last_good_version_with_status() {
    let s = setup("").await;
    let broken = pay("team-a").replace("  owner: team-a\n  providesApis", "  providesApis").replace(
        "lifecycle: production\n  owner: team-a\n  definition",
        "lifecycle: deprecated\n  owner: team-a\n  definition",
    );
    s.repo.commit("drop the owner, deprecate the API", &[("services/pay/catalog-info.yaml", Some(&broken))]);
    let out = run(&s.config, &["sync", "--once"]);
    assert_eq!(out.status.code(), Some(1));
    let (status, kept) = entity(&s.daemon, "component", "pay").await;
    assert_eq!(status, 200, "the last good version stays");
    assert_eq!(kept["spec"]["owner"], "team-a");
    let item = &kept["status"]["items"][0];
    assert_eq!(
        (item["type"].as_str(), item["level"].as_str()),
        (Some("backstage.io/catalog-processing"), Some("error"))
    );
    assert!(item["message"].as_str().unwrap().contains("must have required property 'owner'"), "{item}");
    let (_, api) = entity(&s.daemon, "api", "pay-api").await;
    assert!(api.get("status").is_none());
    assert_eq!(api["spec"]["lifecycle"], "deprecated", "its healthy sibling is not frozen: the edit landed");

    s.repo.commit("restore", &[("services/pay/catalog-info.yaml", Some(&pay("team-b")))]);
    assert!(run(&s.config, &["sync", "--once"]).status.success());
    let (_, fixed) = entity(&s.daemon, "component", "pay").await;
    assert_eq!(fixed["spec"]["owner"], "team-b");
    assert!(fixed.get("status").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_are_kept_and_annotated_with_the_keep_strategy() {
    let s = setup("catalog:\n  orphan_strategy: keep\n").await;
    s.repo.commit("drop jane", &[("org.yaml", Some(ORG.split("---").next().unwrap()))]);
    assert!(run(&s.config, &["sync", "--once"]).status.success());
    let (status, jane) = entity(&s.daemon, "user", "jane").await;
    assert_eq!(status, 200);
    assert_eq!(jane["metadata"]["annotations"]["backstage.io/orphan"], "true");

    s.repo.commit("jane is back", &[("org.yaml", Some(ORG))]);
    assert!(run(&s.config, &["sync", "--once"]).status.success());
    let (_, jane) = entity(&s.daemon, "user", "jane").await;
    assert!(jane["metadata"]["annotations"].get("backstage.io/orphan").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_are_deleted_with_the_default_strategy() {
    let s = setup("").await;
    s.repo.commit("drop jane", &[("org.yaml", Some(ORG.split("---").next().unwrap()))]);
    assert!(run(&s.config, &["sync", "--once"]).status.success());
    assert_eq!(entity(&s.daemon, "user", "jane").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_claimant_keeps_a_contested_entity() {
    let s = setup("").await;
    let other = TestRepo::new(s.dir.path(), "other");
    other.commit("claims pay", &[("catalog-info.yaml", Some(&pay("team-z"))), ("openapi.yaml", Some(OPENAPI))]);
    let both = format!("{}{}", git_source("platform", &s.repo.file_url()), git_source("other", &other.file_url()));
    let config = write_config(s.dir.path(), &s.db.url, "127.0.0.1:0", &both);
    let out = run(&config, &["sync", "--once"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(text.contains("entity component:default/pay is already managed by url:file://"), "{text}");
    let (_, kept) = entity(&s.daemon, "component", "pay").await;
    assert_eq!(kept["spec"]["owner"], "team-a", "the first claimant keeps it");

    // The first claimant lets go: the other repository takes over without a new commit of its own.
    s.repo.commit("retire pay", &[("services/pay/catalog-info.yaml", None), ("services/pay/openapi.yaml", None)]);
    run(&config, &["sync", "--once"]);
    let out = run(&config, &["sync", "--once"]);
    assert!(out.status.success(), "{}", stdout(&out));
    let (_, taken) = entity(&s.daemon, "component", "pay").await;
    assert_eq!(taken["spec"]["owner"], "team-z");
    let (_, team) = entity(&s.daemon, "group", "team-a").await;
    let owned: Vec<&str> = team["relations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["type"] == "ownerOf")
        .map(|r| r["targetRef"].as_str().unwrap())
        .collect();
    assert_eq!(
        owned,
        ["api:default/pay-api"],
        "the old owner no longer owns pay; its relation rows went with the takeover"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_outside_the_repository_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite(dir.path());
    let repo = TestRepo::new(dir.path(), "hostile");
    let root = "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: { name: root }\nspec:\n  targets: [./api.yaml, /etc/passwd, ./link.yaml, ./etc/passwd]\n";
    let api = pay("team-a").split("---\n").nth(1).unwrap().replace("./openapi.yaml", "../../../etc/passwd");
    repo.commit("hostile", &[("catalog-info.yaml", Some(root)), ("api.yaml", Some(&api))]);
    repo.symlink("link.yaml", "/etc/passwd");
    repo.symlink("etc", "/etc");
    let commit = repo.commit("links", &[]);
    let config = write_config(dir.path(), &db.url, "127.0.0.1:0", &git_source("hostile", &repo.file_url()));
    let out = run(&config, &["sync", "--once"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(&format!("hostile: synced {commit}")), "{text}");
    assert!(
        text.contains("api.yaml document 0: Placeholder $text target ../../../etc/passwd escapes the repository"),
        "{text}"
    );
    assert!(text.contains("target \"/etc/passwd\" is an absolute path"), "{text}");
    assert!(text.contains("link.yaml: link.yaml resolves outside the source directory"), "{text}");
    assert!(text.contains("etc/passwd: not found in"), "a link to a directory is not followed: {text}");
    let store = rigger::store::Store::connect(&db.url).await.unwrap();
    for entity in store.entities(None).await.unwrap() {
        assert!(!entity.body.to_string().contains("root:x:0:0"), "nothing from /etc/passwd: {}", entity.entity_ref);
    }
    assert!(Path::new("/etc/passwd").exists(), "the probe file exists, so the test means something");
}

/// Serves `body` at every path on a loopback port, like a documentation host would.
async fn docs_server(body: &'static str) -> u16 {
    let app = axum::Router::new().fallback(move || async move { body });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_placeholders_are_read_only_from_allowed_hosts() {
    let port = docs_server("openapi: 3.1.0\n").await;
    let s = setup(&format!("catalog:\n  placeholder_hosts: ['127.0.0.1:{port}']\n")).await;
    let api = |name: &str, url: &str| {
        format!("apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata: {{ name: {name} }}\nspec:\n  type: openapi\n  lifecycle: production\n  owner: team-a\n  definition:\n    $text: {url}\n")
    };
    let allowed = api("remote-ok", &format!("http://127.0.0.1:{port}/api.yaml"));
    let refused = api("remote-refused", &format!("http://localhost:{port}/api.yaml"));
    // Another port of the allowed host is another service: refused too.
    let other_port = api("remote-other-port", &format!("http://127.0.0.1:{}/api.yaml", port ^ 1));
    let file = format!("{allowed}---\n{refused}---\n{other_port}");
    s.repo.commit("remote apis", &[("services/remote/catalog-info.yaml", Some(&file))]);
    let out = run(&s.config, &["sync", "--once"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("only relative paths and hosts listed in catalog.placeholder_hosts are read"),
        "{}",
        stdout(&out)
    );
    let (_, ok) = entity(&s.daemon, "api", "remote-ok").await;
    assert_eq!(ok["spec"]["definition"], "openapi: 3.1.0\n");
    assert_eq!(entity(&s.daemon, "api", "remote-refused").await.0, 404);
    assert_eq!(entity(&s.daemon, "api", "remote-other-port").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_entity_whose_document_fails_is_not_lost() {
    let s = setup("").await;
    let (_, before) = entity(&s.daemon, "component", "pay").await;
    let broken = pay("team-a").replace("  owner: team-a\n  providesApis", "  providesApis");
    s.repo.commit(
        "move and break",
        &[
            ("services/pay/catalog-info.yaml", None),
            ("services/pay/openapi.yaml", None),
            ("services/moved/catalog-info.yaml", Some(&broken)),
            ("services/moved/openapi.yaml", Some(OPENAPI)),
        ],
    );
    run(&s.config, &["sync", "--once"]);
    let (status, after) = entity(&s.daemon, "component", "pay").await;
    assert_eq!(status, 200, "the last good version survives the move");
    assert_eq!(after["metadata"]["uid"], before["metadata"]["uid"]);
    assert_eq!(after["spec"]["owner"], "team-a");
    assert!(after["status"]["items"][0]["message"].as_str().unwrap().contains("owner"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etags_change_when_relations_change() {
    let s = setup("").await;
    let (_, before) = entity(&s.daemon, "user", "jane").await;
    let org = ORG.replace("members: [jane]", "members: []");
    s.repo.commit("jane leaves team-a", &[("org.yaml", Some(&org))]);
    assert!(run(&s.config, &["sync", "--once"]).status.success());
    let (_, after) = entity(&s.daemon, "user", "jane").await;
    assert_eq!(after["relations"], json!([]), "the group's declaration is gone");
    assert_ne!(after["metadata"]["etag"], before["metadata"]["etag"], "jane's own file did not change, her entity did");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_are_followed_inside_the_repository_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite(dir.path());
    let repo = TestRepo::new(dir.path(), "links");
    let api = |name: &str, target: &str| {
        format!("apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata: {{ name: {name} }}\nspec:\n  type: openapi\n  lifecycle: production\n  owner: team-a\n  definition:\n    $text: {target}\n")
    };
    let catalog = format!("{}---\n{}", api("inside", "./docs/api.yaml"), api("outside", "./docs/escape.yaml"));
    repo.commit("files", &[("catalog-info.yaml", Some(&catalog)), ("specs/api.yaml", Some(OPENAPI))]);
    std::fs::create_dir_all(dir.path().join("links-work/docs")).unwrap();
    repo.symlink("docs/api.yaml", "../specs/api.yaml");
    repo.symlink("docs/escape.yaml", "../../../../etc/hostname");
    repo.commit("links", &[]);
    let config = write_config(dir.path(), &db.url, "127.0.0.1:0", &git_source("links", &repo.file_url()));
    let out = run(&config, &["sync", "--once"]);
    assert!(stdout(&out).contains("docs/escape.yaml resolves outside the source directory"), "{}", stdout(&out));
    let store = rigger::store::Store::connect(&db.url).await.unwrap();
    let inside = store.entity("api:default/inside").await.unwrap().expect("the in-repository link was followed");
    assert_eq!(inside.body["spec"]["definition"], OPENAPI);
    assert!(store.entity("api:default/outside").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_placeholders_do_not_follow_redirects() {
    let app =
        axum::Router::new().fallback(|| async { axum::response::Redirect::temporary("http://169.254.169.254/latest") });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let s = setup(&format!("catalog:\n  placeholder_hosts: ['127.0.0.1:{port}']\n")).await;
    let doc = format!("apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata: {{ name: redirected }}\nspec:\n  type: openapi\n  lifecycle: production\n  owner: team-a\n  definition:\n    $text: http://127.0.0.1:{port}/api.yaml\n");
    s.repo.commit("redirect", &[("services/redirect/catalog-info.yaml", Some(&doc))]);
    let out = run(&s.config, &["sync", "--once"]);
    assert!(stdout(&out).contains("redirects are not followed"), "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facet_counts_follow_changes_made_by_any_process() {
    let s = setup("").await;
    let count = |facets: &Value| {
        facets["facets"]["kind"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["value"] == "Component")
            .map(|v| v["count"].clone())
    };
    let (_, before) = s.daemon.get_json("/api/catalog/entity-facets?facet=kind").await;
    let (_, cached) = s.daemon.get_json("/api/catalog/entity-facets?facet=kind").await;
    assert_eq!((count(&before), count(&cached)), (Some(json!(1)), Some(json!(1))));
    s.repo.commit(
        "a second service",
        &[(
            "services/more/catalog-info.yaml",
            Some(
                &pay("team-a")
                    .replace("name: pay }", "name: more }")
                    .replace("pay-api", "more-api")
                    .replace("$text: ./openapi.yaml", "$text: ../pay/openapi.yaml"),
            ),
        )],
    );
    let out = run(&s.config, &["sync", "--once"]);
    assert!(out.status.success(), "{}", stdout(&out));
    // Another process wrote: the daemon's cached counts must not outlive the change.
    let (_, after) = s.daemon.get_json("/api/catalog/entity-facets?facet=kind").await;
    assert_eq!(count(&after), Some(json!(2)), "{after}");
}
