//! Configuration in two stages: `raw` mirrors the YAML file, `validate` turns it into a typed
//! [`Config`] and reports every problem at once, each with its dotted path.

mod raw;
mod secret;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use secret::{Secret, SecretError, SecretRef};

/// Environment variable naming the config file when `--config` is absent.
pub const CONFIG_ENV: &str = "RIGGER_CONFIG";

#[derive(Debug, Clone)]
pub struct Config {
    pub database: DatabaseConfig,
    pub server: ServerConfig,
    pub webhooks: Option<WebhooksConfig>,
    pub sources: Vec<SourceConfig>,
    pub kubernetes: Option<KubernetesConfig>,
    /// Where git sources keep their bare clones.
    pub cache_dir: PathBuf,
    pub sync: SyncConfig,
    pub catalog: CatalogConfig,
    pub commit_statuses: Option<CommitStatusesConfig>,
}

/// Commit statuses on GitHub for the commits Rigger syncs.
#[derive(Debug, Clone)]
pub struct CommitStatusesConfig {
    /// The status page as developers reach it (ends in `/`): each status links to its
    /// repository's page there.
    pub page_url: url::Url,
    /// The GitHub API of each git host other than github.com (GitHub Enterprise), by host.
    pub api_urls: std::collections::BTreeMap<String, String>,
}

/// What happens to an entity no location declares any more (Backstage's `catalog.orphanStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrphanStrategy {
    /// Delete it (Backstage's default since catalog-backend 3.0.0).
    #[default]
    Delete,
    /// Keep it, annotated `backstage.io/orphan: "true"`, until someone declares it again.
    Keep,
}

