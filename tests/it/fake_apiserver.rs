//! The fake Kubernetes API server, driven by the real `kube` client (and kubectl when present).
//! Each test names the real API server behaviour the fake stands in for.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::core::{GroupVersionKind, Status};
use kube::discovery::{Discovery, Scope};
use kube::runtime::watcher;
use rigger::testkit::{FakeApiServer, Fault};
use serde_json::{json, Value};

use crate::support::fake_kube::client;

/// Generous for a busy 2-core machine; every wait returns as soon as its condition holds.
const DEADLINE: Duration = Duration::from_secs(20);

async fn start() -> (FakeApiServer, kube::Client) {
    let server = FakeApiServer::start().await.unwrap();
    let client = client(&server).await;
    (server, client)
}

fn configmaps(client: &kube::Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &ApiResource::erase::<ConfigMap>(&()))
}

fn object(value: Value) -> DynamicObject {
    serde_json::from_value(value).unwrap()
}

fn configmap(name: &str, data: Value) -> DynamicObject {
    let mut cm = object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}));
    cm.data["data"] = data;
    cm
}

async fn apply(api: &Api<DynamicObject>, manager: &str, obj: &DynamicObject) -> Result<DynamicObject, kube::Error> {
    api.patch(&obj.metadata.name.clone().unwrap(), &PatchParams::apply(manager), &Patch::Apply(obj)).await
}

fn api_error<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn managers(obj: &DynamicObject) -> Vec<Value> {
    let entries = obj.metadata.managed_fields.clone().unwrap_or_default();
    entries.iter().map(|e| serde_json::to_value(e).unwrap()).collect()
}

async fn next<S: Stream + Unpin>(stream: &mut S) -> S::Item {
    tokio::time::timeout(DEADLINE, stream.next())
        .await
        .expect("an event before the deadline")
        .expect("the stream goes on")
}

fn crd() -> DynamicObject {
    object(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    }))
}

#[tokio::test]
async fn discovery_serves_the_built_in_groups_with_scopes_and_status_subresources() {
    let (_server, client) = start().await;
    for discovery in
        [Discovery::new(client.clone()).run().await.unwrap(), Discovery::new(client).run_aggregated().await.unwrap()]
    {
        let (deployment, caps) = discovery.resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment")).unwrap();
        assert_eq!((deployment.plural.as_str(), caps.scope.clone()), ("deployments", Scope::Namespaced));
        assert!(caps.subresources.iter().any(|(sub, _)| sub.plural == "status"));
        let (_, caps) = discovery.resolve_gvk(&GroupVersionKind::gvk("", "v1", "Namespace")).unwrap();
        assert_eq!(caps.scope, Scope::Cluster);
        let (_, caps) =
            discovery.resolve_gvk(&GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", "ClusterRole")).unwrap();
        assert_eq!(caps.scope, Scope::Cluster);
        assert!(discovery.resolve_gvk(&GroupVersionKind::gvk("batch", "v1", "Job")).is_some());
    }
}

#[tokio::test]
async fn an_applied_crd_is_served_and_discovered_until_it_is_deleted() {
    let (server, client) = start().await;
    let crds: Api<DynamicObject> = Api::all_with(client.clone(), &ApiResource::erase::<CustomResourceDefinition>(&()));
    let stored = apply(&crds, "rigger", &crd()).await.unwrap();
    let established = stored.data["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "Established" && c["status"] == "True");
    assert!(established, "the real server marks an accepted CRD Established");

    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let (widgets, caps) = discovery.resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget")).unwrap();
    assert_eq!((widgets.plural.as_str(), caps.scope), ("widgets", Scope::Namespaced));
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &widgets);
    let widget = object(
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}}),
    );
    apply(&api, "rigger", &widget).await.unwrap();
    assert_eq!(api.get("w1").await.unwrap().data["spec"]["size"], 3);
    assert_eq!(server.get("example.com/v1", "Widget", Some("default"), "w1").unwrap()["metadata"]["generation"], 1);

    crds.delete("widgets.example.com", &DeleteParams::default()).await.unwrap();
    assert!(!Discovery::new(client).run().await.unwrap().has_group("example.com"));
    assert_eq!(api_error(api.get("w1").await).code, 404);
}

