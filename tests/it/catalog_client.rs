//! Rigger's catalog API driven by Backstage's own client library (`@backstage/catalog-client`,
//! installed by `scripts/install-test-deps`): what Backstage's frontend and plugins would see.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::support::db::TestDb;
use crate::support::git::TestRepo;
use crate::support::rigger::{free_port, run, write_config, Daemon};

const CATALOG: &str = "apiVersion: backstage.io/v1alpha1
kind: Group
metadata: { name: team-a }
spec: { type: team, children: [] }
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: { name: pay }
spec: { type: service, lifecycle: production, owner: team-a, providesApis: [pay-api] }
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: { name: shop }
spec: { type: website, lifecycle: production, owner: team-a }
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata: { name: pay-api }
spec: { type: openapi, lifecycle: production, owner: team-a, definition: 'openapi: 3.0.0' }
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backstages_catalog_client_reads_rigger_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite(dir.path());
    client_reads_rigger(dir.path(), &db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backstages_catalog_client_reads_rigger_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::postgres().await;
    client_reads_rigger(dir.path(), &db).await;
}

async fn client_reads_rigger(dir: &Path, db: &TestDb) {
    let harness = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/backstage");
    assert!(harness.join("node_modules/@backstage/catalog-client").exists(), "run scripts/install-test-deps first");
    let repo = TestRepo::new(dir, "platform");
    repo.commit("catalog", &[("catalog-info.yaml", Some(CATALOG))]);
    let port = free_port();
    let sources = format!("  - name: platform\n    git:\n      url: {}\n      branch: main\n", repo.file_url());
    let config = write_config(dir, &db.url, &format!("127.0.0.1:{port}"), &sources);
    assert!(run(&config, &["sync", "--once"]).status.success());
    let mut daemon = Daemon::start(&config, port);
    daemon.wait_for("/readyz", 200).await;

    let base = daemon.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node").arg(harness.join("client.mjs")).arg(base).output().unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();

    assert_eq!(got["components"], json!(["pay", "shop"]));
    assert_eq!(
        got["ordered"],
        json!([
            {"kind": "Component", "metadata": {"name": "shop"}},
            {"kind": "API", "metadata": {"name": "pay-api"}},
            {"kind": "Component", "metadata": {"name": "pay"}},
        ])
    );
    assert_eq!(got["payOwner"], "team-a");
    assert_eq!(
        got["payRelations"],
        json!([{"type": "ownedBy", "targetRef": "group:default/team-a"}, {"type": "providesApi", "targetRef": "api:default/pay-api"}])
    );
    assert_eq!(got["missing"], true);
    assert_eq!(got["byRefs"], json!(["pay-api", null, "team-a"]));
    assert_eq!(
        got["facets"]["kind"],
        json!([
            {"value": "API", "count": 1},
            {"value": "Component", "count": 2},
            {"value": "Group", "count": 1},
        ])
    );
    assert_eq!(got["pages"], json!({"total": 2, "first": ["pay"], "second": ["shop"], "hasPrev": true}));
    assert_eq!(got["fullText"], json!(["pay", "pay-api"]));
    assert_eq!(got["byUid"], true);
    assert_eq!(got["locations"], 1);
    assert_eq!(got["predicate"], json!({"names": ["pay"], "total": 1}));
    assert_eq!(got["predicateAny"], json!(["pay-api", "shop"]));
    assert_eq!(got["predicatePages"], json!([["pay"], ["shop"]]), "a predicate's cursor pages on");
    assert_eq!(
        got["predicateFacets"],
        json!({"spec.type": [{"value": "service", "count": 1}, {"value": "website", "count": 1}]})
    );
    assert_eq!(got["predicateNot"], json!(["pay", "shop", "team-a"]));
    assert_eq!(got["predicateAbsent"], json!(["shop"]));
    assert_eq!(got["predicatePrefix"], "ResponseError: InputError", "$hasPrefix is refused, not answered wrongly");
    assert_eq!(daemon.terminate().code(), Some(0));
}