#[derive(Debug, Clone)]
pub struct CatalogConfig {
    pub orphan_strategy: OrphanStrategy,
    /// Largest catalog file or placeholder target read, in bytes.
    pub max_file_bytes: usize,
    /// Documents read from one catalog file; past it the rest of the file is refused.
    pub max_documents_per_file: usize,
    /// Hosts whose http(s) URLs placeholders may read; empty means repository files only.
    pub placeholder_hosts: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum DatabaseConfig {
    Url(String),
    Secret(SecretRef),
}

impl DatabaseConfig {
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        match self {
            Self::Url(url) => Ok(Secret::from_config(url.clone())),
            Self::Secret(secret) => secret.resolve(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Open connections at most; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Catalog API requests served at once; beyond it `503` with `Retry-After`.
    pub max_concurrent_requests: usize,
    /// Bearer tokens that may call the state-changing endpoints (refresh, deleting an orphan); none: those
    /// endpoints refuse every caller.
    pub api_tokens: Vec<SecretRef>,
    /// Browser origins allowed to call the API (CORS), such as a Backstage portal's.
    pub cors_origins: Vec<http::HeaderValue>,
    /// The Backstage backend whose tokens the API verifies and whose permission policy it asks.
    pub backstage: Option<BackstageConfig>,
}

#[derive(Debug, Clone)]
pub struct BackstageConfig {
    /// The backend's base URL; plugin `p` is at `{base_url}/api/p` (Backstage's default discovery).
    pub base_url: url::Url,
    /// The plugin Rigger stands in for: the audience of plugin tokens sent to it, and the
    /// subject of the tokens it signs.
    pub plugin_id: String,
    /// Ask the backend's permission policy about each Backstage caller (`permission.enabled`).
    pub permissions: bool,
}

impl BackstageConfig {
    /// Where a Backstage plugin's API lives.
    pub fn plugin_url(&self, plugin: &str) -> String {
        format!("{}/api/{plugin}", self.base_url.as_str().trim_end_matches('/'))
    }
}

#[derive(Debug, Clone)]
pub struct WebhooksConfig {
    pub github_secret: Option<SecretRef>,
}

#[derive(Debug, Clone)]
pub struct KubernetesConfig {
    /// `None`: the in-cluster config, or `KUBECONFIG` / `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// Deadline of one API call (retried when it passes).
    pub timeout: Duration,
    /// A pass that would prune more than this fraction of a source's objects is stopped.
    pub max_prune_fraction: f64,
    /// The cluster's name in the catalog (`backstage.io/kubernetes-cluster`, tags).
    pub cluster_name: String,
    /// Claims, v2 XRs and labelled workloads become `Resource` entities, this often; `None`: off.
    pub ingest_interval: Option<Duration>,
    /// Owner of ingested entities whose object names none (`terasky.backstage.io/owner`).
    pub default_owner: String,
}

/// Where one source's entities may write in the cluster (the tenancy guard). Only the platform
/// team's configuration grants anything: without a grant, a source writes nowhere.
#[derive(Debug, Clone, Default)]
pub struct TenancyConfig {
    pub namespaces: Namespaces,
    /// Kinds its entities may create; empty: any namespaced kind.
    pub kinds: Vec<String>,
    pub allow_cluster_scoped: bool,
    pub allow_rbac: bool,
    /// The user its writes impersonate, `system:serviceaccount:NS:NAME`.
    pub impersonate: Option<String>,
    /// Which rule gave this tenancy (or none), named in every refusal.
    pub rule: String,
}

/// The Kubernetes namespaces a source is granted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Namespaces {
    /// None: namespaced objects are refused.
    #[default]
    None,
    /// Every entity of the source may write to these; the first is where objects without a
    /// namespace go.
    All(Vec<String>),
    /// By the entity's catalog namespace; a catalog namespace not listed writes nowhere.
    ByCatalogNamespace(std::collections::BTreeMap<String, Vec<String>>),
    /// The namespace named like the entity's catalog namespace (`namespace_from_catalog: true`):
    /// the file's author chooses it, so only by explicit opt-in.
    FromCatalog,
}

impl Config {
    /// What is valid but likely not what the platform team wants: printed by `config check`,
    /// logged by `run`.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let permissions = self.server.backstage.as_ref().is_some_and(|b| b.permissions);
        if permissions && self.commit_statuses.is_some() {
            warnings.push(
                "commit_statuses link developers to the status page, which server.backstage.permissions keeps to the platform's tokens: serve it to them through a proxy that adds one".to_owned(),
            );
        }
        for source in &self.sources {
            let grants = match &source.kind {
                SourceKind::Github(gh) => gh.grants.iter().map(|g| &g.tenancy).collect(),
                _ => Vec::new(),
            };
            for tenancy in std::iter::once(&source.tenancy).chain(grants) {
                if tenancy.namespaces == Namespaces::FromCatalog {
                    warnings.push(format!(
                        "{}.namespace_from_catalog: the Kubernetes namespace is then chosen by whoever writes the catalog file (metadata.namespace); grant namespaces with {0}.namespaces instead",
                        tenancy.rule
                    ));
                }
            }
            let grants_nothing = match &source.kind {
                SourceKind::Github(gh) => gh.grants.is_empty() && source.tenancy.namespaces == Namespaces::None,
                _ => source.tenancy.namespaces == Namespaces::None,
            };
            if self.kubernetes.is_some() && grants_nothing && !source.tenancy.allow_cluster_scoped {
                warnings.push(format!(
                    "{}: no namespace is granted, so the source's entities may write nothing to the cluster; grant namespaces with {0}.namespaces{}",
                    source.tenancy.rule,
                    if matches!(source.kind, SourceKind::Github(_)) { " or per repository with grants" } else { "" }
                ));
            }
        }
        warnings
    }
}

/// A per-repository grant of an organisation source.
#[derive(Debug, Clone)]
pub struct Grant {
    /// Globs over repository names.
    pub repositories: Vec<globset::GlobMatcher>,
    pub tenancy: TenancyConfig,
}

#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// Bounded, used as a metric label: `^[a-z0-9][a-z0-9-]*$`, at most 63 characters.
    pub name: String,
    pub interval: Duration,
    pub kind: SourceKind,
    pub tenancy: TenancyConfig,
}

#[derive(Debug, Clone)]
pub enum SourceKind {
    Git(GitSourceConfig),
    Github(GithubSourceConfig),
    Local(LocalSourceConfig),
}

#[derive(Debug, Clone)]
pub struct GitSourceConfig {
    /// A URL (`file://`, `http(s)://`, `ssh://`, scp-like `git@host:path`) or an absolute path.
    pub url: String,
    /// `None` follows the remote's `HEAD`.
    pub branch: Option<String>,
    pub catalog_path: String,
    pub token: Option<SecretRef>,
}

#[derive(Debug, Clone)]
pub struct GithubSourceConfig {
    pub org: String,
    pub token: Option<SecretRef>,
    pub api_url: String,
    pub catalog_path: String,
    /// `None`: each repository's default branch.
    pub branch: Option<String>,
    /// Boxed: a compiled glob is large, and every source config carries the enum.
    pub filters: Box<RepoFilters>,
    /// Authenticate as a GitHub App installation instead of with a token.
    pub app: Option<GithubApp>,
    /// What each repository may write, by name; first match wins, then the source's tenancy.
    pub grants: Vec<Grant>,
}