#[tokio::test]
async fn server_side_apply_creates_the_object_and_records_the_manager_in_real_format() {
    let (server, client) = start().await;
    let api = configmaps(&client, "default");
    let mut desired = configmap("settings", json!({"k": "v"}));
    desired.metadata.labels = Some([("app".to_owned(), "web".to_owned())].into());
    let created = apply(&api, "rigger", &desired).await.unwrap();

    let entries = managers(&created);
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(
        (&entry["manager"], &entry["operation"], &entry["apiVersion"], &entry["fieldsType"]),
        (&json!("rigger"), &json!("Apply"), &json!("v1"), &json!("FieldsV1"))
    );
    assert_eq!(entry["fieldsV1"], json!({"f:data": {"f:k": {}}, "f:metadata": {"f:labels": {"f:app": {}}}}));
    assert!(entry["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    let patch = server.requests().into_iter().find(|r| r.method == "PATCH").unwrap();
    assert_eq!((patch.status, patch.field_manager.as_deref()), (201, Some("rigger")), "apply that creates answers 201");
}

#[tokio::test]
async fn applying_an_unchanged_config_stores_nothing() {
    let (server, client) = start().await;
    let api = configmaps(&client, "default");
    let first = apply(&api, "rigger", &configmap("same", json!({"k": "v"}))).await.unwrap();
    let revision = server.revision();
    let second = apply(&api, "rigger", &configmap("same", json!({"k": "v"}))).await.unwrap();
    assert_eq!(second.metadata.resource_version, first.metadata.resource_version);
    assert_eq!(server.revision(), revision);
}

#[tokio::test]
async fn fields_dropped_from_the_applied_config_are_removed() {
    let (_server, client) = start().await;
    let api = configmaps(&client, "default");
    apply(&api, "rigger", &configmap("shrink", json!({"a": "1", "b": "2"}))).await.unwrap();
    let after = apply(&api, "rigger", &configmap("shrink", json!({"a": "1"}))).await.unwrap();
    assert_eq!(after.data["data"], json!({"a": "1"}));
}

#[tokio::test]
async fn a_second_manager_applying_another_value_gets_409_until_it_forces() {
    let (_server, client) = start().await;
    let api = configmaps(&client, "default");
    apply(&api, "rigger", &configmap("shared", json!({"k": "ours"}))).await.unwrap();

    let status = api_error(apply(&api, "other", &configmap("shared", json!({"k": "theirs"}))).await);
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert_eq!(status.message, "Apply failed with 1 conflict: conflict with \"rigger\": .data.k");
    let cause = &status.details.unwrap().causes[0];
    assert_eq!(
        (cause.reason.as_str(), cause.message.as_str(), cause.field.as_str()),
        ("FieldManagerConflict", "conflict with \"rigger\"", ".data.k")
    );

    let forced = api
        .patch(
            "shared",
            &PatchParams::apply("other").force(),
            &Patch::Apply(configmap("shared", json!({"k": "theirs"}))),
        )
        .await
        .unwrap();
    assert_eq!(forced.data["data"]["k"], "theirs");
    let owners: Vec<Value> = managers(&forced).into_iter().map(|e| e["manager"].clone()).collect();
    assert_eq!(owners, vec![json!("other")], "forcing moves the field's ownership (rigger owned nothing else)");
}

#[tokio::test]
async fn a_hand_edit_makes_the_next_unforced_apply_conflict_with_the_editor() {
    let (server, client) = start().await;
    let api = configmaps(&client, "default");
    apply(&api, "rigger", &configmap("edited", json!({"k": "desired", "other": "x"}))).await.unwrap();
    let edit = PatchParams { field_manager: Some("kubectl-edit".into()), ..PatchParams::default() };
    api.patch("edited", &edit, &Patch::Merge(json!({"data": {"k": "by hand"}}))).await.unwrap();

    let status = api_error(apply(&api, "rigger", &configmap("edited", json!({"k": "desired", "other": "x"}))).await);
    assert_eq!(status.message, "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using v1: .data.k");

    // Drift made in-process counts the same way: an Update by another manager.
    assert!(server.patch_as("operator", "v1", "ConfigMap", Some("default"), "edited", json!({"data": {"other": "y"}})));
    let status = api_error(apply(&api, "rigger", &configmap("edited", json!({"k": "by hand", "other": "x"}))).await);
    assert_eq!(status.message, "Apply failed with 1 conflict: conflict with \"operator\" using v1: .data.other");
}

#[tokio::test]
async fn dry_run_answers_like_a_write_but_stores_nothing() {
    let (server, client) = start().await;
    let api = configmaps(&client, "default");
    apply(&api, "rigger", &configmap("kept", json!({"k": "v"}))).await.unwrap();
    let revision = server.revision();

    let created =
        api.create(&PostParams { dry_run: true, ..PostParams::default() }, &configmap("new", json!({}))).await.unwrap();
    assert_eq!(created.metadata.name.as_deref(), Some("new"));
    let applied = api
        .patch(
            "kept",
            &PatchParams::apply("rigger").dry_run(),
            &Patch::Apply(configmap("kept", json!({"k": "changed"}))),
        )
        .await
        .unwrap();
    assert_eq!(applied.data["data"]["k"], "changed");
    api.delete("kept", &DeleteParams { dry_run: true, ..DeleteParams::default() }).await.unwrap();

    assert_eq!(server.revision(), revision);
    assert!(server.get("v1", "ConfigMap", Some("default"), "new").is_none());
    assert_eq!(server.get("v1", "ConfigMap", Some("default"), "kept").unwrap()["data"]["k"], "v");
    let writes: Vec<bool> = server.requests().iter().filter(|r| r.method != "GET").map(|r| r.dry_run).collect();
    assert_eq!(writes, vec![false, true, true, true]);
}

#[tokio::test]
async fn finalizers_hold_a_deleted_object_until_they_are_removed() {
    let (server, client) = start().await;
    let api = configmaps(&client, "default");
    let mut held = configmap("held", json!({}));
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&PostParams::default(), &held).await.unwrap();

    let pending = api.delete("held", &DeleteParams::default()).await.unwrap().left().expect("the object, not a Status");
    assert!(pending.metadata.deletion_timestamp.is_some());
    assert!(api.get("held").await.unwrap().metadata.deletion_timestamp.is_some());

    api.patch("held", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}}))).await.unwrap();
    assert_eq!(api_error(api.get("held").await).code, 404);
    assert!(server.get("v1", "ConfigMap", Some("default"), "held").is_none());
}

