//! A `kube::Client` for the fake Kubernetes API server, built the way Rigger builds one: from a
//! kubeconfig, not from a hand-made `Config`.

use kube::config::{KubeConfigOptions, Kubeconfig};
use rigger::testkit::FakeApiServer;

pub async fn client(server: &FakeApiServer) -> kube::Client {
    let kubeconfig = Kubeconfig::from_yaml(&server.kubeconfig()).expect("the fake's kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("the fake's kubeconfig is usable");
    kube::Client::try_from(config).expect("a client for the fake")
}