/// A root file with a `Location` that leads to a second file.
const TREE: [(&str, &str); 2] = [
    (
        "catalog-info.yaml",
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: { name: platform }\nspec: { targets: [./docs/catalog-info.yaml] }\n",
    ),
    (
        "docs/catalog-info.yaml",
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: { name: docs }\nspec: { type: website, lifecycle: production, owner: team-a }\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: { name: legacy }\nspec: { type: website, lifecycle: deprecated, owner: team-a }\n",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_catalog_client_locations_ancestry_validation_refresh_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite(dir.path());
    locations_ancestry_validation_refresh_and_delete(dir.path(), &db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_catalog_client_locations_ancestry_validation_refresh_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::postgres().await;
    locations_ancestry_validation_refresh_and_delete(dir.path(), &db).await;
}

async fn locations_ancestry_validation_refresh_and_delete(dir: &Path, db: &TestDb) {
    let harness = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/backstage");
    assert!(harness.join("node_modules/@backstage/catalog-client").exists(), "run scripts/install-test-deps first");
    let repo = TestRepo::new(dir, "platform");
    repo.commit("catalog", &TREE.map(|(path, text)| (path, Some(text))));
    let port = free_port();
    let sources = format!("  - name: platform\n    git:\n      url: {}\n      branch: main\n", repo.file_url());
    let sources = sources.replace("branch: main\n", "branch: main\n    interval: 1h\n");
    let config = write_config(dir, &db.url, &format!("127.0.0.1:{port}"), &sources);
    let text = std::fs::read_to_string(&config).unwrap();
    let server =
        "server:\n  api_tokens: [{ env: RIGGER_TEST_API_TOKEN }]\n  cors_origins: ['https://portal.example.com']\n";
    let text = text.replacen("server:\n", server, 1) + "catalog:\n  orphan_strategy: keep\n";
    std::fs::write(&config, text).unwrap();
    let mut daemon = Daemon::start_with_env(&config, port, &[("RIGGER_TEST_API_TOKEN", "t0ken")]);
    daemon.wait_for("/readyz", 200).await;
    // A commit the hourly poll would not see for an hour: the refresh syncs it now.
    // It also drops `legacy`, which `orphan_strategy: keep` keeps as an orphan.
    let docs = TREE[1]
        .1
        .split("---")
        .next()
        .unwrap()
        .replace("metadata: { name: docs }", "metadata: { name: docs, description: refreshed }");
    repo.commit("describe docs", &[("docs/catalog-info.yaml", Some(&docs))]);

    let base = daemon.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(harness.join("locations.mjs"))
            .arg(base)
            .env("RIGGER_TEST_API_TOKEN", "t0ken")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["locations"], json!(["catalog-info.yaml", "catalog-info.yaml"]));
    assert_eq!((got["byId"].as_bool(), got["unknownId"].as_bool()), (Some(true), Some(true)), "{got}");
    assert_eq!(got["byEntity"], "catalog-info.yaml", "{got}");
    assert_eq!(
        got["ancestry"],
        json!({"root": "component:default/docs", "items": [
            {"ref": "Component:docs", "parents": ["location:default/platform"]},
            {"ref": "Location:platform", "parents": []},
        ]})
    );
    assert_eq!(got["ancestryOfMissing"], "ResponseError: NotFoundError", "a 404 in Backstage's shape");
    assert_eq!(got["valid"], json!({"valid": true}));
    assert_eq!(got["invalid"]["valid"], false, "{got}");
    let message = got["invalid"]["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("\"metadata.name\" is not valid"), "{got}");
    assert_eq!(got["addDryRun"], json!({"exists": true, "target": true, "entities": ["platform"]}), "{got}");
    assert_eq!(got["addExisting"], "ResponseError: ConflictError");
    assert_eq!(got["addNew"], "ResponseError: NotAllowedError", "registering is refused, with where to configure");
    assert_eq!(got["update"], "ResponseError: NotAllowedError");
    assert_eq!(got["remove"], "ResponseError: NotAllowedError");
    assert_eq!(got["queryLocations"], json!({"items": 1, "total": 2, "more": true}));
    assert_eq!(got["streamed"], 2);
    // The last two segments of each file's target (the root file sits under the branch, `main`).
    assert_eq!(
        got["analyze"],
        json!({"files": [
            "docs/catalog-info.yaml docs true",
            "docs/catalog-info.yaml legacy true",
            "main/catalog-info.yaml platform true",
        ], "generated": 0}),
        "{got}"
    );
    assert_eq!(got["refreshWithoutToken"], "ResponseError: AuthenticationError");
    assert_eq!(got["refreshWithWrongToken"], "ResponseError: AuthenticationError");
    assert_eq!(got["refresh"], "ok");
    let started = std::time::Instant::now();
    loop {
        let (_, docs) = daemon.get_json("/api/catalog/entities/by-name/component/default/docs").await;
        if docs["metadata"]["description"] == "refreshed" {
            break;
        }
        assert!(started.elapsed() < crate::support::rigger::DEADLINE, "the refresh did not sync the repository");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    deleting_entities(&daemon).await;
    browsers_of_the_portal_only(&daemon).await;
    assert_eq!(daemon.terminate().code(), Some(0));
}

/// The portal's pages may call Rigger from the browser; other origins' pages get no CORS grant.
async fn browsers_of_the_portal_only(daemon: &Daemon) {
    let client = reqwest::Client::new();
    let url = format!("{}/api/catalog/refresh", daemon.base);
    let preflight = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type")
            .send()
    };
    let allowed = preflight("https://portal.example.com").await.unwrap();
    let grant = |r: &reqwest::Response, h: &str| r.headers().get(h).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(grant(&allowed, "access-control-allow-origin").as_deref(), Some("https://portal.example.com"));
    let headers = grant(&allowed, "access-control-allow-headers").unwrap_or_default();
    assert!(headers.contains("authorization") && headers.contains("content-type"), "{headers}");
    let other = preflight("https://elsewhere.example.com").await.unwrap();
    assert_eq!(grant(&other, "access-control-allow-origin"), None);
}

