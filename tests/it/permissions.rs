//! Backstage's tokens and permission framework on Rigger's catalog API, against a stand-in
//! Backstage backend (`support::fake_backstage`): tokens verified against published keys, and a
//! conditional `catalog.entity.read` decision ("what I own") applied to lists, pages, totals,
//! facets, lookups and changes alike.

use std::path::Path;

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

use crate::support::db::TestDb;
use crate::support::fake_backstage::{FakeBackstage, TestKey};
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
spec: { type: service, lifecycle: production, owner: team-a }
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata: { name: pay-api }
spec: { type: openapi, lifecycle: production, owner: team-a, definition: 'openapi: 3.0.0' }
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: { name: billing }
spec: { type: service, lifecycle: production, owner: team-b }
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: { name: ledger }
spec: { type: website, lifecycle: production, owner: team-b }
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_conditional_read_decision_filters_every_answer() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite(dir.path());
    conditional_read(dir.path(), &db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_conditional_read_decision_filters_every_answer() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::postgres().await;
    conditional_read(dir.path(), &db).await;
}

struct Api {
    client: Client,
    base: String,
}

impl Api {
    async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}/api/catalog{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::GET, path, token, None).await
    }

    /// Names of the entities a list answers, sorted.
    async fn names(&self, path: &str, token: Option<&str>) -> Vec<String> {
        let (status, body) = self.get(path, token).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let items = body.get("items").unwrap_or(&body).as_array().unwrap().clone();
        let mut names: Vec<String> = items.iter().map(|e| e["metadata"]["name"].as_str().unwrap().to_owned()).collect();
        names.sort();
        names
    }
}

async fn conditional_read(dir: &Path, db: &TestDb) {
    let backstage = FakeBackstage::start().await;
    let repo = TestRepo::new(dir, "platform");
    repo.commit("catalog", &[("catalog-info.yaml", Some(CATALOG))]);
    let port = free_port();
    let sources = format!("  - name: platform\n    git:\n      url: {}\n      branch: main\n", repo.file_url());
    let config = write_config(dir, &db.url, &format!("127.0.0.1:{port}"), &sources);
    let server = format!(
        "server:\n  api_tokens: [{{ env: RIGGER_TEST_API_TOKEN }}]\n  backstage:\n    base_url: {}\n    permissions: true\n",
        backstage.base
    );
    let text = std::fs::read_to_string(&config).unwrap().replacen("server:\n", &server, 1);
    std::fs::write(&config, text).unwrap();
    assert!(run(&config, &["sync"]).status.success());
    let mut daemon = Daemon::start_with_env(&config, port, &[("RIGGER_TEST_API_TOKEN", "t0ken")]);
    backstage.rigger.lock().unwrap().clone_from(&daemon.base);
    daemon.wait_for("/readyz", 200).await;
    let api = Api { client: Client::new(), base: daemon.base.clone() };

    let jane = backstage.user_token("user:default/jane", &["user:default/jane", "group:default/team-a"]);
    jane_reads_only_what_her_team_owns(&api, &jane).await;
    jane_changes_only_what_she_may(&api, &jane).await;
    other_callers_see_by_who_they_are(&api, &backstage).await;
    unverified_callers_are_refused(&api, &backstage, &jane).await;
    the_catalog_side_of_the_framework(&api, &backstage, &jane).await;

    // Rigger asked about each user, with a token the permission backend verified.
    let asked = backstage.asked();
    assert!(asked.contains(&("user:default/jane".to_owned(), "catalog.entity.read".to_owned())), "{asked:?}");
    assert!(asked.contains(&("user:default/jane".to_owned(), "catalog.entity.refresh".to_owned())), "{asked:?}");
    assert!(asked.contains(&("user:default/guest".to_owned(), "catalog.entity.read".to_owned())), "{asked:?}");
    assert!(asked.iter().all(|(user, _)| user != "plugin:scaffolder"), "services are never asked about: {asked:?}");
    assert_eq!(daemon.terminate().code(), Some(0));
}

