//! Issue 6 end to end: the `rigger` binary reconciles a real git repository's declared objects
//! into the fake Kubernetes API server (`rigger::testkit`), through a kubeconfig, as it would a
//! real cluster — apply, update, prune, drift, health back into the catalog, tenancy refusals,
//! API faults, an API server that is away.

use std::path::Path;
use std::time::{Duration, Instant};

use rigger::testkit::{FakeApiServer, Fault};
use serde_json::{json, Value};

use crate::support::db::TestDb;
use crate::support::git::TestRepo;
use crate::support::rigger::{free_port, rigger, stdout, write_config, Daemon, DEADLINE};

const CLAIM_API: &str = "database.example.org/v1alpha1";
const MR_API: &str = "database.aws.crossplane.io/v1beta1";

const CATALOG: &str = r#"apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: payments
  annotations:
    rigger.dev/manifests: "./deploy/**/*.yaml"
spec: { type: service, lifecycle: production, owner: team-a }
"#;

fn app_manifest(mode: &str) -> String {
    format!(
        r"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector: {{ matchLabels: {{ app: web }} }}
  template:
    metadata: {{ labels: {{ app: web }} }}
    spec:
      containers: [{{ name: web, image: 'nginx:1.27' }}]
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  mode: {mode}
"
    )
}

/// A claim as TeraSky's claim template commits it: `<cluster>/<namespace>/<Kind>/<name>.yaml`,
/// with its annotations.
const CLAIM_PATH: &str = "deploy/prod/default/PostgreSQLInstance/payments-db.yaml";
const CLAIM: &str = r#"apiVersion: database.example.org/v1alpha1
kind: PostgreSQLInstance
metadata:
  name: payments-db
  namespace: default
  annotations:
    terasky.backstage.io/source-info: '{"pushToGit":true,"gitBranch":"main","gitLayout":"cluster-scoped","basePath":""}'
    terasky.backstage.io/add-to-catalog: "true"
    terasky.backstage.io/owner: team-a
    terasky.backstage.io/system: default
spec:
  parameters: { storageGB: 20 }
  compositionRef: { name: aws-postgres }
  writeConnectionSecretToRef: { name: payments-db-conn }
"#;

fn crd(group: &str, version: &str, kind: &str, plural: &str, scope: &str, category: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {
            "group": group,
            "scope": scope,
            "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase(), "listKind": format!("{kind}List"),
                      "categories": [category]},
            "versions": [{
                "name": version, "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
            }]
        }
    })
}

