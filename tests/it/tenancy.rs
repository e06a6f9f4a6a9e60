//! Tenancy in a shared cluster, against the fake API server: ownership of an object is global
//! (one entity, whatever its source), and where a source may write comes from configuration the
//! platform team controls, never from the repository. One test per row of the threat table in
//! `docs/security.md`.

use std::path::{Path, PathBuf};

use rigger::store::Store;
use rigger::testkit::FakeApiServer;
use serde_json::Value;

use crate::support::db::TestDb;
use crate::support::git::TestRepo;
use crate::support::rigger::{free_port, rigger, stdout, write_config, Daemon};

/// A component whose cluster objects are in `./deploy.yaml`; `namespace` is its catalog namespace.
fn component(name: &str, namespace: Option<&str>) -> String {
    let namespace = namespace.map(|n| format!("  namespace: {n}\n")).unwrap_or_default();
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n{namespace}  annotations:\n    rigger.dev/manifests: ./deploy.yaml\nspec: {{ type: service, lifecycle: production, owner: team-a }}\n"
    )
}

fn config_map(name: &str, namespace: Option<&str>, value: &str) -> String {
    let namespace = namespace.map(|n| format!("  namespace: {n}\n")).unwrap_or_default();
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n{namespace}data: {{ value: {value} }}\n")
}

/// A repository holding one component and its manifests.
fn repository(root: &Path, name: &str, entity: &str, manifests: &str) -> TestRepo {
    let repo = TestRepo::new(root, name);
    repo.commit("initial", &[("catalog-info.yaml", Some(entity)), ("deploy.yaml", Some(manifests))]);
    repo
}

/// A git source for `repo` with the given `tenancy:` block (indented under the source).
fn git_source(name: &str, repo: &TestRepo, tenancy: &str) -> String {
    format!("  - name: {name}\n    interval: 1h\n    git: {{ url: '{}' }}\n{tenancy}", repo.file_url())
}

/// A config reconciling `sources` into `fake`.
fn config(dir: &Path, db: &TestDb, listen: &str, fake: &FakeApiServer, sources: &str) -> PathBuf {
    let kubeconfig = dir.join("kubeconfig");
    fake.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let path = write_config(dir, &db.url, listen, sources);
    let text = std::fs::read_to_string(&path).expect("config");
    let kubernetes = format!("kubernetes:\n  kubeconfig: {}\n  timeout: 2s\n  ingest: false\n", kubeconfig.display());
    std::fs::write(&path, text + &kubernetes).expect("config");
    path
}

/// `rigger <args>` on a blocking thread (the in-process fake keeps serving); exit code, stdout.
async fn rigger_cmd(config: &Path, args: &[&str]) -> (i32, String) {
    let (config, args): (PathBuf, Vec<String>) = (config.to_owned(), args.iter().map(|a| (*a).to_owned()).collect());
    let output = tokio::task::spawn_blocking(move || {
        rigger().arg("--config").arg(config).args(args).output().expect("rigger runs")
    })
    .await
    .expect("join");
    (output.status.code().unwrap_or(-1), stdout(&output) + &String::from_utf8_lossy(&output.stderr))
}

/// The entity's `status.items` as the API serves them.
async fn status_items(db: &TestDb, entity_ref: &str) -> Vec<Value> {
    let store = Store::connect(&db.url).await.expect("store");
    let entity = store.entity(entity_ref).await.expect("read").expect("the entity is in the catalog");
    store.close().await;
    entity.to_api()["status"]["items"].as_array().cloned().unwrap_or_default()
}

fn messages(items: &[Value], kind: &str) -> String {
    items.iter().filter(|i| i["type"] == kind).map(|i| i["message"].as_str().unwrap_or_default()).collect()
}