#[tokio::test]
async fn the_status_subresource_and_the_main_resource_each_change_only_their_part() {
    let (server, client) = start().await;
    let api: Api<DynamicObject> = Api::namespaced_with(client, "default", &ApiResource::erase::<Deployment>(&()));
    let deployment = |replicas: i64| {
        object(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}},
            "status": {"readyReplicas": 99}}))
    };
    let created = apply(&api, "rigger", &deployment(2)).await.unwrap();
    assert!(created.data.get("status").is_none(), "status sent to the main resource is ignored");

    let patched = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 7}, "status": {"readyReplicas": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(
        (patched.data["spec"]["replicas"].clone(), patched.data["status"]["readyReplicas"].clone()),
        (json!(2), json!(2))
    );
    assert_eq!(patched.metadata.generation, Some(1), "a status write is not a new generation");

    let updated = apply(&api, "rigger", &deployment(3)).await.unwrap();
    assert_eq!((updated.metadata.generation, updated.data["status"]["readyReplicas"].clone()), (Some(2), json!(2)));
    assert!(server.set_status("apps/v1", "Deployment", Some("default"), "web", json!({"readyReplicas": 3})));
    assert_eq!(api.get_status("web").await.unwrap().data["status"]["readyReplicas"], 3);
}

#[tokio::test]
async fn lists_filter_by_label_and_field_selectors_and_span_namespaces() {
    let (_server, client) = start().await;
    let namespaces: Api<DynamicObject> =
        Api::all_with(client.clone(), &ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&()));
    apply(
        &namespaces,
        "rigger",
        &object(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})),
    )
    .await
    .unwrap();
    for (namespace, name, tier) in [("default", "a", "front"), ("default", "b", "back"), ("team-a", "c", "front")] {
        let mut cm = configmap(name, json!({}));
        cm.metadata.labels = Some([("tier".to_owned(), tier.to_owned())].into());
        configmaps(&client, namespace).create(&PostParams::default(), &cm).await.unwrap();
    }
    let all: Api<DynamicObject> = Api::all_with(client.clone(), &ApiResource::erase::<ConfigMap>(&()));
    let names = |list: kube::core::ObjectList<DynamicObject>| {
        list.items.into_iter().map(|o| o.metadata.name.unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(names(all.list(&ListParams::default().labels("tier=front")).await.unwrap()), vec!["a", "c"]);
    assert_eq!(names(all.list(&ListParams::default().labels("tier!=front")).await.unwrap()), vec!["b"]);
    assert_eq!(names(all.list(&ListParams::default().fields("metadata.namespace=team-a")).await.unwrap()), vec!["c"]);
    assert_eq!(
        names(configmaps(&client, "default").list(&ListParams::default().fields("metadata.name=b")).await.unwrap()),
        vec!["b"]
    );

    let first = all.list(&ListParams::default().limit(2)).await.unwrap();
    let token = first.metadata.continue_.clone().expect("a continue token");
    let rest = all.list(&ListParams::default().limit(2).continue_token(&token)).await.unwrap();
    assert_eq!((names(first), names(rest)), (vec!["a".to_owned(), "b".to_owned()], vec!["c".to_owned()]));
}

#[tokio::test]
async fn creating_in_a_missing_namespace_or_twice_fails_as_on_a_real_server() {
    let (_server, client) = start().await;
    let missing =
        api_error(configmaps(&client, "nowhere").create(&PostParams::default(), &configmap("x", json!({}))).await);
    assert_eq!((missing.code, missing.message.as_str()), (404, "namespaces \"nowhere\" not found"));
    let api = configmaps(&client, "default");
    api.create(&PostParams::default(), &configmap("x", json!({}))).await.unwrap();
    let twice = api_error(api.create(&PostParams::default(), &configmap("x", json!({}))).await);
    assert_eq!((twice.code, twice.reason.as_str()), (409, "AlreadyExists"));
    let stale =
        object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "resourceVersion": "1"}}));
    assert_eq!(
        api_error(api.replace("x", &PostParams::default(), &stale).await).reason,
        "Conflict",
        "a stale resourceVersion is refused"
    );
}