#[derive(Debug, Clone)]
pub struct GithubApp {
    pub app_id: u64,
    pub installation_id: u64,
    /// The App's private key (PEM).
    pub private_key: SecretRef,
}

/// Which discovered repositories a GitHub source syncs.
#[derive(Debug, Clone, Default)]
pub struct RepoFilters {
    pub include_archived: bool,
    pub include_forks: bool,
    /// A repository needs at least one of these topics (when any are given).
    pub topics: Vec<String>,
    /// A repository with any of these topics is left out.
    pub exclude_topics: Vec<String>,
    /// A glob over the repository name, e.g. `service-*`.
    pub name_pattern: Option<globset::GlobMatcher>,
    /// `public`, `private`, `internal`; empty means all.
    pub visibility: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct LocalSourceConfig {
    pub path: PathBuf,
    pub catalog_path: String,
}

#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub retry: RetryConfig,
    /// How long in-flight work may take to finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// How many `Location` hops a tree may have below its root file.
    pub location_depth: u32,
    /// Sources synced at once by the daemon's work queue.
    pub concurrency: usize,
}

#[derive(Debug, Clone, Copy)]
pub struct RetryConfig {
    pub max_attempts: u32,
    pub initial: Duration,
    pub max: Duration,
}

/// One problem in the config file, at a dotted path such as `sources[1].interval`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
    /// Line and column (1-based) of the field in the file, when it is written there.
    pub at: Option<(usize, usize)>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {}:\n{}", .file.display(), count(.problems.len()), render(.file, .problems))]
    Invalid { file: PathBuf, problems: Vec<Problem> },
}

fn count(problems: usize) -> String {
    if problems == 1 {
        "1 problem".to_owned()
    } else {
        format!("{problems} problems")
    }
}

/// One line per problem, `file:line:column: path: message`, as compilers print them (editors
/// jump to them).
fn render(file: &Path, problems: &[Problem]) -> String {
    let lines: Vec<String> = problems
        .iter()
        .map(|problem| match problem.at {
            Some((line, column)) => format!("  {}:{line}:{column}: {problem}", file.display()),
            None => format!("  {}: {problem}", file.display()),
        })
        .collect();
    lines.join("\n")
}

impl Config {
    /// Reads and validates a config file. Relative paths inside it are resolved against the
    /// file's own directory, so the same file works from any working directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let base = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let base = std::path::absolute(&base).unwrap_or(base);
        Self::parse(&text, &base).map_err(|problems| ConfigError::Invalid { file: path.to_owned(), problems })
    }

    pub fn parse(text: &str, base: &Path) -> Result<Self, Vec<Problem>> {
        validate::parse(text, base)
    }

    /// Every secret that does not resolve, as `FILE:LINE:COLUMN: dotted.path: why` (`file` is
    /// the config file, read again for the positions).
    pub fn unresolved_secrets(&self, file: &Path) -> Vec<String> {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let fields = crate::yaml::field_positions(&text).into_iter().next().unwrap_or_default();
        self.secret_refs()
            .into_iter()
            .filter_map(|(at, secret)| {
                let err = secret.resolve().err()?;
                Some(match fields.locate(&at) {
                    Some((line, column)) => format!("{}:{line}:{column}: {at}: {err}", file.display()),
                    None => format!("{}: {at}: {err}", file.display()),
                })
            })
            .collect()
    }

    /// Every secret reference in the config, with its dotted path, for `config check`.
    pub fn secret_refs(&self) -> Vec<(String, SecretRef)> {
        let mut refs = Vec::new();
        if let DatabaseConfig::Secret(secret) = &self.database {
            refs.push(("database.url".to_owned(), secret.clone()));
        }
        if let Some(secret) = self.webhooks.as_ref().and_then(|w| w.github_secret.as_ref()) {
            refs.push(("webhooks.github.secret".to_owned(), secret.clone()));
        }
        for (i, token) in self.server.api_tokens.iter().enumerate() {
            refs.push((format!("server.api_tokens[{i}]"), token.clone()));
        }
        for (i, source) in self.sources.iter().enumerate() {
            let token = match &source.kind {
                SourceKind::Git(git) => git.token.as_ref().map(|t| (format!("sources[{i}].git.token"), t)),
                SourceKind::Github(gh) => {
                    gh.token.as_ref().map(|t| (format!("sources[{i}].github.token"), t)).or_else(|| {
                        gh.app.as_ref().map(|a| (format!("sources[{i}].github.app.private_key"), &a.private_key))
                    })
                }
                SourceKind::Local(_) => None,
            };
            refs.extend(token.map(|(path, t)| (path, t.clone())));
        }
        refs
    }
}
