//! The config file as written: plain serde structs, every leaf kept loose (durations and URLs as
//! strings) so that stage two can report every problem at once with its dotted path. Unknown keys
//! are errors whose message lists the keys allowed there, for "did you mean".

use serde::Deserialize;

use super::secret::SecretRef;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub database: RawDatabase,
    #[serde(default)]
    pub server: RawServer,
    pub webhooks: Option<RawWebhooks>,
    #[serde(default)]
    pub sources: Vec<RawSource>,
    pub kubernetes: Option<RawKubernetes>,
    pub cache_dir: Option<String>,
    #[serde(default)]
    pub sync: RawSync,
    #[serde(default)]
    pub catalog: RawCatalog,
    pub commit_statuses: Option<RawCommitStatuses>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCommitStatuses {
    pub page_url: String,
    #[serde(default)]
    pub api_urls: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCatalog {
    pub orphan_strategy: Option<String>,
    pub max_file_bytes: Option<u64>,
    pub max_documents_per_file: Option<u64>,
    #[serde(default)]
    pub placeholder_hosts: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDatabase {
    pub url: Option<DatabaseUrl>,
}

/// A database URL may be written inline (fine for `sqlite://…` or a password-less Postgres) or read
/// from a secret when it carries credentials.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum DatabaseUrl {
    Inline(String),
    Secret(SecretRef),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<String>,
    pub max_connections: Option<u64>,
    pub max_concurrent_requests: Option<u64>,
    /// Bearer tokens that may call the catalog API's state-changing endpoints.
    #[serde(default)]
    pub api_tokens: Vec<SecretRef>,
    /// Browser origins (a Backstage portal's) that may call the API directly.
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// The Backstage backend whose tokens and permission policy the catalog API honours.
    pub backstage: Option<RawBackstage>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackstage {
    pub base_url: String,
    pub plugin_id: Option<String>,
    #[serde(default)]
    pub permissions: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhooks {
    pub github: Option<RawGithubWebhook>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGithubWebhook {
    pub secret: SecretRef,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub name: Option<String>,
    pub interval: Option<String>,
    pub git: Option<RawGit>,
    pub github: Option<RawGithub>,
    pub local: Option<RawLocal>,
    pub tenancy: Option<RawTenancy>,
    /// Per-repository grants of an organisation source, first match wins.
    pub grants: Option<Vec<RawGrant>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGit {
    pub url: String,
    pub branch: Option<String>,
    pub catalog_path: Option<String>,
    pub token: Option<SecretRef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGithub {
    pub org: String,
    pub token: Option<SecretRef>,
    pub api_url: Option<String>,
    pub catalog_path: Option<String>,
    pub branch: Option<String>,
    #[serde(default)]
    pub include_archived: bool,
    #[serde(default)]
    pub include_forks: bool,
    #[serde(default)]
    pub topics: Vec<String>,
    #[serde(default)]
    pub exclude_topics: Vec<String>,
    pub name_pattern: Option<String>,
    #[serde(default)]
    pub visibility: Vec<String>,
    pub app: Option<RawGithubApp>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGithubApp {
    pub app_id: u64,
    pub installation_id: u64,
    pub private_key: SecretRef,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLocal {
    pub path: String,
    pub catalog_path: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKubernetes {
    pub kubeconfig: Option<String>,
    pub timeout: Option<String>,
    pub max_prune_fraction: Option<f64>,
    pub cluster_name: Option<String>,
    pub ingest: Option<bool>,
    pub ingest_interval: Option<String>,
    pub default_owner: Option<String>,
}

/// Where a source's entities may write in the cluster.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTenancy {
    pub namespaces: Option<RawNamespaces>,
    /// The Kubernetes namespace named like each entity's catalog namespace: the file's author
    /// chooses it, so only by explicit opt-in.
    #[serde(default)]
    pub namespace_from_catalog: bool,
    #[serde(default)]
    pub kinds: Vec<String>,
    #[serde(default)]
    pub allow_cluster_scoped: bool,
    #[serde(default)]
    pub allow_rbac: bool,
    /// `namespace/name` of a service account to impersonate for this source's writes.
    pub service_account: Option<String>,
}

/// Kubernetes namespaces granted: to every entity of the source, or by catalog namespace.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawNamespaces {
    All(Vec<String>),
    ByCatalogNamespace(std::collections::BTreeMap<String, Vec<String>>),
}

/// What the repositories of an organisation whose names match `repositories` may write. The
/// tenancy keys are repeated rather than `#[serde(flatten)]`ed: `deny_unknown_fields` does not
/// work through a flatten, and every unknown key must be reported.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrant {
    #[serde(default)]
    pub repositories: Vec<String>,
    pub namespaces: Option<RawNamespaces>,
    #[serde(default)]
    pub kinds: Vec<String>,
    #[serde(default)]
    pub allow_cluster_scoped: bool,
    #[serde(default)]
    pub allow_rbac: bool,
    pub service_account: Option<String>,
}

impl RawGrant {
    pub fn split(self) -> (Vec<String>, RawTenancy) {
        let tenancy = RawTenancy {
            namespaces: self.namespaces,
            namespace_from_catalog: false,
            kinds: self.kinds,
            allow_cluster_scoped: self.allow_cluster_scoped,
            allow_rbac: self.allow_rbac,
            service_account: self.service_account,
        };
        (self.repositories, tenancy)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSync {
    pub retry: Option<RawRetry>,
    pub shutdown_grace: Option<String>,
    pub location_depth: Option<u32>,
    pub concurrency: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    pub max_attempts: Option<u32>,
    pub initial: Option<String>,
    pub max: Option<String>,
}