#[tokio::test]
async fn a_watch_delivers_added_modified_and_deleted_events() {
    let (_server, client) = start().await;
    let api = configmaps(&client, "default");
    let mut events = api.watch(&WatchParams::default(), "0").await.unwrap().boxed();
    apply(&api, "rigger", &configmap("watched", json!({"k": "1"}))).await.unwrap();
    apply(&api, "rigger", &configmap("watched", json!({"k": "2"}))).await.unwrap();
    api.delete("watched", &DeleteParams::default()).await.unwrap();

    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(match next(&mut events).await.unwrap() {
            WatchEvent::Added(o) => ("ADDED", o.data["data"]["k"].clone()),
            WatchEvent::Modified(o) => ("MODIFIED", o.data["data"]["k"].clone()),
            WatchEvent::Deleted(o) => ("DELETED", o.data["data"]["k"].clone()),
            other => panic!("unexpected {other:?}"),
        });
    }
    assert_eq!(seen, vec![("ADDED", json!("1")), ("MODIFIED", json!("2")), ("DELETED", json!("2"))]);
}

/// Waits for the watcher to report an applied object named `name`.
async fn until_applied<S>(stream: &mut S, name: &str)
where
    S: Stream<Item = Result<watcher::Event<DynamicObject>, watcher::Error>> + Unpin,
{
    loop {
        if let Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) = next(stream).await {
            if o.metadata.name.as_deref() == Some(name) {
                return;
            }
        }
    }
}