async fn jane_reads_only_what_her_team_owns(api: &Api, jane: &str) {
    let jane = Some(jane);
    // Lists: only what team-a owns.
    assert_eq!(api.names("/entities", jane).await, ["pay", "pay-api"]);
    assert_eq!(api.names("/entities?filter=kind=component", jane).await, ["pay"]);
    // Pages and totals count only those too, whatever the cursor says.
    let (_, first) = api.get("/entities/by-query?limit=1&orderField=metadata.name,asc", jane).await;
    assert_eq!(first["totalItems"], 2, "{first}");
    let cursor = first["pageInfo"]["nextCursor"].as_str().unwrap().to_owned();
    let (_, second) = api.get(&format!("/entities/by-query?limit=5&cursor={cursor}"), jane).await;
    assert_eq!((second["items"].as_array().unwrap().len(), &second["totalItems"]), (1, &json!(2)), "{second}");
    let (_, predicate) = api
        .call(Method::POST, "/entities/by-query", jane, Some(json!({"query": {"kind": {"$in": ["component", "api"]}}})))
        .await;
    assert_eq!(predicate["totalItems"], 2, "{predicate}");
    // Facets, GET and POST.
    let (_, facets) = api.get("/entity-facets?facet=kind&facet=spec.type", jane).await;
    assert_eq!(
        facets["facets"],
        json!({"kind": [{"value": "API", "count": 1}, {"value": "Component", "count": 1}],
               "spec.type": [{"value": "openapi", "count": 1}, {"value": "service", "count": 1}]})
    );
    let (_, facets) = api.call(Method::POST, "/entity-facets", jane, Some(json!({"facets": ["kind"]}))).await;
    assert_eq!(facets["facets"]["kind"], json!([{"value": "API", "count": 1}, {"value": "Component", "count": 1}]));
    // Lookups: what she may not read is not there.
    assert_eq!(api.get("/entities/by-name/component/default/pay", jane).await.0, StatusCode::OK);
    assert_eq!(api.get("/entities/by-name/component/default/billing", jane).await.0, StatusCode::NOT_FOUND);
    let (_, billing) = api.get("/entities/by-name/component/default/billing", Some("t0ken")).await;
    let uid = billing["metadata"]["uid"].as_str().unwrap().to_owned();
    assert_eq!(api.get(&format!("/entities/by-uid/{uid}"), jane).await.0, StatusCode::NOT_FOUND);
    assert_eq!(api.get("/entities/by-name/component/default/billing/ancestry", jane).await.0, StatusCode::NOT_FOUND);
    let refs = json!({"entityRefs": ["component:default/pay", "component:default/billing"]});
    let (_, by_refs) = api.call(Method::POST, "/entities/by-refs", jane, Some(refs)).await;
    assert_eq!(by_refs["items"][1], Value::Null, "{by_refs}");
    assert_eq!(by_refs["items"][0]["metadata"]["name"], "pay");
}

async fn jane_changes_only_what_she_may(api: &Api, jane: &str) {
    let jane = Some(jane);
    let (_, billing) = api.get("/entities/by-name/component/default/billing", Some("t0ken")).await;
    let uid = billing["metadata"]["uid"].as_str().unwrap().to_owned();
    // Changes: refresh what she owns; what she may not read is not there to refresh or delete;
    // nobody deletes.
    let refresh = |r: &str| json!({"entityRef": r});
    assert_eq!(
        api.call(Method::POST, "/refresh", jane, Some(refresh("component:default/pay"))).await.0,
        StatusCode::OK
    );
    let (status, refused) = api.call(Method::POST, "/refresh", jane, Some(refresh("component:default/billing"))).await;
    assert_eq!((status, &refused["error"]["name"]), (StatusCode::NOT_FOUND, &json!("NotFoundError")), "{refused}");
    assert_eq!(api.call(Method::DELETE, &format!("/entities/by-uid/{uid}"), jane, None).await.0, StatusCode::NOT_FOUND);
    let (_, pay) = api.get("/entities/by-name/component/default/pay", jane).await;
    let pay_uid = pay["metadata"]["uid"].as_str().unwrap().to_owned();
    let (status, refused) = api.call(Method::DELETE, &format!("/entities/by-uid/{pay_uid}"), jane, None).await;
    assert_eq!((status, &refused["error"]["name"]), (StatusCode::FORBIDDEN, &json!("NotAllowedError")), "{refused}");
}