/// POSTs `object` to the fake, as another tool would create it.
async fn create(fake: &FakeApiServer, path: &str, object: &Value) {
    let response =
        reqwest::Client::new().post(format!("{}{path}", fake.url())).json(object).send().await.expect("POST");
    assert!(response.status().is_success(), "creating {object}: {}", response.status());
}

async fn create_namespaces(fake: &FakeApiServer, names: &[&str]) {
    for name in names {
        let namespace = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        create(fake, "/api/v1/namespaces", &namespace).await;
    }
}

const GRANT_DEFAULT: &str = "    tenancy:\n      namespaces: { default: [default] }\n";

// The same object declared from two repositories ---------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_the_same_object_from_two_repositories_stays_with_the_first_until_it_lets_go() {
    let dir = tempfile::tempdir().expect("tempdir");
    two_repositories_one_object(&TestDb::sqlite(dir.path()), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_the_same_object_from_two_repositories_stays_with_the_first_until_it_lets_go() {
    let dir = tempfile::tempdir().expect("tempdir");
    two_repositories_one_object(&TestDb::postgres().await, dir.path()).await;
}

async fn two_repositories_one_object(db: &TestDb, dir: &Path) {
    let fake = FakeApiServer::start().await.expect("fake API server");
    let first = repository(dir, "first", &component("alpha", None), &config_map("shared", None, "from-alpha"));
    let second = repository(dir, "second", &component("beta", None), &config_map("own", None, "beta"));
    let sources = git_source("a", &first, GRANT_DEFAULT) + &git_source("b", &second, GRANT_DEFAULT);
    let port = free_port();
    let config = config(dir, db, &format!("127.0.0.1:{port}"), &fake, &sources);
    let (code, out) = rigger_cmd(&config, &["sync", "--once"]).await;
    assert_eq!(code, 0, "{out}");
    let shared = || fake.get("v1", "ConfigMap", Some("default"), "shared").expect("the shared ConfigMap");
    let uid = shared()["metadata"]["uid"].clone();

    // The second repository declares the same object: refused, on every pass, from either side.
    second.commit(
        "beta wants it too",
        &[(
            "deploy.yaml",
            Some(&format!("{}---\n{}", config_map("own", None, "beta"), config_map("shared", None, "from-beta"))),
        )],
    );
    for _ in 0..3 {
        let (code, out) = rigger_cmd(&config, &["sync", "--once"]).await;
        assert_eq!(code, 1, "a refused claim is an error: {out}");
        assert!(out.contains("component:default/alpha (source a) declares it and holds it"), "{out}");
        let now = shared();
        assert_eq!(now["data"]["value"], "from-alpha", "nothing changes hands");
        assert_eq!(now["metadata"]["annotations"]["rigger.dev/entity-ref"], "component:default/alpha");
        assert_eq!(now["metadata"]["uid"], uid);
    }
    let (_, plan) = rigger_cmd(&config, &["plan"]).await;
    assert!(plan.contains("declares it and holds it"), "rigger plan shows the refusal first: {plan}");
    let beta = status_items(db, "component:default/beta").await;
    assert!(
        messages(&beta, "rigger.dev/cluster").contains("component:default/alpha (source a) declares it"),
        "{beta:?}"
    );
    let alpha = status_items(db, "component:default/alpha").await;
    assert!(
        messages(&alpha, "rigger.dev/ownership")
            .contains("component:default/beta (source b) declares it too and was refused"),
        "the holder is told too: {alpha:?}"
    );
    let mut daemon = Daemon::start(&config, port);
    daemon.wait_for("/readyz", 200).await;
    let metrics = daemon.get_text("/metrics").await;
    assert!(metrics.contains("rigger_cluster_claims_refused{source=\"b\"} 1"), "{metrics}");
    assert!(metrics.contains("rigger_cluster_claims_refused{source=\"a\"} 0"), "{metrics}");
    assert!(daemon.terminate().success());

    // The first lets go: the object is handed over as it stands, never deleted in between.
    first.commit("alpha lets go", &[("deploy.yaml", Some(&config_map("alpha-own", None, "alpha")))]);
    let (code, out) = rigger_cmd(&config, &["sync", "--once"]).await;
    let (code, out) = if code == 0 { (code, out) } else { rigger_cmd(&config, &["sync", "--once"]).await };
    assert_eq!(code, 0, "{out}");
    let now = shared();
    assert_eq!(now["metadata"]["annotations"]["rigger.dev/entity-ref"], "component:default/beta", "handed over");
    assert_eq!(now["data"]["value"], "from-beta");
    assert_eq!(now["metadata"]["uid"], uid, "the same object");
    assert!(fake.requests().iter().all(|r| r.method != "DELETE"), "nothing was deleted");
    assert_eq!(messages(&status_items(db, "component:default/alpha").await, "rigger.dev/ownership"), "");
    let beta = status_items(db, "component:default/beta").await;
    assert!(!messages(&beta, "rigger.dev/cluster").contains("holds it"), "{beta:?}");
}

// What one repository's author may attempt -------------------------------------------------

/// A repository with the entity `hostile` (objects in `deploy.yaml`) and a sibling `honest`
/// (one `ConfigMap` in the first granted namespace), synced once as source `tenant` with
/// `tenancy`. Returns the exit code, output, the fake (with `prepare` applied first) and the
/// directory holding it all.
async fn attempt(
    entity: &str,
    manifests: &str,
    tenancy: &str,
    prepare: impl AsyncFnOnce(&FakeApiServer),
) -> (i32, String, FakeApiServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeApiServer::start().await.expect("fake API server");
    create_namespaces(&fake, &["team-a", "payments"]).await;
    prepare(&fake).await;
    let honest = component("honest", None).replace("./deploy.yaml", "./honest.yaml");
    let repo = TestRepo::new(dir.path(), "tenant");
    repo.commit(
        "attempt",
        &[
            ("catalog-info.yaml", Some(&format!("{entity}---\n{honest}"))),
            ("deploy.yaml", Some(manifests)),
            ("honest.yaml", Some(&config_map("honest", None, "fine"))),
        ],
    );
    let db = TestDb::sqlite(dir.path());
    let config = config(dir.path(), &db, "127.0.0.1:0", &fake, &git_source("tenant", &repo, tenancy));
    let (code, out) = rigger_cmd(&config, &["sync", "--once"]).await;
    (code, out, fake, dir)
}

const GRANT_TEAM_A: &str = "    tenancy:\n      namespaces: [team-a]\n";

/// A refusal: exit 1, the reason and the rule in the output, the honest sibling applied.
fn assert_refused(code: i32, out: &str, fake: &FakeApiServer, reason: &str, rule: &str) {
    assert_eq!(code, 1, "a refusal is an error: {out}");
    let line = out.lines().find(|l| l.contains(reason)).unwrap_or_else(|| panic!("{reason:?} in {out}"));
    assert!(line.contains(&format!("[{rule}")), "the refusal names the rule {rule}: {line}");
    let honest = fake.list("v1", "ConfigMap").into_iter().filter(|c| c["metadata"]["name"] == "honest").count();
    assert_eq!(honest, 1, "the sibling entity still applies: {out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_entitys_metadata_namespace_chooses_nothing() {
    // Granted team-a: an entity in catalog namespace `payments` still writes to team-a.
    let entity = component("hostile", Some("payments"));
    let (code, out, fake, _dir) = attempt(&entity, &config_map("hostile", None, "x"), GRANT_TEAM_A, async |_| {}).await;
    assert_eq!(code, 0, "{out}");
    assert!(fake.get("v1", "ConfigMap", Some("team-a"), "hostile").is_some(), "the granted namespace");
    assert!(fake.get("v1", "ConfigMap", Some("payments"), "hostile").is_none());

    // Granted nothing: nothing is written, wherever the file points.
    let (code, out, fake, _dir) = attempt(&entity, &config_map("hostile", None, "x"), "", async |_| {}).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no namespace is granted to this entity"), "{out}");
    assert!(out.contains("[sources[0].tenancy]"), "the rule: {out}");
    assert!(fake.list("v1", "ConfigMap").is_empty(), "nothing written: {out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifests_own_namespace_outside_the_grant_is_refused() {
    let manifests = format!("{}---\n{}", config_map("ok", None, "x"), config_map("elsewhere", Some("payments"), "x"));
    let (code, out, fake, _dir) = attempt(&component("hostile", None), &manifests, GRANT_TEAM_A, async |_| {}).await;
    assert_refused(
        code,
        &out,
        &fake,
        "namespace \"payments\" is not one this entity may write to (team-a)",
        "sources[0].tenancy",
    );
    assert!(fake.get("v1", "ConfigMap", Some("payments"), "elsewhere").is_none());
    assert!(fake.get("v1", "ConfigMap", Some("team-a"), "ok").is_none(), "a refused set applies nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_scoped_kinds_namespaces_and_crds_are_refused() {
    let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: { name: widgets.acme.io }\nspec: { group: acme.io, scope: Namespaced, names: { kind: Widget, plural: widgets }, versions: [{ name: v1, served: true, storage: true }] }\n";
    let manifests = format!("apiVersion: v1\nkind: Namespace\nmetadata: {{ name: mine }}\n---\n{crd}");
    let (code, out, fake, _dir) = attempt(&component("hostile", None), &manifests, GRANT_TEAM_A, async |_| {}).await;
    assert_refused(code, &out, &fake, "Namespace mine: cluster-scoped objects are not allowed", "sources[0].tenancy");
    assert!(out.contains("CustomResourceDefinition widgets.acme.io: cluster-scoped objects are not allowed"), "{out}");
    assert!(fake.get("v1", "Namespace", None, "mine").is_none());
    assert!(fake.list("apiextensions.k8s.io/v1", "CustomResourceDefinition").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn rbac_objects_are_refused() {
    let binding = "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: { name: admin-me, namespace: team-a }\nroleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin }\nsubjects: [{ kind: User, name: mallory }]\n";
    let (code, out, fake, _dir) = attempt(&component("hostile", None), binding, GRANT_TEAM_A, async |_| {}).await;
    assert_refused(code, &out, &fake, "RoleBinding admin-me: RBAC objects are not allowed", "sources[0].tenancy");
    assert!(fake.list("rbac.authorization.k8s.io/v1", "RoleBinding").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn admission_webhooks_are_refused_even_where_cluster_scoped_objects_are_allowed() {
    let webhook = "apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\nmetadata: { name: intercept-all }\nwebhooks: []\n";
    let tenancy = "    tenancy:\n      namespaces: [team-a]\n      allow_cluster_scoped: true\n";
    let (code, out, fake, _dir) = attempt(&component("hostile", None), webhook, tenancy, async |_| {}).await;
    assert_refused(
        code,
        &out,
        &fake,
        "MutatingWebhookConfiguration intercept-all: admission control reaches every request",
        "sources[0].tenancy",
    );
    assert!(fake.list("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn service_account_token_secrets_are_refused() {
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: steal\n  annotations: { kubernetes.io/service-account.name: default }\ntype: kubernetes.io/service-account-token\n";
    let (code, out, fake, _dir) = attempt(&component("hostile", None), secret, GRANT_TEAM_A, async |_| {}).await;
    assert_refused(
        code,
        &out,
        &fake,
        "Secret steal: a kubernetes.io/service-account-token Secret mints credentials",
        "sources[0].tenancy",
    );
    assert!(fake.list("v1", "Secret").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_another_tenant_or_tool_has_is_not_taken_over() {
    let theirs = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "theirs", "namespace": "team-a", "labels": {"kustomize.toolkit.fluxcd.io/name": "team-b"}},
        "data": {"value": "flux"},
    });
    let manifests = config_map("theirs", None, "mine");
    let (code, out, fake, _dir) = attempt(&component("hostile", None), &manifests, GRANT_TEAM_A, async |fake| {
        create(fake, "/api/v1/namespaces/team-a/configmaps", &theirs).await;
    })
    .await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("ConfigMap team-a/theirs: not taking it over: Flux tracks it"), "{out}");
    let now = fake.get("v1", "ConfigMap", Some("team-a"), "theirs").expect("still there");
    assert_eq!(now["data"]["value"], "flux", "unchanged");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_cannot_choose_whom_rigger_writes_as() {
    let entity = component("hostile", None).replace(
        "    rigger.dev/manifests: ./deploy.yaml\n",
        "    rigger.dev/manifests: ./deploy.yaml\n    rigger.dev/service-account: kube-system/admin\n    rigger.dev/impersonate: system:admin\n",
    );
    let manifests = config_map("hostile", None, "x")
        .replace("metadata:\n", "metadata:\n  annotations: { rigger.dev/impersonate: \"system:admin\" }\n");
    let tenancy = "    tenancy:\n      namespaces: [team-a]\n      service_account: team-a/deployer\n";
    let (code, out, fake, _dir) = attempt(&entity, &manifests, tenancy, async |_| {}).await;
    assert_eq!(code, 0, "{out}");
    // Rigger's writes are server-side applies (the test's own setup POSTs).
    let writes: Vec<_> = fake.requests().into_iter().filter(|r| r.method == "PATCH").collect();
    assert!(!writes.is_empty());
    assert!(
        writes.iter().all(|r| r.impersonate.as_deref() == Some("system:serviceaccount:team-a:deployer")),
        "every write as the configured account: {:?}",
        writes.iter().map(|r| &r.impersonate).collect::<Vec<_>>()
    );
    let (_, out, fake, _dir) = attempt(&entity, &manifests, GRANT_TEAM_A, async |_| {}).await;
    let writes: Vec<_> = fake.requests().into_iter().filter(|r| r.method == "PATCH").collect();
    assert!(!writes.is_empty() && writes.iter().all(|r| r.impersonate.is_none()), "none configured, none used: {out}");
}

// Grants per repository of an organisation --------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_a_renamed_repository_gains_nothing_and_a_new_one_under_an_old_name_gets_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    renamed_repositories(&TestDb::sqlite(dir.path()), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_a_renamed_repository_gains_nothing_and_a_new_one_under_an_old_name_gets_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    renamed_repositories(&TestDb::postgres().await, dir.path()).await;
}

/// `web` (granted namespace web) renames itself `payments-evil` to match the payments grant,
/// then a new repository takes the name `web`.
async fn renamed_repositories(db: &TestDb, dir: &Path) {
    use crate::support::fake_github::{repo, FakeGithub};
    use crate::support::http_git::GitHttpServer;
    let fake = FakeApiServer::start().await.expect("fake API server");
    create_namespaces(&fake, &["web", "payments"]).await;
    let github = FakeGithub::start().await;
    let git = GitHttpServer::start(dir.to_owned(), None).await;
    let web = repository(dir, "web", &component("web-app", None), &config_map("web-config", None, "web"));
    let payments = repository(dir, "payments-api", &component("pay", None), &config_map("pay-config", None, "pay"));
    let listed = |name: &str, served: &str| repo(name, &git.url(&format!("{served}.git")));
    github.with(|w| {
        w.repos.insert("web".into(), listed("web", "web"));
        w.repos.insert("payments-api".into(), listed("payments-api", "payments-api"));
    });
    let source = format!(
        "  - name: acme\n    interval: 1h\n    github:\n      org: acme\n      api_url: {}\n    grants:\n      - {{ repositories: [web], namespaces: [web] }}\n      - {{ repositories: [\"payments-*\"], namespaces: [payments] }}\n",
        github.base
    );
    let config = config(dir, db, "127.0.0.1:0", &fake, &source);
    let (code, out) = rigger_cmd(&config, &["sync", "--once"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(fake.get("v1", "ConfigMap", Some("web"), "web-config").is_some(), "{out}");
    assert!(fake.get("v1", "ConfigMap", Some("payments"), "pay-config").is_some(), "{out}");
    drop(payments);

    // Renamed to match the payments grant, and reaching for the payments namespace.
    let id = github.with(|w| w.repos.remove("web")).expect("listed")["id"].clone();
    github.with(|w| {
        let mut renamed = listed("payments-evil", "web");
        renamed["id"] = id;
        w.repos.insert("payments-evil".into(), renamed);
        w.moved.push("web".into());
    });
    web.commit(
        "reach for payments",
        &[(
            "deploy.yaml",
            Some(&format!(
                "{}---\n{}",
                config_map("web-config", None, "web"),
                config_map("sneaky", Some("payments"), "x")
            )),
        )],
    );
    let (code, out) = rigger_cmd(&config, &["sync", "--once"]).await;
    assert_eq!(code, 1, "{out}");
    let refusal = out.lines().find(|l| l.contains("sneaky")).unwrap_or_else(|| panic!("a refusal for sneaky: {out}"));
    assert!(refusal.contains("namespace \"payments\" is not one this entity may write to (web)"), "{refusal}");
    assert!(
        refusal.contains("[sources[0].grants[0] via acme/web, its name when first seen (renamed since)]"),
        "{refusal}"
    );
    assert!(fake.get("v1", "ConfigMap", Some("payments"), "sneaky").is_none());

    // A new repository under the old name: the name carries no grant to it.
    let imposter = repository(dir, "imposter", &component("imposter", None), &config_map("imposter", None, "x"));
    github.with(|w| {
        w.moved.clear();
        let mut new = listed("web", "imposter");
        new["id"] = serde_json::json!(424_242);
        w.repos.insert("web".into(), new);
    });
    let (code, out) = rigger_cmd(&config, &["sync", "--once"]).await;
    assert_eq!(code, 1, "{out}");
    let refusal = out
        .lines()
        .find(|l| l.contains("ConfigMap imposter"))
        .unwrap_or_else(|| panic!("a refusal for imposter: {out}"));
    assert!(refusal.contains("no namespace is granted to this entity"), "{refusal}");
    assert!(
        refusal.contains("repository acme/web (id 424242) is not the repository first seen under that name"),
        "{refusal}"
    );
    assert!(fake.list("v1", "ConfigMap").iter().all(|c| c["metadata"]["name"] != "imposter"));
    drop(imposter);
}

#[tokio::test(flavor = "multi_thread")]
async fn rigger_plan_shows_refusals_before_anything_is_applied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeApiServer::start().await.expect("fake API server");
    create_namespaces(&fake, &["team-a", "payments"]).await;
    let manifests = format!("{}---\n{}", config_map("ok", None, "x"), config_map("elsewhere", Some("payments"), "x"));
    let repo = repository(dir.path(), "tenant", &component("hostile", None), &manifests);
    let db = TestDb::sqlite(dir.path());
    let config = config(dir.path(), &db, "127.0.0.1:0", &fake, &git_source("tenant", &repo, GRANT_TEAM_A));
    let (_, out) = rigger_cmd(&config, &["plan"]).await;
    assert!(
        out.contains("namespace \"payments\" is not one this entity may write to (team-a) [sources[0].tenancy]"),
        "{out}"
    );
    let written: Vec<_> = fake.requests().into_iter().filter(|r| r.method == "PATCH" && !r.dry_run).collect();
    assert!(written.is_empty(), "plan writes nothing");
    assert!(fake.list("v1", "ConfigMap").is_empty());
}