/// An orphan may be deleted; an entity git still declares may not (it would come back).
async fn deleting_entities(daemon: &Daemon) {
    let uid = |entity: Value| entity["metadata"]["uid"].as_str().unwrap().to_owned();
    let (_, legacy) = daemon.get_json("/api/catalog/entities/by-name/component/default/legacy").await;
    assert_eq!(legacy["metadata"]["annotations"]["backstage.io/orphan"], "true", "{legacy}");
    let (_, docs) = daemon.get_json("/api/catalog/entities/by-name/component/default/docs").await;
    let client = reqwest::Client::new();
    let delete = |uid: String, token: Option<&'static str>| {
        let mut request = client.delete(format!("{}/api/catalog/entities/by-uid/{uid}", daemon.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, body["error"]["name"].clone())
        }
    };
    assert_eq!(delete(uid(legacy.clone()), None).await, (401, json!("AuthenticationError")));
    assert_eq!(delete(uid(docs), Some("t0ken")).await, (409, json!("ConflictError")), "git declares it");
    assert_eq!(delete(uid(legacy.clone()), Some("t0ken")).await, (204, Value::Null));
    let (status, _) = daemon.get_json("/api/catalog/entities/by-name/component/default/legacy").await;
    assert_eq!(status, 404, "the orphan is gone");
    assert_eq!(delete(uid(legacy), Some("t0ken")).await, (404, json!("NotFoundError")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_of_an_entity_no_source_syncs_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (folder, name) in [("old", "svc"), ("new", "other")] {
        std::fs::create_dir_all(dir.path().join(folder)).unwrap();
        std::fs::write(dir.path().join(format!("{folder}/catalog-info.yaml")), crate::support::component(name, "x"))
            .unwrap();
    }
    let db = TestDb::sqlite(dir.path());
    let port = free_port();
    let configure = |source: &str| {
        let sources = format!("  - name: {source}\n    interval: 1h\n    local: {{ path: {source} }}\n");
        let config = write_config(dir.path(), &db.url, &format!("127.0.0.1:{port}"), &sources);
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(
            &config,
            text.replacen("server:\n", "server:\n  api_tokens: [{ env: RIGGER_TEST_API_TOKEN }]\n", 1),
        )
        .unwrap();
        config
    };
    let token = [("RIGGER_TEST_API_TOKEN", "t0ken")];
    let mut daemon = Daemon::start_with_env(&configure("old"), port, &token);
    daemon.wait_for("/readyz", 200).await;
    assert_eq!(daemon.terminate().code(), Some(0));
    // `old` left the config; its entity stays in the catalog, and nothing syncs it any more.
    let mut daemon = Daemon::start_with_env(&configure("new"), port, &token);
    daemon.wait_for("/readyz", 200).await;
    let refresh = |entity_ref: &'static str| {
        reqwest::Client::new()
            .post(format!("{}/api/catalog/refresh", daemon.base))
            .bearer_auth("t0ken")
            .json(&json!({ "entityRef": entity_ref }))
            .send()
    };
    let refused = refresh("component:default/svc").await.unwrap();
    assert_eq!(refused.status().as_u16(), 409);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["name"], "ConflictError", "{body}");
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("no longer syncs"), "{body}");
    assert_eq!(refresh("component:default/other").await.unwrap().status().as_u16(), 200);
    assert_eq!(daemon.terminate().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ancestry_names_only_the_location_whose_target_reached_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite(dir.path());
    let repo = TestRepo::new(dir.path(), "platform");
    let root = "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: { name: docs }\nspec: { target: ./docs/catalog-info.yaml }\n---\n\
                apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: { name: services }\nspec: { targets: [./services/*/catalog-info.yaml] }\n";
    let component = |name: &str| {
        format!("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {{ name: {name} }}\nspec: {{ type: service, lifecycle: production, owner: team-a }}\n")
    };
    let (docs, pay) = (component("docs"), component("pay"));
    repo.commit(
        "tree",
        &[
            ("catalog-info.yaml", Some(root)),
            ("docs/catalog-info.yaml", Some(docs.as_str())),
            ("services/pay/catalog-info.yaml", Some(pay.as_str())),
        ],
    );
    let port = free_port();
    let sources = format!("  - name: platform\n    git:\n      url: {}\n      branch: main\n", repo.file_url());
    let config = write_config(dir.path(), &db.url, &format!("127.0.0.1:{port}"), &sources);
    assert!(run(&config, &["sync"]).status.success());
    let mut daemon = Daemon::start(&config, port);
    daemon.wait_for("/readyz", 200).await;
    for (name, parent) in [("docs", "location:default/docs"), ("pay", "location:default/services")] {
        let (status, ancestry) =
            daemon.get_json(&format!("/api/catalog/entities/by-name/component/default/{name}/ancestry")).await;
        assert_eq!(status, 200, "{ancestry}");
        assert_eq!(ancestry["items"][0]["parentEntityRefs"], json!([parent]), "{name}: {ancestry}");
    }
    assert_eq!(daemon.terminate().code(), Some(0));
}