#[tokio::test]
async fn the_runtime_watcher_resumes_after_dropped_watches_and_relists_after_410() {
    let (server, client) = start().await;
    let api = configmaps(&client, "default");
    let mut stream = watcher(api.clone(), watcher::Config::default()).boxed();
    apply(&api, "rigger", &configmap("first", json!({}))).await.unwrap();
    until_applied(&mut stream, "first").await;

    server.drop_watches();
    apply(&api, "rigger", &configmap("while-dropped", json!({}))).await.unwrap();
    until_applied(&mut stream, "while-dropped").await;

    // The watcher resumes only when polled, so it is behind this write and the compaction:
    // resuming from its last resourceVersion gets 410 Gone, and it relists.
    server.drop_watches();
    apply(&api, "rigger", &configmap("after-compaction", json!({}))).await.unwrap();
    server.compact();
    let deadline = Instant::now() + DEADLINE;
    let mut saw_gone = false;
    loop {
        assert!(Instant::now() < deadline, "the watcher never relisted");
        match next(&mut stream).await {
            Err(watcher::Error::WatchError(status)) if status.code == 410 => saw_gone = true,
            Ok(watcher::Event::InitApply(o)) if saw_gone && o.metadata.name.as_deref() == Some("after-compaction") => {
                break
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn injected_429_and_500_are_answered_as_injected_then_the_server_recovers() {
    let (server, client) = start().await;
    server.inject(Fault::status(429).retry_after(7).method("GET").path_contains("/configmaps"));
    let url = format!("{}/api/v1/namespaces/default/configmaps", server.url());
    let limited = reqwest::get(&url).await.unwrap();
    assert_eq!(limited.status().as_u16(), 429);
    assert_eq!(limited.headers()["retry-after"], "7");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(
        (body["reason"].as_str(), body["details"]["retryAfterSeconds"].as_u64()),
        (Some("TooManyRequests"), Some(7))
    );

    server.inject(Fault::status(500).times(2));
    let api = configmaps(&client, "default");
    assert_eq!(api_error(api.list(&ListParams::default()).await).code, 500);
    assert_eq!(api_error(api.get("anything").await).code, 500);
    assert!(api.list(&ListParams::default()).await.is_ok(), "faults last for their count only");
    // kube-rs retries a 429 itself, after the Retry-After the server asked for.
    server.inject(Fault::status(429).retry_after(1));
    assert!(api.list(&ListParams::default()).await.is_ok());
    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![429, 500, 500, 200, 429, 200]);
}

#[tokio::test]
async fn a_delay_fault_outlasts_a_client_timeout() {
    let (server, _client) = start().await;
    server.inject(Fault::delay(Duration::from_secs(30)).path_contains("/version"));
    let http = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().unwrap();
    let url = format!("{}/version", server.url());
    assert!(http.get(&url).send().await.unwrap_err().is_timeout());
    assert_eq!(http.get(&url).send().await.unwrap().status().as_u16(), 200);
}

/// Polls until `path` exists, or panics at the deadline.
fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + DEADLINE;
    while !path.exists() {
        assert!(Instant::now() < deadline, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The binary as a child process, killed when the test ends (also when it fails).
struct Process(std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_standalone_binary_writes_a_kubeconfig_that_a_client_uses() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let _server = Process(
        Command::new(env!("CARGO_BIN_EXE_fake-apiserver"))
            .args(["--listen", "127.0.0.1:0", "--kubeconfig"])
            .arg(&kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_file(&kubeconfig);
    let kubeconfig = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default()).await.unwrap();
    let base = config.cluster_url.to_string().trim_end_matches('/').to_owned();
    let client = kube::Client::try_from(config).unwrap();
    let namespaces: Api<DynamicObject> =
        Api::all_with(client, &ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&()));
    let list = namespaces.list(&ListParams::default()).await.unwrap();
    let names: Vec<String> = list.items.into_iter().filter_map(|n| n.metadata.name).collect();
    assert_eq!(names, vec!["default", "kube-public", "kube-system"]);

    // The control endpoint arms faults in the process (500: kube-rs retries 429/503/504 itself).
    let http = reqwest::Client::new();
    let fault =
        http.post(format!("{base}/_fake/faults")).json(&json!({"status": 500, "times": 1})).send().await.unwrap();
    assert_eq!(fault.status().as_u16(), 204);
    assert_eq!(api_error(namespaces.get("default").await).code, 500);
    let log: Vec<Value> = http.get(format!("{base}/_fake/requests")).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        (&log.last().unwrap()["path"], &log.last().unwrap()["status"]),
        (&json!("/api/v1/namespaces/default"), &json!(500))
    );
}

#[tokio::test]
async fn kubectl_applies_server_side_and_reads_back_through_discovery() {
    // scripts/test installs kubectl first; a missing one fails here rather than passing unseen.
    assert!(
        Command::new("kubectl").arg("version").arg("--client").output().is_ok(),
        "kubectl is missing; scripts/install-test-deps installs it"
    );
    let server = FakeApiServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let manifest = dir.path().join("cm.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-kubectl\n  labels: {app: web}\ndata:\n  k: v\n",
    )
    .unwrap();
    let kubectl = |args: &[&str]| {
        let dir = dir.path().to_owned();
        let kubeconfig = kubeconfig.clone();
        let args: Vec<String> = args.iter().map(|&a| a.to_owned()).collect();
        async move {
            tokio::task::spawn_blocking(move || {
                Command::new("kubectl")
                    .arg("--kubeconfig")
                    .arg(&kubeconfig)
                    .arg("--cache-dir")
                    .arg(dir.join("cache"))
                    .args(&args)
                    .output()
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    let applied = kubectl(&["apply", "--server-side", "-f", manifest.to_str().unwrap()]).await;
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    let got = kubectl(&["get", "configmaps", "-l", "app=web", "-o", "json"]).await;
    assert!(got.status.success(), "{}", String::from_utf8_lossy(&got.stderr));
    let list: Value = serde_json::from_slice(&got.stdout).unwrap();
    assert_eq!(list["items"][0]["data"]["k"], "v");
    let stored = server.get("v1", "ConfigMap", Some("default"), "from-kubectl").unwrap();
    assert_eq!(stored["metadata"]["managedFields"][0]["manager"], "kubectl");
}