/// What Crossplane installs: the claim, composite and managed resource types.
async fn install_crossplane_types(fake: &FakeApiServer) {
    for definition in [
        crd("database.example.org", "v1alpha1", "PostgreSQLInstance", "postgresqlinstances", "Namespaced", "claim"),
        crd("database.example.org", "v1alpha1", "XPostgreSQLInstance", "xpostgresqlinstances", "Cluster", "composite"),
        crd("database.aws.crossplane.io", "v1beta1", "RDSInstance", "rdsinstances", "Cluster", "managed"),
    ] {
        create(fake, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", &definition).await;
    }
}

async fn create(fake: &FakeApiServer, path: &str, object: &Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", fake.url()))
        .json(object)
        .send()
        .await
        .expect("POST to the fake");
    assert!(response.status().is_success(), "creating {object} answered {}", response.status());
}

/// A git repository with the component, its app manifest and its claim.
fn repository(root: &Path) -> TestRepo {
    let repo = TestRepo::new(root, "payments");
    repo.commit(
        "payments",
        &[
            ("catalog-info.yaml", Some(CATALOG)),
            ("deploy/app.yaml", Some(&app_manifest("blue"))),
            (CLAIM_PATH, Some(CLAIM)),
        ],
    );
    repo
}

/// A config for one git source, reconciling into `fake`.
fn config(
    dir: &Path,
    db: &str,
    listen: &str,
    repo: &TestRepo,
    fake: &FakeApiServer,
    extra: &str,
) -> std::path::PathBuf {
    let kubeconfig = dir.join("kubeconfig");
    fake.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    kube_config(dir, db, listen, repo, &kubeconfig, extra)
}

fn kube_config(
    dir: &Path,
    db: &str,
    listen: &str,
    repo: &TestRepo,
    kubeconfig: &Path,
    extra: &str,
) -> std::path::PathBuf {
    // The platform team's grant: the `default` namespace, unless a test grants otherwise.
    let tenancy = if extra.contains("tenancy:") { "" } else { "    tenancy: { namespaces: [default] }\n" };
    let sources =
        format!("  - name: payments\n    interval: 1h\n    git: {{ url: '{}' }}\n{tenancy}{extra}", repo.file_url());
    let path = write_config(dir, db, listen, &sources);
    let text = std::fs::read_to_string(&path).expect("config");
    let kubernetes =
        format!("kubernetes:\n  kubeconfig: {}\n  timeout: 2s\n  ingest_interval: 300ms\n", kubeconfig.display());
    std::fs::write(&path, text + &kubernetes).expect("config");
    path
}

/// `rigger <args>` on a blocking thread, so the in-process fake keeps serving meanwhile.
async fn rigger_cmd(config: &Path, args: &[&str]) -> std::process::Output {
    let (config, args): (std::path::PathBuf, Vec<String>) =
        (config.to_owned(), args.iter().map(|a| (*a).to_owned()).collect());
    tokio::task::spawn_blocking(move || rigger().arg("--config").arg(config).args(args).output().expect("rigger runs"))
        .await
        .expect("join")
}

async fn sync_once(config: &Path) -> String {
    let output = rigger_cmd(config, &["sync", "--once"]).await;
    let out = stdout(&output);
    assert!(output.status.success(), "sync --once failed: {out}\n{}", String::from_utf8_lossy(&output.stderr));
    out
}

fn writes_since(fake: &FakeApiServer, from: usize) -> Vec<String> {
    fake.requests()[from..].iter().filter(|r| r.is_write()).map(|r| format!("{} {}", r.method, r.path)).collect()
}

fn label(object: &Value, key: &str) -> Value {
    object["metadata"]["labels"][key].clone()
}

/// Polls `check` until it holds, or panics at the deadline.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < DEADLINE, "{what}: not within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn objects_follow_git(db: TestDb, dir: &Path) {
    let fake = FakeApiServer::start().await.expect("fake API server");
    install_crossplane_types(&fake).await;
    let repo = repository(dir);
    let config = config(dir, &db.url, "127.0.0.1:0", &repo, &fake, "");

    let before = fake.requests().len();
    sync_once(&config).await;
    let web = fake.get("apps/v1", "Deployment", Some("default"), "web").expect("the Deployment was applied");
    assert_eq!(label(&web, "app.kubernetes.io/managed-by"), "rigger");
    assert!(label(&web, "rigger.dev/entity").is_string(), "the owning entity is named");
    assert_eq!(web["metadata"]["annotations"]["rigger.dev/entity-ref"], "component:default/payments");
    let claim = fake.get(CLAIM_API, "PostgreSQLInstance", Some("default"), "payments-db").expect("the claim");
    assert_eq!(claim["spec"]["parameters"]["storageGB"], 20);
    assert_eq!(claim["metadata"]["annotations"]["terasky.backstage.io/owner"], "team-a", "TeraSky's keys kept");
    let log = &fake.requests()[before..];
    let on_web: Vec<bool> =
        log.iter().filter(|r| r.method == "PATCH" && r.path.ends_with("/deployments/web")).map(|r| r.dry_run).collect();
    assert_eq!(on_web, [true, false], "a server-side dry run before the one real apply");
    assert!(log.iter().filter(|r| r.method == "PATCH").all(|r| r.field_manager.as_deref() == Some("rigger")));

    let quiet = fake.requests().len();
    sync_once(&config).await;
    assert_eq!(writes_since(&fake, quiet), Vec::<String>::new(), "an unchanged object costs no write");

    repo.commit("green", &[("deploy/app.yaml", Some(&app_manifest("green")))]);
    let plan = stdout(&rigger_cmd(&config, &["plan"]).await);
    assert!(plan.contains("update    v1 ConfigMap default/web-config"), "{plan}");
    assert!(plan.contains("unchanged apps/v1 Deployment default/web"), "{plan}");
    let config_map =
        || fake.get("v1", "ConfigMap", Some("default"), "web-config").expect("ConfigMap")["data"]["mode"].clone();
    assert_eq!(config_map(), "blue", "plan changes nothing");
    sync_once(&config).await;
    assert_eq!(config_map(), "green", "an edited manifest updates the object");

    repo.commit("drop the database", &[(CLAIM_PATH, None)]);
    sync_once(&config).await;
    assert!(fake.get(CLAIM_API, "PostgreSQLInstance", Some("default"), "payments-db").is_none(), "pruned");
    assert!(fake.get("apps/v1", "Deployment", Some("default"), "web").is_some(), "still declared, kept");

    let other = CATALOG
        .replace("payments", "billing")
        .replace("    rigger.dev/manifests: \"./deploy/**/*.yaml\"\n", "    note: none\n");
    repo.commit("payments leaves the catalog", &[("catalog-info.yaml", Some(&other))]);
    sync_once(&config).await;
    assert!(
        fake.get("apps/v1", "Deployment", Some("default"), "web").is_none(),
        "an entity deleted from git is pruned"
    );
    assert!(fake.get("v1", "ConfigMap", Some("default"), "web-config").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_follow_git_created_updated_and_pruned_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    objects_follow_git(TestDb::sqlite(dir.path()), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_follow_git_created_updated_and_pruned_on_postgres() {
    let dir = tempfile::tempdir().expect("tempdir");
    objects_follow_git(TestDb::postgres().await, dir.path()).await;
}

/// The entity's `rigger.dev/cluster` status item, once it says `health`.
async fn cluster_status(daemon: &Daemon, health: &str) -> Option<Value> {
    let (code, entity) = daemon.get_json("/api/catalog/entities/by-name/component/default/payments").await;
    if code != 200 {
        return None;
    }
    let items = entity["status"]["items"].as_array()?;
    items.iter().find(|i| i["type"] == "rigger.dev/cluster" && i["health"] == health).cloned()
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_is_corrected_and_a_failing_managed_resource_shows_on_the_entity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeApiServer::start().await.expect("fake API server");
    install_crossplane_types(&fake).await;
    let repo = repository(dir.path());
    let port = free_port();
    let db = TestDb::sqlite(dir.path());
    let config = config(dir.path(), &db.url, &format!("127.0.0.1:{port}"), &repo, &fake, "");
    let mut daemon = Daemon::start(&config, port);
    daemon.wait_for("/readyz", 200).await;
    let (_, ready) = daemon.get_json("/readyz").await;
    assert_eq!(ready["checks"]["cluster"]["ok"], true, "{ready}");

    // Crossplane's side: the claim binds an XR whose RDS instance cannot be created.
    create(
        &fake,
        "/apis/database.aws.crossplane.io/v1beta1/rdsinstances",
        &json!({
            "apiVersion": MR_API, "kind": "RDSInstance", "metadata": {"name": "payments-db-x7k2p-rds"},
            "spec": {"forProvider": {"dbInstanceClass": "db.t2.nano"}}
        }),
    )
    .await;
    create(
        &fake,
        "/apis/database.example.org/v1alpha1/xpostgresqlinstances",
        &json!({
            "apiVersion": CLAIM_API, "kind": "XPostgreSQLInstance", "metadata": {"name": "payments-db-x7k2p"},
            "spec": {"resourceRefs": [{"apiVersion": MR_API, "kind": "RDSInstance", "name": "payments-db-x7k2p-rds"}]}
        }),
    )
    .await;
    let creating = json!({"conditions": [
        {"type": "Synced", "status": "True", "reason": "ReconcileSuccess"},
        {"type": "Ready", "status": "False", "reason": "Creating"}
    ]});
    fake.set_status(
        MR_API,
        "RDSInstance",
        None,
        "payments-db-x7k2p-rds",
        json!({"conditions": [
            {"type": "Synced", "status": "False", "reason": "ReconcileError",
             "message": "create failed: InvalidParameterValue: db.t2.nano is not a valid instance class"}
        ]}),
    );
    fake.set_status(CLAIM_API, "XPostgreSQLInstance", None, "payments-db-x7k2p", creating.clone());
    let bind = json!({"spec": {"resourceRef": {"apiVersion": CLAIM_API, "kind": "XPostgreSQLInstance", "name": "payments-db-x7k2p"}}});
    assert!(fake.patch_as("crossplane", CLAIM_API, "PostgreSQLInstance", Some("default"), "payments-db", bind));
    assert!(fake.set_status(CLAIM_API, "PostgreSQLInstance", Some("default"), "payments-db", creating));

    let mut failed = None;
    eventually("the claim's root cause on the entity", async || {
        failed = cluster_status(&daemon, "Failed").await;
        failed.is_some()
    })
    .await;
    let failed = failed.expect("status");
    assert_eq!(failed["level"], "error");
    let message = failed["message"].as_str().expect("message");
    assert!(
        message.contains("RDSInstance payments-db-x7k2p-rds") && message.contains("not a valid instance class"),
        "{message}"
    );

    // The bound claim comes back into the catalog as a Resource, with TeraSky's keys.
    let mut resource = Value::Null;
    eventually("the claim ingested as a Resource", async || {
        resource = daemon.get_json("/api/catalog/entities/by-name/resource/default/payments-db").await.1;
        resource["spec"]["type"] == "crossplane-claim"
    })
    .await;
    assert_eq!(resource["spec"]["owner"], "team-a", "owner from terasky.backstage.io/owner");
    let annotations = &resource["metadata"]["annotations"];
    assert_eq!(annotations["terasky.backstage.io/claim-kind"], "PostgreSQLInstance");
    assert_eq!(annotations["terasky.backstage.io/composite-name"], "payments-db-x7k2p");
    assert_eq!(annotations["backstage.io/kubernetes-cluster"], "default");

    // A hand edit is drift: the next pass takes the field back.
    let hacked = json!({"data": {"mode": "hacked"}});
    assert!(fake.patch_as("kubectl-edit", "v1", "ConfigMap", Some("default"), "web-config", hacked));
    eventually("the ConfigMap restored from git", async || {
        fake.get("v1", "ConfigMap", Some("default"), "web-config").is_some_and(|c| c["data"]["mode"] == "blue")
    })
    .await;
    // The counter is bumped just after the apply the test saw: wait for it too.
    eventually("the drift counted", async || {
        daemon.get_text("/metrics").await.contains("rigger_drift_corrections_total{source=\"payments\"} 1")
    })
    .await;
    let metrics = daemon.get_text("/metrics").await;
    assert!(metrics.contains("rigger_entity_health{health=\"Failed\",source=\"payments\"} 1"), "{metrics}");
    // Taking a hand edit back is a conflict answered and resolved, not an apply error.
    assert!(metrics.contains("rigger_cluster_requests_total{operation=\"apply\",outcome=\"conflict\"} 1"), "{metrics}");
    assert!(metrics.contains("rigger_cluster_requests_total{operation=\"apply\",outcome=\"error\"} 0"), "{metrics}");

    // A controller's change (an autoscaler's replicas) is not a hand edit: reported, not forced.
    let scaled = json!({"spec": {"replicas": 3}});
    assert!(fake.patch_as("kube-controller-manager", "apps/v1", "Deployment", Some("default"), "web", scaled));
    let mut conflict = None;
    eventually("the conflict with the controller on the entity", async || {
        conflict = cluster_status(&daemon, "Failed").await.filter(|s| s["sync"] == "Failed");
        conflict.is_some()
    })
    .await;
    let message = conflict.expect("status")["message"].as_str().expect("message").to_owned();
    assert!(message.contains("kube-controller-manager"), "{message}");
    let web = fake.get("apps/v1", "Deployment", Some("default"), "web").expect("deployment");
    assert_eq!(web["spec"]["replicas"], 3, "the controller's value is not overwritten");
    assert!(daemon.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_outside_the_tenancy_are_refused_and_their_siblings_still_apply() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeApiServer::start().await.expect("fake API server");
    let repo = TestRepo::new(dir.path(), "tenants");
    let entity = |name: &str| {
        format!("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  annotations:\n    rigger.dev/manifests: ./{name}.yaml\nspec: {{ type: service, lifecycle: production, owner: team-a }}\n")
    };
    let config_map = |name: &str, namespace: Option<&str>| {
        let ns = namespace.map(|n| format!("  namespace: {n}\n")).unwrap_or_default();
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n{ns}data: {{ k: v }}\n")
    };
    let greedy = format!(
        "{}---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{ name: make-me-admin }}\nroleRef: {{ apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin }}\nsubjects: [{{ kind: User, name: mallory }}]\n---\n{}",
        config_map("greedy-ok", None),
        config_map("greedy-elsewhere", Some("kube-system"))
    );
    repo.commit(
        "tenants",
        &[
            ("catalog-info.yaml", Some(&format!("{}---\n{}", entity("greedy"), entity("modest")))),
            ("greedy.yaml", Some(&greedy)),
            ("modest.yaml", Some(&config_map("modest-config", None))),
        ],
    );
    let db = TestDb::sqlite(dir.path());
    let config = config(dir.path(), &db.url, "127.0.0.1:0", &repo, &fake, "");
    let output = rigger_cmd(&config, &["sync", "--once"]).await;
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "a refusal is an error: {out}");
    assert!(out.contains("ClusterRoleBinding make-me-admin: RBAC objects are not allowed"), "{out}");
    assert!(out.contains("namespace \"kube-system\" is not one this entity may write to (default)"), "{out}");
    assert!(fake.list("rbac.authorization.k8s.io/v1", "ClusterRoleBinding").is_empty());
    assert!(fake.get("v1", "ConfigMap", Some("kube-system"), "greedy-elsewhere").is_none());
    assert!(fake.get("v1", "ConfigMap", Some("default"), "greedy-ok").is_none(), "a refused set applies nothing");
    assert!(fake.get("v1", "ConfigMap", Some("default"), "modest-config").is_some(), "the sibling entity applies");
}

#[tokio::test(flavor = "multi_thread")]
async fn api_faults_are_retried_and_lose_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeApiServer::start().await.expect("fake API server");
    install_crossplane_types(&fake).await;
    let repo = repository(dir.path());
    let db = TestDb::sqlite(dir.path());
    let config = config(dir.path(), &db.url, "127.0.0.1:0", &repo, &fake, "");
    let text = std::fs::read_to_string(&config).expect("config").replace("max_attempts: 2", "max_attempts: 4");
    std::fs::write(&config, text).expect("config");
    fake.inject(Fault::status(500).method("PATCH").path_contains("/configmaps/").times(2));
    fake.inject(Fault::status(429).retry_after(1).method("PATCH").path_contains("/deployments/").times(1));
    fake.inject(Fault::delay(Duration::from_secs(5)).method("GET").path_contains("/postgresqlinstances/").times(1));
    sync_once(&config).await;
    assert!(fake.get("v1", "ConfigMap", Some("default"), "web-config").is_some());
    assert!(fake.get("apps/v1", "Deployment", Some("default"), "web").is_some());
    assert!(fake.get(CLAIM_API, "PostgreSQLInstance", Some("default"), "payments-db").is_some());
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert!(statuses.contains(&500) && statuses.contains(&429), "the faults were served: {statuses:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_api_server_degrades_readiness_and_the_changes_land_when_it_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = repository(dir.path());
    // The API server's port answers every connection by closing it until the fake takes over:
    // held all along, so no other process can take it in between.
    let holder = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = holder.local_addr().expect("addr");
    let refuser = tokio::spawn(async move {
        loop {
            if let Ok((connection, _)) = holder.accept().await {
                drop(connection);
            }
        }
    });
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!("apiVersion: v1\nkind: Config\nclusters: [{{ name: c, cluster: {{ server: 'http://{addr}' }} }}]\nusers: [{{ name: u, user: {{}} }}]\ncontexts: [{{ name: x, context: {{ cluster: c, user: u }} }}]\ncurrent-context: x\n"),
    )
    .expect("kubeconfig");
    let port = free_port();
    let db = TestDb::sqlite(dir.path());
    let config = kube_config(dir.path(), &db.url, &format!("127.0.0.1:{port}"), &repo, &kubeconfig, "");
    let mut daemon = Daemon::start(&config, port);
    daemon.wait_for("/readyz", 200).await;
    let (_, ready) = daemon.get_json("/readyz").await;
    assert_eq!(ready["checks"]["cluster"]["state"], "degraded", "{ready}");
    let (code, _) = daemon.get_json("/api/catalog/entities/by-name/component/default/payments").await;
    assert_eq!(code, 200, "the catalog syncs without the cluster");

    refuser.abort();
    assert!(refuser.await.is_err_and(|e| e.is_cancelled()), "the holder is gone");
    let fake = FakeApiServer::start_on(addr).await.expect("the API server comes back");
    install_crossplane_types(&fake).await;
    eventually("the objects applied once the API server answers", async || {
        fake.get("apps/v1", "Deployment", Some("default"), "web").is_some()
            && fake.get(CLAIM_API, "PostgreSQLInstance", Some("default"), "payments-db").is_some()
    })
    .await;
    eventually("readiness reports the cluster again", async || {
        daemon.get_json("/readyz").await.1["checks"]["cluster"]["ok"] == true
    })
    .await;
    assert!(daemon.terminate().success());
}

/// A catalog of one component per `(name, manifest file)`.
fn components(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| {
            format!("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  annotations:\n    rigger.dev/manifests: ./{name}.yaml\nspec: {{ type: service, lifecycle: production, owner: team-a }}\n")
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

fn config_maps(prefix: &str, count: usize) -> String {
    (0..count)
        .map(|i| format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{ name: {prefix}-{i} }}\ndata: {{ k: v }}\n"))
        .collect::<Vec<_>>()
        .join("---\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_platform_source_applies_namespace_and_crd_before_what_needs_them_as_its_service_account() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeApiServer::start().await.expect("fake API server");
    let repo = TestRepo::new(dir.path(), "platform");
    let widget_crd =
        serde_yaml::to_string(&crd("acme.io", "v1", "Widget", "widgets", "Namespaced", "none")).expect("yaml");
    let manifests = format!(
        "apiVersion: acme.io/v1\nkind: Widget\nmetadata: {{ name: gizmo }}\nspec: {{ size: 3 }}\n---\n{widget_crd}---\napiVersion: v1\nkind: Namespace\nmetadata: {{ name: team-x }}\n"
    );
    repo.commit(
        "platform",
        &[("catalog-info.yaml", Some(&components(&["platform"]))), ("platform.yaml", Some(&manifests))],
    );
    let tenancy = "    tenancy:\n      namespaces: { default: [team-x] }\n      allow_cluster_scoped: true\n      service_account: rigger/platform\n";
    let db = TestDb::sqlite(dir.path());
    let config = config(dir.path(), &db.url, "127.0.0.1:0", &repo, &fake, tenancy);
    // A real API server serves a new CRD a moment after accepting it: the kind's discovery
    // answers 404 until then (twice while planning, once more after the CRD is applied).
    fake.inject(Fault::status(404).method("GET").path_contains("/apis/acme.io/v1").times(3));
    sync_once(&config).await;
    assert!(fake.get("v1", "Namespace", None, "team-x").is_some());
    assert!(fake.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", None, "widgets.acme.io").is_some());
    let widget = fake.get("acme.io/v1", "Widget", Some("team-x"), "gizmo").expect("the CR, in the tenancy's namespace");
    assert_eq!(widget["spec"]["size"], 3);
    let writes: Vec<_> = fake.requests().into_iter().filter(|r| r.method == "PATCH").collect();
    let order: Vec<&str> = writes.iter().filter(|r| !r.dry_run).map(|r| r.path.as_str()).collect();
    let position = |needle: &str| order.iter().position(|p| p.contains(needle)).expect(needle);
    assert!(position("/namespaces/team-x") < position("/widgets/gizmo"), "{order:?}");
    assert!(position("/customresourcedefinitions/") < position("/widgets/gizmo"), "{order:?}");
    assert!(
        writes.iter().all(|r| r.impersonate.as_deref() == Some("system:serviceaccount:rigger:platform")),
        "every write impersonates the source's service account"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pass_that_would_prune_most_of_a_source_prunes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeApiServer::start().await.expect("fake API server");
    let repo = TestRepo::new(dir.path(), "many");
    repo.commit(
        "twelve objects",
        &[
            ("catalog-info.yaml", Some(&components(&["big", "small"]))),
            ("big.yaml", Some(&config_maps("big", 10))),
            ("small.yaml", Some(&config_maps("small", 2))),
        ],
    );
    let db = TestDb::sqlite(dir.path());
    let config = config(dir.path(), &db.url, "127.0.0.1:0", &repo, &fake, "");
    sync_once(&config).await;
    assert_eq!(fake.list("v1", "ConfigMap").len(), 12);

    repo.commit("a bad merge drops most of them", &[("big.yaml", Some(&config_maps("big", 2)))]);
    let output = rigger_cmd(&config, &["sync", "--once"]).await;
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.contains("the pass would prune 8 of 12 objects (67 %), over the limit of 50 %"), "{out}");
    assert_eq!(fake.list("v1", "ConfigMap").len(), 12, "nothing pruned");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_moved_to_another_entity_is_handed_over_not_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeApiServer::start().await.expect("fake API server");
    let repo = TestRepo::new(dir.path(), "moving");
    repo.commit(
        "a owns it",
        &[
            ("catalog-info.yaml", Some(&components(&["alpha", "beta"]))),
            ("alpha.yaml", Some(&format!("{}---\n{}", config_maps("alpha", 1), config_maps("shared", 1)))),
            ("beta.yaml", Some(&config_maps("beta", 1))),
        ],
    );
    let db = TestDb::sqlite(dir.path());
    let config = config(dir.path(), &db.url, "127.0.0.1:0", &repo, &fake, "");
    sync_once(&config).await;
    let owner = || {
        fake.get("v1", "ConfigMap", Some("default"), "shared-0")
            .map(|c| c["metadata"]["annotations"]["rigger.dev/entity-ref"].clone())
    };
    assert_eq!(owner(), Some(json!("component:default/alpha")));
    let uid = fake.get("v1", "ConfigMap", Some("default"), "shared-0").expect("cm")["metadata"]["uid"].clone();

    repo.commit(
        "b takes it",
        &[
            ("alpha.yaml", Some(&config_maps("alpha", 1))),
            ("beta.yaml", Some(&format!("{}---\n{}", config_maps("beta", 1), config_maps("shared", 1)))),
        ],
    );
    sync_once(&config).await;
    assert_eq!(owner(), Some(json!("component:default/beta")), "handed over");
    let now = fake.get("v1", "ConfigMap", Some("default"), "shared-0").expect("still there");
    assert_eq!(now["metadata"]["uid"], uid, "the same object: never deleted in between");
    let deletes = fake.requests().iter().filter(|r| r.method == "DELETE").count();
    assert_eq!(deletes, 0, "nothing was pruned");
    sync_once(&config).await;
    assert_eq!(fake.list("v1", "ConfigMap").len(), 3, "and a quiet pass after it keeps all three");
}