async fn other_callers_see_by_who_they_are(api: &Api, backstage: &FakeBackstage) {
    let everything = ["billing", "ledger", "pay", "pay-api", "team-a"];
    // A plugin on her behalf sees what she sees; on its own behalf, everything.
    let obo = backstage.plugin_token("catalog", Some("user:default/jane"));
    assert_eq!(api.names("/entities", Some(&obo)).await, ["pay", "pay-api"]);
    let service = backstage.plugin_token("catalog", None);
    assert_eq!(api.names("/entities", Some(&service)).await, everything);
    let (_, facets) = api.get("/entity-facets?facet=kind", Some(&service)).await;
    assert_eq!(facets["facets"]["kind"].as_array().unwrap().len(), 3, "no cached answer of another caller: {facets}");
    assert_eq!(api.names("/entities", Some("t0ken")).await, everything, "a static token is the platform's own");
    // The guest reads nothing, and no count gives it away.
    let guest = backstage.user_token("user:default/guest", &["user:default/guest"]);
    assert!(api.names("/entities", Some(&guest)).await.is_empty());
    let (_, facets) = api.get("/entity-facets?facet=kind", Some(&guest)).await;
    assert_eq!(facets["facets"]["kind"], json!([]));
}

async fn unverified_callers_are_refused(api: &Api, backstage: &FakeBackstage, jane: &str) {
    // Rigger's own endpoints name files and entities outside the catalog's permissions: the
    // platform's tokens and plugins only.
    let sources = format!("{}/api/rigger/sources", api.base);
    assert_eq!(api.client.get(&sources).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(api.client.get(&sources).bearer_auth(jane).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(api.client.get(&sources).bearer_auth("t0ken").send().await.unwrap().status(), StatusCode::OK);

    // Without credentials, or with ones Rigger cannot verify: Backstage's 401. A limited user
    // token is only ever valid inside a plugin's token.
    let limited = backstage
        .auth_key
        .sign("vnd.backstage.limited-user", &json!({"sub": "user:default/jane", "iat": 1, "exp": 4_102_444_800_u64}));
    for token in [
        None,
        Some("not-a-token".to_owned()),
        Some(limited),
        Some(
            TestKey::new("auth-1")
                .sign("vnd.backstage.user", &json!({"sub": "user:default/jane", "iat": 1, "exp": 4_102_444_800_u64})),
        ),
        Some(backstage.plugin_token("scaffolder", None)),
        Some(backstage.auth_key.sign("vnd.backstage.user", &json!({"sub": "user:default/jane", "iat": 1, "exp": 2}))),
    ] {
        let (status, body) = api.get("/entities", token.as_deref()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}: {body}");
        assert_eq!(body["error"]["name"], "AuthenticationError", "{body}");
    }
}

async fn the_catalog_side_of_the_framework(api: &Api, backstage: &FakeBackstage, jane: &str) {
    let service = backstage.plugin_token("catalog", None);
    // The catalog's side of the framework: its rules for policy tooling, and conditions applied
    // to named entities only for a verified caller.
    let (_, metadata) = api.get("/.well-known/backstage/permissions/metadata", None).await;
    let rules: Vec<&str> = metadata["rules"].as_array().unwrap().iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(rules, ["IS_ENTITY_KIND", "IS_ENTITY_OWNER", "HAS_ANNOTATION", "HAS_LABEL", "HAS_METADATA", "HAS_SPEC"]);
    let apply = json!({"items": [{"id": "1", "resourceRef": ["component:default/pay", "component:default/billing", "component:default/gone"],
        "resourceType": "catalog-entity", "pluginId": "catalog", "result": "CONDITIONAL",
        "conditions": {"rule": "IS_ENTITY_OWNER", "resourceType": "catalog-entity", "params": {"claims": ["group:default/team-a"]}}}]});
    let path = "/.well-known/backstage/permissions/apply-conditions";
    assert_eq!(api.call(Method::POST, path, None, Some(apply.clone())).await.0, StatusCode::UNAUTHORIZED);
    let (status, _) = api.call(Method::POST, path, Some(jane), Some(apply.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a user could probe what she may not read");
    let (_, applied) = api.call(Method::POST, path, Some(&service), Some(apply)).await;
    assert_eq!(applied, json!({"items": [{"id": "1", "result": ["ALLOW", "DENY", "DENY"]}]}));
}
