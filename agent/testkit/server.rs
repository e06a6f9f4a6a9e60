//! [`FakeApiServer`]: the fake bound to a loopback port, with the in-process handles tests use
//! to look at and poke the cluster (as a controller or a person with kubectl would).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::routing::post;
use axum::Router;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::faults::{self, Fault, RequestRecord};
use super::world::{object_key, present, Target, World};
use super::write::WriteOptions;
use super::{api, control};

/// The manager [`FakeApiServer::set_status`] writes as, standing in for a workload controller.
pub const CONTROLLER_MANAGER: &str = "fake-controller";
/// How long [`FakeApiServer::shutdown`] waits for in-flight requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// State shared by the HTTP handlers and the in-process API.
pub struct Shared {
    pub world: Mutex<World>,
    pub faults: Mutex<Vec<Fault>>,
    pub log: Mutex<Vec<RequestRecord>>,
    /// Cancelled to end every open watch; replaced so later watches live on.
    watches: Mutex<CancellationToken>,
    pub shutdown: CancellationToken,
    pub address: SocketAddr,
}

impl Shared {
    /// A token the next watch stops on: dropped watches, or the server shutting down.
    pub fn watch_token(&self) -> CancellationToken {
        lock(&self.watches).child_token()
    }

    pub fn drop_watches(&self) {
        let mut current = lock(&self.watches);
        current.cancel();
        *current = self.shutdown.child_token();
    }
}

/// A panic in one handler must not wedge every later request: the state stays usable.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub struct FakeApiServer {
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl FakeApiServer {
    /// Serves on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    pub async fn start_on(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let address = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let shared = Arc::new(Shared {
            world: Mutex::new(World::new()),
            faults: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            watches: Mutex::new(shutdown.child_token()),
            shutdown: shutdown.clone(),
            address,
        });
        let app = Router::new()
            .route("/_fake/faults", post(control::add_fault).delete(control::clear_faults))
            .route("/_fake/drop-watches", post(control::drop_watches))
            .route("/_fake/compact", post(control::compact))
            .route("/_fake/requests", axum::routing::get(control::requests).delete(control::clear_requests))
            .fallback(api::handle)
            .layer(axum::middleware::from_fn_with_state(Arc::clone(&shared), faults::gate))
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let serving = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned());
            if let Err(error) = serving.await {
                tracing::error!(error = %error, "fake API server stopped");
            }
        });
        Ok(Self { shared, task: Some(task) })
    }

    pub fn address(&self) -> SocketAddr {
        self.shared.address
    }

    /// `http://127.0.0.1:PORT` (loopback also when bound to every interface).
    pub fn url(&self) -> String {
        let address = self.shared.address;
        let host = if address.ip().is_unspecified() { "127.0.0.1".to_owned() } else { address.ip().to_string() };
        format!("http://{host}:{}", address.port())
    }

    /// A kubeconfig with one cluster, context and (credential-less) user, current and defaulting
    /// to namespace `default`.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\ncurrent-context: fake\nusers:\n- name: fake\n  user: {{}}\npreferences: {{}}\n",
            self.url()
        )
    }

    pub fn write_kubeconfig(&self, path: &std::path::Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig())
    }

    /// The stored object, as served at `api_version` (`"v1"`, `"apps/v1"`…).
    pub fn get(&self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let world = lock(&self.shared.world);
        let rt = world.registry.find_kind(api_version, kind)?;
        world.store.get(&object_key(rt, namespace, name)).map(|object| present(rt, object))
    }

    /// Every stored object of the kind, in all namespaces.
    pub fn list(&self, api_version: &str, kind: &str) -> Vec<Value> {
        let world = lock(&self.shared.world);
        let Some(rt) = world.registry.find_kind(api_version, kind) else { return Vec::new() };
        world.store.list(&rt.group, &rt.plural, None).map(|(_, object)| present(rt, object)).collect()
    }

    /// Replaces `.status` as a controller would (through the status subresource when the type
    /// has one): a new resourceVersion and a MODIFIED event. False when there is no such object.
    pub fn set_status(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        status: Value,
    ) -> bool {
        self.update_as(CONTROLLER_MANAGER, api_version, kind, namespace, name, true, |object| {
            let mut object = object.clone();
            object["status"] = status;
            object
        })
    }

    /// A JSON merge patch as an Update by `manager` — a hand edit, or drift by another tool.
    #[allow(clippy::needless_pass_by_value)] // by value, so tests can write `json!(…)` inline
    pub fn patch_as(
        &self,
        manager: &str,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        merge_patch: Value,
    ) -> bool {
        self.update_as(manager, api_version, kind, namespace, name, false, |object| {
            let mut object = object.clone();
            super::fields::merge_patch(&mut object, &merge_patch);
            object
        })
    }

    #[allow(clippy::too_many_arguments)] // one private helper for the two public pokes above
    fn update_as(
        &self,
        manager: &str,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        status: bool,
        make: impl FnOnce(&Value) -> Value,
    ) -> bool {
        let mut world = lock(&self.shared.world);
        let Some(rt) = world.registry.find_kind(api_version, kind).cloned() else { return false };
        let target =
            Target { status: status && rt.status, namespace: namespace.map(str::to_owned), name: name.to_owned(), rt };
        let options = WriteOptions { manager: manager.to_owned(), dry_run: false, force: false };
        world.update(&target, &options, make).is_ok()
    }

    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Ends every open watch, as a server restart or a load balancer's idle cut would.
    pub fn drop_watches(&self) {
        self.shared.drop_watches();
    }

    /// Forgets the change history: watches resuming from an older resourceVersion get 410 Gone.
    pub fn compact(&self) {
        lock(&self.shared.world).store.compact();
    }

    /// The current resourceVersion (the global revision).
    pub fn revision(&self) -> u64 {
        lock(&self.shared.world).store.revision()
    }

    /// Every API request so far, in the order they were answered.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.log).clone()
    }

    /// Stops serving and waits (briefly) for in-flight requests; dropping the server also stops it.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, task).await;
        }
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}
