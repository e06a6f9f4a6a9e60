//! Rigger as the catalog of a real Backstage backend, started from Backstage's own npm packages
//! (`tests/backstage-backend`, installed by `scripts/install-test-deps`) with
//! `discovery.endpoints` pointing `catalog` at Rigger. Backstage's auth plugin issues a user
//! token, its permission plugin runs an owner-only policy, and a backend plugin reads and
//! refreshes entities through Backstage's catalog service. Every token crosses for real:
//! Rigger verifies Backstage's against the keys Backstage publishes, and Backstage's permission
//! plugin verifies Rigger's against the keys Rigger publishes.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
kind: User
metadata: { name: jane }
spec: { memberOf: [team-a] }
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: { name: pay }
spec: { type: service, lifecycle: production, owner: team-a }
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: { name: billing }
spec: { type: service, lifecycle: production, owner: team-b }
";

/// The Backstage backend's process, stopped when the test ends however it ends.
struct Backstage {
    child: Child,
    base: String,
}

impl Drop for Backstage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Backstage {
    fn start(dir: &Path, port: u16, rigger: &str, database: &str) -> Self {
        let harness = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/backstage-backend");
        assert!(
            harness.join("node_modules/@backstage/backend-defaults").exists(),
            "run scripts/install-test-deps first"
        );
        let base = format!("http://127.0.0.1:{port}");
        let config = format!(
            "app:\n  baseUrl: http://127.0.0.1:3000\n\
             backend:\n  baseUrl: {base}\n  listen: {{ port: {port}, host: 127.0.0.1 }}\n  database:\n    client: pg\n    connection: {database}\n    pluginDivisionMode: schema\n\
             auth:\n  environment: development\n  providers:\n    guest:\n      dangerouslyAllowOutsideDevelopment: true\n      userEntityRef: user:default/jane\n      ownershipEntityRefs: [user:default/jane, group:default/team-a]\n\
             permission:\n  enabled: true\n\
             discovery:\n  endpoints:\n    - target: {rigger}/api/{{{{pluginId}}}}\n      plugins: [catalog]\n"
        );
        let path = dir.join("app-config.yaml");
        std::fs::write(&path, config).unwrap();
        let log = std::fs::File::create(dir.join("backstage.log")).unwrap();
        let child = Command::new("node")
            .arg(harness.join("backend.cjs"))
            .arg("--config")
            .arg(&path)
            // Backstage looks for its package root upwards from the working directory.
            .current_dir(&harness)
            .env("NODE_ENV", "test")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("node runs");
        Self { child, base }
    }

    /// Waits for Backstage's readiness endpoint, or panics with its log.
    async fn wait_ready(&mut self, dir: &Path) {
        let started = Instant::now();
        loop {
            let ready = reqwest::get(format!("{}/.backstage/health/v1/readiness", self.base)).await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            let log = || std::fs::read_to_string(dir.join("backstage.log")).unwrap_or_default();
            if let Ok(Some(exit)) = self.child.try_wait() {
                panic!("the Backstage backend exited with {exit}:\n{}", log());
            }
            assert!(started.elapsed() < Duration::from_secs(60), "Backstage did not start:\n{}", log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn json_of(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_backstage_backend_reads_its_catalog_from_rigger_with_its_tokens_and_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite(dir.path());
    let backstage_db = TestDb::postgres().await;
    let repo = TestRepo::new(dir.path(), "platform");
    repo.commit("catalog", &[("catalog-info.yaml", Some(CATALOG))]);
    let (port, backstage_port) = (free_port(), free_port());
    let sources =
        format!("  - name: platform\n    git:\n      url: {}\n      branch: main\n    interval: 1h\n", repo.file_url());
    let config = write_config(dir.path(), &db.url, &format!("127.0.0.1:{port}"), &sources);
    let server =
        format!("server:\n  backstage:\n    base_url: http://127.0.0.1:{backstage_port}\n    permissions: true\n");
    let text = std::fs::read_to_string(&config).unwrap().replacen("server:\n", &server, 1);
    std::fs::write(&config, text).unwrap();
    assert!(run(&config, &["sync"]).status.success());
    let mut rigger = Daemon::start(&config, port);
    rigger.wait_for("/readyz", 200).await;
    let mut backstage = Backstage::start(dir.path(), backstage_port, &rigger.base, &backstage_db.url);
    backstage.wait_ready(dir.path()).await;
    let http = reqwest::Client::new();
    let probe = |path: &str| format!("{}/api/probe{path}", backstage.base);

    // A backend plugin reads the catalog through Backstage's catalog service, with a plugin
    // token Rigger verifies against the keys Backstage publishes for that plugin.
    let (status, components) = json_of(http.get(probe("/components"))).await;
    assert_eq!((status, components), (200, json!(["billing", "pay"])));

    // A user token from Backstage's auth plugin (the guest provider, signed in as jane).
    let (status, session) = json_of(
        http.get(format!("{}/api/auth/guest/refresh?env=development", backstage.base))
            .header("X-Requested-With", "XMLHttpRequest"),
    )
    .await;
    assert_eq!(status, 200, "{session}");
    let token = session["backstageIdentity"]["token"].as_str().unwrap().to_owned();

    // The portal's browser, calling Rigger directly: Backstage's permission plugin decides, on
    // a token Rigger signs, and its owner-only condition filters the answer.
    let (status, entities) =
        json_of(http.get(format!("{}/api/catalog/entities", rigger.base)).bearer_auth(&token)).await;
    assert_eq!(status, 200, "{entities}");
    let names: Vec<&str> = entities.as_array().unwrap().iter().filter_map(|e| e["metadata"]["name"].as_str()).collect();
    assert_eq!(names, ["pay"], "only what jane's team owns");
    let (status, _) = json_of(http.get(format!("{}/api/catalog/entities", rigger.base))).await;
    assert_eq!(status, 401, "no credentials, no catalog, as Backstage's default policy");

    // A backend plugin on jane's behalf sees what she sees.
    let (status, mine) = json_of(http.get(probe("/mine")).bearer_auth(&token)).await;
    assert_eq!((status, mine), (200, json!(["pay"])));

    // An entity page's question, "may jane refresh this one?": Backstage's permission plugin
    // has Rigger apply its condition to the entity.
    for (entity_ref, verdict) in [("component:default/pay", "ALLOW"), ("component:default/billing", "DENY")] {
        let (status, answer) =
            json_of(http.get(probe(&format!("/may-refresh?ref={entity_ref}"))).bearer_auth(&token)).await;
        assert_eq!((status, answer), (200, json!(verdict)), "{entity_ref}");
    }

    // A plugin's refresh queues the entity's source ahead of its hourly poll.
    let (status, refreshed) = json_of(http.post(probe("/refresh"))).await;
    assert_eq!((status, refreshed), (200, json!({"refreshed": true})));
    let metrics = rigger.get_text("/metrics").await;
    assert!(metrics.contains("rigger_queue_requests_total{reason=\"refresh\"} 1"), "{metrics}");

    drop(backstage);
    assert_eq!(rigger.terminate().code(), Some(0));
}
