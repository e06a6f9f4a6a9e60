//! Stage two: raw YAML structs → typed [`Config`], collecting every problem with its path.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::raw::{DatabaseUrl, RawConfig, RawRetry, RawSource, RawSync};
use super::{
    Config, DatabaseConfig, GitSourceConfig, GithubApp, GithubSourceConfig, KubernetesConfig, LocalSourceConfig,
    Problem, RepoFilters, RetryConfig, ServerConfig, SourceConfig, SourceKind, SyncConfig, WebhooksConfig,
};

const DEFAULT_DATABASE: &str = "sqlite://rigger.db";
const DEFAULT_LISTEN: &str = "127.0.0.1:7070";
const DEFAULT_CATALOG_PATH: &str = "catalog-info.yaml";
/// Enough to overlap network waits of several repositories, few enough to keep database
/// connections and CPU for the API.
const DEFAULT_SYNC_CONCURRENCY: u32 = 4;
const DEFAULT_GITHUB_API: &str = "https://api.github.com";
/// A minute keeps a developer's merge visible quickly while costing one ref advertisement.
const DEFAULT_GIT_INTERVAL: Duration = Duration::from_secs(60);
/// Backstage's own discovery default is 3 h; we poll orgs more often but far less than repos.
const DEFAULT_GITHUB_INTERVAL: Duration = Duration::from_secs(300);
/// Local directories are also watched with notify; the poll is only the safety net.
const DEFAULT_LOCAL_INTERVAL: Duration = Duration::from_secs(60);
/// Backstage has no hard limit; ten hops is far beyond any real tree and stops runaway chains.
const DEFAULT_LOCATION_DEPTH: u32 = 10;

#[derive(Default)]
struct Problems {
    found: Vec<Problem>,
    /// Paths of the nodes reading could not take, already reported (as written in the file).
    taken: Vec<String>,
    /// List items taken out whole, in order: `(the list's path, the item's index then)`. Paths
    /// found after are renumbered with them, to name items as the file numbers them.
    removed: Vec<(String, usize)>,
}

impl Problems {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let path = as_written(&path.into(), &self.removed);
        // A node reading could not take is reported once, not again by the checks after it.
        if self.taken.iter().any(|taken| related(&path, taken)) {
            return;
        }
        self.found.push(Problem { path, message: message.into(), at: None });
    }
}

/// Parses and checks the whole file, reporting every problem in one round, each with the line
/// and column of the field it concerns.
pub fn parse(text: &str, base: &Path) -> Result<Config, Vec<Problem>> {
    let mut problems = Problems::default();
    let raw = deserialize(text, &mut problems);
    let config = raw.map(|raw| build(raw, base, &mut problems));
    let positions = crate::yaml::field_positions(text).into_iter().next().unwrap_or_default();
    for problem in &mut problems.found[..] {
        if problem.at.is_none() {
            problem.at = positions.locate(&problem.path);
        }
    }
    // In file order, as a compiler lists them.
    problems.found.sort_by_key(|p| p.at.unwrap_or((usize::MAX, 0)));
    match config {
        Some(config) if problems.found.is_empty() => Ok(config),
        _ => Err(problems.found),
    }
}

/// Deserializes the file, reporting every problem serde finds rather than the first: each one
/// is recorded and the offending key taken out (a list item emptied, so later indices stay
/// true), then the rest is read again. What was taken out is reported once; the checks that
/// follow see it as absent and say nothing more about it (see [`related`]).
fn deserialize(text: &str, problems: &mut Problems) -> Option<RawConfig> {
    if text.trim().is_empty() {
        return Some(RawConfig::default());
    }
    let mut value: serde_yaml::Value = match serde_yaml::from_str(text) {
        Ok(value) => value,
        Err(err) => {
            let message = err.to_string();
            let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
            let at = err.location().map(|l| (l.line(), l.column()));
            problems.found.push(Problem { path: "(file)".into(), message: format!("not valid YAML: {message}"), at });
            return None;
        }
    };
    // Each round removes a node, so the loop ends; the bound only guards against a bug.
    for _ in 0..MAX_READS {
        match serde_path_to_error::deserialize::<_, RawConfig>(value.clone()) {
            Ok(raw) => return Some(raw),
            Err(err) => {
                let path = err.path().to_string();
                let path = if path == "." { String::new() } else { path };
                let written = as_written(&path, &problems.removed);
                let message = in_words(&err.into_inner().to_string());
                // What taking a node out leaves behind is the same problem, already reported:
                // the node itself again, or the mapping that held it (a secret reference now
                // empty) — except a required key missing there, which is a problem of its own.
                let repeated = match required_key(&message) {
                    // A required key missing only because its value was taken out (`url: 42`).
                    Some(key) => {
                        let field = crate::yaml::join_field(&written, key);
                        problems.taken.iter().any(|taken| is_within(&field, taken))
                    }
                    None => problems.taken.iter().any(|taken| related(&written, taken)),
                };
                if !repeated {
                    let shown = if written.is_empty() { "(root)".to_owned() } else { written.clone() };
                    problems.found.push(Problem { path: shown, message, at: None });
                }
                problems.taken.push(written);
                match take_out(&mut value, &path) {
                    Taken::Nothing => return None,
                    Taken::Item { list, index } => problems.removed.push((list, index)),
                    Taken::Node => {}
                }
            }
        }
    }
    None
}

/// Rounds of reading the file again after a problem: far more problems than any file has.
const MAX_READS: usize = 200;

/// What [`take_out`] took.
enum Taken {
    /// Nothing: the root itself is wrong.
    Nothing,
    /// A key, or a list item emptied in place (the items after it keep their indices).
    Node,
    /// A list item that was wrong even empty, removed: the items after it move up one.
    Item { list: String, index: usize },
}

/// Takes the node at `path` out of the document: a key is removed; a list item is first
/// replaced by an empty mapping, and removed when that is wrong too.
fn take_out(value: &mut serde_yaml::Value, path: &str) -> Taken {
    use serde_yaml::Value as V;
    let segments = segments(path);
    let Some((last, parents)) = segments.split_last() else { return Taken::Nothing };
    let mut node = value;
    for segment in parents {
        let next = match (segment, node) {
            (Segment::Key(key), V::Mapping(map)) => map.get_mut(key.as_str()),
            (Segment::Index(index), V::Sequence(items)) => items.get_mut(*index),
            _ => None,
        };
        let Some(next) = next else { return Taken::Nothing };
        node = next;
    }
    match (last, node) {
        (Segment::Key(key), V::Mapping(map)) => match map.remove(key.as_str()) {
            Some(_) => Taken::Node,
            None => Taken::Nothing,
        },
        (Segment::Index(index), V::Sequence(items)) => match items.get_mut(*index) {
            Some(item) if *item != V::Mapping(serde_yaml::Mapping::new()) => {
                *item = V::Mapping(serde_yaml::Mapping::new());
                Taken::Node
            }
            Some(_) => {
                items.remove(*index);
                let list_path = path[..path.rfind('[').unwrap_or(path.len())].to_owned();
                Taken::Item { list: list_path, index: *index }
            }
            None => Taken::Nothing,
        },
        _ => Taken::Nothing,
    }
}

/// `path` numbered as the file numbers list items, before any were removed.
fn as_written(path: &str, removed: &[(String, usize)]) -> String {
    let mut path = path.to_owned();
    for (list, index) in removed.iter().rev() {
        let Some(rest) = path.strip_prefix(list.as_str()).and_then(|rest| rest.strip_prefix('[')) else { continue };
        let Some((number, after)) = rest.split_once(']') else { continue };
        match number.parse::<usize>() {
            Ok(number) if number >= *index => path = format!("{list}[{}]{after}", number + 1),
            _ => {}
        }
    }
    path
}

enum Segment {
    Key(String),
    Index(usize),
}

/// `sources[1].git.token` → `sources`, `1`, `git`, `token`.
fn segments(path: &str) -> Vec<Segment> {
    let mut segments = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut pieces = part.split('[');
        if let Some(key) = pieces.next().filter(|k| !k.is_empty()) {
            segments.push(Segment::Key(key.to_owned()));
        }
        for index in pieces {
            if let Ok(index) = index.trim_end_matches(']').parse() {
                segments.push(Segment::Index(index));
            }
        }
    }
    segments
}

/// serde's wording, in words a user can act on: what to write rather than which Rust type
/// failed, and "did you mean" for a misspelt key.
fn in_words(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (key, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let allowed: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        return match crate::suggest::nearest(key, &allowed) {
            Some(near) => format!("unknown key; did you mean `{near}`?"),
            None if allowed.is_empty() => "unknown key; nothing goes here".to_owned(),
            None => format!("unknown key; the keys here are {}", allowed.join(", ")),
        };
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let key = rest.split('`').next().unwrap_or(rest);
        return format!("`{key}` is required here");
    }
    if message.starts_with("data did not match any variant of untagged enum DatabaseUrl") {
        return "expected a URL such as sqlite://rigger.db, or { env: NAME } or { file: PATH }".to_owned();
    }
    if message.starts_with("data did not match any variant of untagged enum RawNamespaces") {
        return "expected a list of namespaces, or a mapping of catalog namespace to a list of namespaces".to_owned();
    }
    let message = match message.strip_prefix("invalid type: ").or_else(|| message.strip_prefix("invalid value: ")) {
        Some(rest) => match rest.rsplit_once(", expected ") {
            Some((found, expected)) => format!("expected {expected}, found {found}"),
            None => rest.to_owned(),
        },
        None => message.to_owned(),
    };
    let words = [
        ("expected u64", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        ("expected usize", "expected a whole number"),
        ("expected a boolean", "expected true or false"),
        ("expected a sequence", "expected a list"),
        ("expected a string", "expected text"),
        ("found map", "found a mapping"),
        ("found sequence", "found a list"),
        ("found unit value", "found nothing"),
    ];
    let mut message = words.iter().fold(message, |m, (from, to)| m.replace(from, to));
    if let Some(start) = message.find("expected struct Raw") {
        let name = start + "expected struct ".len();
        let end = message[name..].find([' ', ',', ';']).map_or(message.len(), |e| name + e);
        message.replace_range(start..end, "expected a mapping of keys");
    }
    message
}

/// The key a "`key` is required here" problem names.
fn required_key(message: &str) -> Option<&str> {
    message.strip_prefix('`')?.strip_suffix("` is required here")
}

/// Whether a later check's problem at `later` concerns a node already reported at `taken`: the
/// same node, inside it, or a mapping that holds it (`sources[1]` lacking a kind because its
/// `git` was taken out).
fn related(later: &str, taken: &str) -> bool {
    is_within(later, taken) || is_within(taken, later)
}

/// Whether `inner` is the node at `outer` or inside it.
fn is_within(inner: &str, outer: &str) -> bool {
    outer.is_empty()
        || inner == outer
        || inner.strip_prefix(outer).is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

fn build(raw: RawConfig, base: &Path, problems: &mut Problems) -> Config {
    let database = match raw.database.url {
        None => DatabaseConfig::Url(resolve_sqlite(DEFAULT_DATABASE, base)),
        Some(DatabaseUrl::Secret(secret)) => DatabaseConfig::Secret(resolve_secret(secret, base)),
        Some(DatabaseUrl::Inline(url)) => {
            check_database_url(&url, problems);
            DatabaseConfig::Url(resolve_sqlite(&url, base))
        }
    };
    let listen = raw.server.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen = listen.parse::<SocketAddr>().unwrap_or_else(|_| {
        problems.push("server.listen", format!("expected host:port such as 127.0.0.1:7070, found {listen:?}"));
        DEFAULT_LISTEN.parse().expect("default listen address parses")
    });
    let webhooks =
        raw.webhooks.map(|w| WebhooksConfig { github_secret: w.github.map(|g| resolve_secret(g.secret, base)) });
    let sources = build_sources(raw.sources, base, problems);
    let kubernetes = raw.kubernetes.map(|k| build_kubernetes(k, base, problems));
    let cache_dir = within(base, raw.cache_dir.as_deref().unwrap_or(".rigger-cache"));
    let sync = build_sync(raw.sync, problems);
    let catalog = build_catalog(&raw.catalog, problems);
    let server = ServerConfig {
        listen,
        max_connections: positive(
            raw.server.max_connections,
            DEFAULT_MAX_CONNECTIONS,
            "server.max_connections",
            problems,
        ),
        max_concurrent_requests: positive(
            raw.server.max_concurrent_requests,
            DEFAULT_MAX_CONCURRENT_REQUESTS,
            "server.max_concurrent_requests",
            problems,
        ),
        api_tokens: raw.server.api_tokens.into_iter().map(|token| resolve_secret(token, base)).collect(),
        cors_origins: cors_origins(&raw.server.cors_origins, problems),
        backstage: raw.server.backstage.map(|b| build_backstage(b, problems)),
    };
    let commit_statuses = raw.commit_statuses.map(|c| build_commit_statuses(c, problems));
    Config { database, server, webhooks, sources, kubernetes, cache_dir, sync, catalog, commit_statuses }
}

fn build_commit_statuses(raw: super::raw::RawCommitStatuses, problems: &mut Problems) -> super::CommitStatusesConfig {
    let http = |u: &url::Url| matches!(u.scheme(), "http" | "https") && u.host().is_some();
    let page = |u: &url::Url| http(u) && u.query().is_none() && u.fragment().is_none();
    let page_url = match url::Url::parse(&raw.page_url).ok().filter(page) {
        // Links from it are relative to a folder.
        Some(mut url) if !url.path().ends_with('/') => {
            url.set_path(&format!("{}/", url.path()));
            url
        }
        Some(url) => url,
        None => {
            problems.push(
                "commit_statuses.page_url",
                format!(
                    "expected the status page's URL such as https://rigger.example.com/ (no query or fragment), found {:?}",
                    raw.page_url
                ),
            );
            url::Url::parse("http://localhost/").expect("a literal URL parses")
        }
    };
    for (host, api) in &raw.api_urls {
        if !url::Url::parse(api).is_ok_and(|u| http(&u)) {
            problems.push(
                format!("commit_statuses.api_urls.{host}"),
                format!("expected a GitHub API URL such as https://{host}/api/v3, found {api:?}"),
            );
        }
    }
    let api_urls = raw.api_urls.into_iter().map(|(host, api)| (host.to_lowercase(), api)).collect();
    super::CommitStatusesConfig { page_url, api_urls }
}

fn build_backstage(raw: super::raw::RawBackstage, problems: &mut Problems) -> super::BackstageConfig {
    let base_url = url::Url::parse(&raw.base_url).ok().filter(|u| matches!(u.scheme(), "http" | "https"));
    let base_url = base_url.unwrap_or_else(|| {
        problems.push(
            "server.backstage.base_url",
            format!("expected the Backstage backend's URL such as http://backstage:7007, found {:?}", raw.base_url),
        );
        url::Url::parse("http://localhost:7007").expect("a literal URL parses")
    });
    let plugin_id = raw.plugin_id.unwrap_or_else(|| "catalog".to_owned());
    // Backstage's own rule for plugin ids (it refuses tokens naming any other).
    if plugin_id.is_empty() || !plugin_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        problems
            .push("server.backstage.plugin_id", format!("expected a plugin id such as catalog, found {plugin_id:?}"));
    }
    super::BackstageConfig { base_url, plugin_id, permissions: raw.permissions }
}

/// Origins as browsers send them: `scheme://host[:port]`, no path.
fn cors_origins(origins: &[String], problems: &mut Problems) -> Vec<http::HeaderValue> {
    let mut out = Vec::new();
    for (i, origin) in origins.iter().enumerate() {
        let parsed = url::Url::parse(origin).ok().filter(|u| {
            matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.path() == "/" && u.query().is_none()
        });
        // As browsers send it: lower-case host, default port left out, no fragment.
        let serialised = parsed.map(|u| u.origin().ascii_serialization());
        match serialised.map(|s| http::HeaderValue::from_str(&s)) {
            Some(Ok(value)) => out.push(value),
            _ => problems.push(
                format!("server.cors_origins[{i}]"),
                format!("expected an origin such as https://backstage.example.com (scheme, host, port; no path), found {origin:?}"),
            ),
        }
    }
    out
}

/// Well under the open-file limit the systemd unit and the chart set (65,536), leaving room for
/// the database, git and the watcher.
const DEFAULT_MAX_CONNECTIONS: u64 = 4096;

/// Catalog queries at once: enough to keep the database busy, few enough that the answers in
/// memory together stay small (each page is bounded).
const DEFAULT_MAX_CONCURRENT_REQUESTS: u64 = 64;

fn positive(value: Option<u64>, default: u64, path: &str, problems: &mut Problems) -> usize {
    let value = value.unwrap_or(default);
    if value == 0 {
        problems.push(path, "must be at least 1");
    }
    usize::try_from(value).unwrap_or(usize::MAX)
}

fn build_kubernetes(raw: super::raw::RawKubernetes, base: &Path, problems: &mut Problems) -> KubernetesConfig {
    let timeout = raw.timeout.map_or(Duration::from_secs(30), |t| duration(&t, "kubernetes.timeout", problems));
    let max_prune_fraction = raw.max_prune_fraction.unwrap_or(0.5);
    if !(0.0..=1.0).contains(&max_prune_fraction) {
        problems.push("kubernetes.max_prune_fraction", format!("must be between 0 and 1, found {max_prune_fraction}"));
    }
    let cluster_name = raw.cluster_name.unwrap_or_else(|| "default".to_owned());
    if !is_bounded_name(&cluster_name) {
        problems.push("kubernetes.cluster_name", format!("must match ^[a-z0-9][a-z0-9-]*$, found {cluster_name:?}"));
    }
    let ingest_interval =
        raw.ingest_interval.map_or(Duration::from_secs(60), |t| duration(&t, "kubernetes.ingest_interval", problems));
    KubernetesConfig {
        kubeconfig: raw.kubeconfig.map(|p| within(base, p)),
        timeout,
        max_prune_fraction,
        cluster_name,
        ingest_interval: raw.ingest.unwrap_or(true).then_some(ingest_interval),
        default_owner: raw.default_owner.unwrap_or_else(|| "kubernetes-auto-ingested".to_owned()),
    }
}

fn build_tenancy(raw: super::raw::RawTenancy, at: &str, problems: &mut Problems) -> super::TenancyConfig {
    use super::raw::RawNamespaces;
    use super::Namespaces;
    let impersonate = raw.service_account.and_then(|account| match account.split_once('/') {
        Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() && !name.contains('/') => {
            Some(format!("system:serviceaccount:{namespace}:{name}"))
        }
        _ => {
            problems.push(format!("{at}.service_account"), format!("must be NAMESPACE/NAME, found {account:?}"));
            None
        }
    });
    let namespaces = match (raw.namespaces, raw.namespace_from_catalog) {
        (Some(_), true) => {
            problems.push(format!("{at}.namespace_from_catalog"), "set either namespaces or namespace_from_catalog");
            Namespaces::None
        }
        (None, true) => Namespaces::FromCatalog,
        (None, false) => Namespaces::None,
        (Some(RawNamespaces::All(list)), false) => {
            if list.is_empty() {
                problems.push(format!("{at}.namespaces"), "lists no Kubernetes namespace (leave it out to grant none)");
            }
            Namespaces::All(list)
        }
        (Some(RawNamespaces::ByCatalogNamespace(map)), false) => {
            for (namespace, allowed) in &map {
                if allowed.is_empty() {
                    problems.push(format!("{at}.namespaces.{namespace}"), "lists no Kubernetes namespace");
                }
            }
            Namespaces::ByCatalogNamespace(map)
        }
    };
    super::TenancyConfig {
        namespaces,
        kinds: raw.kinds,
        allow_cluster_scoped: raw.allow_cluster_scoped,
        allow_rbac: raw.allow_rbac,
        impersonate,
        rule: at.to_owned(),
    }
}

/// An organisation source's per-repository grants, in order.
fn build_grants(raw: Vec<super::raw::RawGrant>, at: &str, problems: &mut Problems) -> Vec<super::Grant> {
    let mut grants = Vec::new();
    for (i, grant) in raw.into_iter().enumerate() {
        let at = format!("{at}.grants[{i}]");
        let (patterns, tenancy) = grant.split();
        if patterns.is_empty() {
            problems.push(format!("{at}.repositories"), "required: the repository names (or globs) this grant is for");
        }
        let repositories = patterns
            .iter()
            .filter_map(|pattern| match globset::Glob::new(pattern) {
                Ok(glob) => Some(glob.compile_matcher()),
                Err(err) => {
                    problems.push(format!("{at}.repositories"), format!("{pattern:?} is not a glob: {err}"));
                    None
                }
            })
            .collect();
        let tenancy = build_tenancy(tenancy, &at, problems);
        grants.push(super::Grant { repositories, tenancy });
    }
    grants
}

/// Large enough for an organisation file of 20,000 users and groups exported from LDAP or GitHub
/// (about 4 MiB), which Backstage ingests; what a file may expand to is bounded separately.
const DEFAULT_MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

fn build_catalog(raw: &super::raw::RawCatalog, problems: &mut Problems) -> super::CatalogConfig {
    use super::OrphanStrategy;
    let orphan_strategy = match raw.orphan_strategy.as_deref() {
        None | Some("delete") => OrphanStrategy::Delete,
        Some("keep") => OrphanStrategy::Keep,
        Some(other) => {
            problems.push("catalog.orphan_strategy", format!("expected delete or keep, found {other:?}"));
            OrphanStrategy::Delete
        }
    };
    let bytes = raw.max_file_bytes.unwrap_or(DEFAULT_MAX_FILE_BYTES);
    if bytes == 0 {
        problems.push("catalog.max_file_bytes", "must be at least 1");
    }
    let documents = raw.max_documents_per_file.unwrap_or(crate::yaml::DEFAULT_MAX_DOCUMENTS as u64);
    if documents == 0 {
        problems.push("catalog.max_documents_per_file", "must be at least 1");
    }
    for (i, host) in raw.placeholder_hosts.iter().enumerate() {
        let (name, port) = host.rsplit_once(':').map_or((host.as_str(), None), |(n, p)| (n, Some(p)));
        let bad_port = port.is_some_and(|p| p.parse::<u16>().map_or(true, |p| p == 0));
        if name.is_empty() || name.contains(['/', ':', ' ', '@']) || bad_port {
            problems.push(
                format!("catalog.placeholder_hosts[{i}]"),
                format!(
                    "expected a host such as docs.example.com (default port) or docs.example.com:8443, found {host:?}"
                ),
            );
        }
    }
    super::CatalogConfig {
        orphan_strategy,
        max_file_bytes: usize::try_from(bytes).unwrap_or(usize::MAX),
        max_documents_per_file: usize::try_from(documents).unwrap_or(usize::MAX),
        placeholder_hosts: raw.placeholder_hosts.clone(),
    }
}

/// `path` relative to the config file's folder, with `.` and `..` resolved lexically, so that
/// locations and logs show `/srv/examples`, not `/srv/config/../examples`.
fn within(base: &Path, path: impl AsRef<Path>) -> std::path::PathBuf {
    let mut out = std::path::PathBuf::new();
    for part in base.join(path).components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn check_database_url(url: &str, problems: &mut Problems) {
    let known = ["sqlite:", "postgres://", "postgresql://"];
    // The value is not repeated: a URL may carry a password.
    if !known.iter().any(|scheme| url.starts_with(scheme)) {
        problems.push(
            "database.url",
            "expected sqlite://PATH or postgres://… (or { env: NAME } for a URL with a password)",
        );
    } else if url::Url::parse(url).is_ok_and(|u| u.password().is_some()) {
        problems.push("database.url", "must not embed a password; write it as database.url: { env: NAME }");
    }
}

/// `sqlite://rigger.db` is relative to the config file, like every other path in it.
fn resolve_sqlite(url: &str, base: &Path) -> String {
    let Some(rest) = url.strip_prefix("sqlite://") else { return url.to_owned() };
    let (path, query) = rest.split_once('?').map_or((rest, None), |(p, q)| (p, Some(q)));
    if path.starts_with('/') || path == ":memory:" {
        return url.to_owned();
    }
    let absolute = within(base, path);
    match query {
        Some(query) => format!("sqlite://{}?{query}", absolute.display()),
        None => format!("sqlite://{}", absolute.display()),
    }
}

fn resolve_secret(secret: super::SecretRef, base: &Path) -> super::SecretRef {
    match secret {
        super::SecretRef::File(path) => super::SecretRef::File(within(base, path)),
        other => other,
    }
}

fn build_sources(raw: Vec<RawSource>, base: &Path, problems: &mut Problems) -> Vec<SourceConfig> {
    let mut names = std::collections::HashSet::new();
    let mut sources = Vec::new();
    for (i, mut source) in raw.into_iter().enumerate() {
        let at = format!("sources[{i}]");
        let name = source.name.clone().unwrap_or_default();
        if name.is_empty() {
            problems.push(format!("{at}.name"), "required");
        } else if !is_bounded_name(&name) {
            problems.push(
                format!("{at}.name"),
                format!("must match ^[a-z0-9][a-z0-9-]*$ and be at most 63 characters, found {name:?}"),
            );
        } else if !names.insert(name.clone()) {
            problems.push(format!("{at}.name"), format!("duplicate source name {name:?}"));
        }
        let tenancy = build_tenancy(source.tenancy.take().unwrap_or_default(), &format!("{at}.tenancy"), problems);
        let grants = source.grants.take().map(|g| build_grants(g, &at, problems));
        if let Some(kind) = build_kind(source, &at, base, problems) {
            let (mut kind, default_interval, interval) = kind;
            match (&mut kind, grants) {
                (SourceKind::Github(gh), Some(grants)) => gh.grants = grants,
                (_, Some(_)) => problems.push(
                    format!("{at}.grants"),
                    "grants are per repository of a github source; a git or local source's tenancy is its grant",
                ),
                (_, None) => {}
            }
            let interval =
                interval.map_or(default_interval, |text| duration(&text, &format!("{at}.interval"), problems));
            if interval < MIN_INTERVAL {
                let floor = humantime::format_duration(MIN_INTERVAL);
                problems.push(format!("{at}.interval"), format!("must be at least {floor}: each poll asks the remote"));
            }
            sources.push(SourceConfig { name, interval, kind, tenancy });
        }
    }
    reject_overlaps(&sources, problems);
    sources
}

/// Two sources reading the same files would fight over the same locations (each pass rewriting
/// the other's annotations, each prune deleting the other's entities).
fn reject_overlaps(sources: &[SourceConfig], problems: &mut Problems) {
    for (i, a) in sources.iter().enumerate() {
        for b in &sources[i + 1..] {
            let overlap = match (&a.kind, &b.kind) {
                (SourceKind::Git(x), SourceKind::Git(y)) => {
                    x.url.trim_end_matches(".git") == y.url.trim_end_matches(".git") && x.branch == y.branch
                }
                (SourceKind::Local(x), SourceKind::Local(y)) => {
                    x.path.starts_with(&y.path) || y.path.starts_with(&x.path)
                }
                _ => false,
            };
            if overlap {
                problems.push(
                    format!("sources ({} and {})", a.name, b.name),
                    "read the same repository branch or directory; configure one source with one catalog_path",
                );
            }
        }
    }
}

/// The shortest poll interval: each poll is a request to the remote per source. Webhooks and
/// file watching bring changes sooner than any poll.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

type KindWithInterval = (SourceKind, Duration, Option<String>);

fn build_kind(source: RawSource, at: &str, base: &Path, problems: &mut Problems) -> Option<KindWithInterval> {
    let interval = source.interval;
    let catalog = |path: Option<String>, key: &str, problems: &mut Problems| {
        let path = path.unwrap_or_else(|| DEFAULT_CATALOG_PATH.to_owned());
        if path.is_empty() || path.starts_with('/') || path.split('/').any(|s| s == "..") {
            problems.push(format!("{at}.{key}.catalog_path"), "must be a relative path inside the repository");
        }
        path
    };
    match (source.git, source.github, source.local) {
        (Some(git), None, None) => {
            if git.url.trim().is_empty() {
                problems.push(format!("{at}.git.url"), "required");
            }
            if has_http_credentials(&git.url) {
                problems.push(format!("{at}.git.url"), "must not embed credentials; use git.token: { env: NAME }");
            } else if !git.url.trim().is_empty() {
                if let Err(err) = gix::url::parse(gix::bstr::BStr::new(git.url.as_str())) {
                    problems.push(format!("{at}.git.url"), format!("not a git URL or path: {err}"));
                }
            }
            let url = resolve_git_url(&git.url, base);
            let catalog_path = catalog(git.catalog_path, "git", problems);
            let token = git.token.map(|t| resolve_secret(t, base));
            let kind = SourceKind::Git(GitSourceConfig { url, branch: git.branch, catalog_path, token });
            Some((kind, DEFAULT_GIT_INTERVAL, interval))
        }
        (None, Some(gh), None) => {
            if gh.org.trim().is_empty() {
                problems.push(format!("{at}.github.org"), "required");
            }
            let catalog_path = catalog(gh.catalog_path, "github", problems);
            let api_url = gh.api_url.unwrap_or_else(|| DEFAULT_GITHUB_API.to_owned());
            if url::Url::parse(&api_url).is_err() {
                problems.push(format!("{at}.github.api_url"), format!("not a URL: {api_url:?}"));
            }
            let token = gh.token.map(|t| resolve_secret(t, base));
            let name_pattern = gh.name_pattern.and_then(|p| match globset::Glob::new(&p) {
                Ok(glob) => Some(glob.compile_matcher()),
                Err(err) => {
                    problems.push(format!("{at}.github.name_pattern"), format!("not a glob: {err}"));
                    None
                }
            });
            for v in gh.visibility.iter().filter(|v| !matches!(v.as_str(), "public" | "private" | "internal")) {
                problems.push(format!("{at}.github.visibility"), format!("{v:?} is not public, private or internal"));
            }
            let filters = RepoFilters {
                include_archived: gh.include_archived,
                include_forks: gh.include_forks,
                topics: gh.topics,
                exclude_topics: gh.exclude_topics,
                name_pattern,
                visibility: gh.visibility,
            };
            if token.is_some() && gh.app.is_some() {
                problems.push(format!("{at}.github"), "use either token or app, not both");
            }
            let app = gh.app.map(|a| GithubApp {
                app_id: a.app_id,
                installation_id: a.installation_id,
                private_key: resolve_secret(a.private_key, base),
            });
            let kind = SourceKind::Github(GithubSourceConfig {
                org: gh.org,
                token,
                api_url,
                catalog_path,
                branch: gh.branch,
                filters: Box::new(filters),
                app,
                grants: Vec::new(),
            });
            Some((kind, DEFAULT_GITHUB_INTERVAL, interval))
        }
        (None, None, Some(local)) => {
            let catalog_path = catalog(local.catalog_path, "local", problems);
            let kind = SourceKind::Local(LocalSourceConfig { path: within(base, &local.path), catalog_path });
            Some((kind, DEFAULT_LOCAL_INTERVAL, interval))
        }
        _ => {
            problems.push(at.to_owned(), "exactly one of git, github or local is required");
            None
        }
    }
}

/// A plain path (not a URL) is a local repository, relative to the config file.
fn resolve_git_url(url: &str, base: &Path) -> String {
    let is_url = url.contains("://") || (url.contains('@') && url.contains(':'));
    if is_url || url.is_empty() {
        url.to_owned()
    } else {
        let path = base.join(url);
        let path = path.canonicalize().unwrap_or(path);
        path.display().to_string()
    }
}

/// `https://user:token@host/…` would put a secret in the config and in every error message.
fn has_http_credentials(url: &str) -> bool {
    url::Url::parse(url)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && (!u.username().is_empty() || u.password().is_some()))
}

fn is_bounded_name(name: &str) -> bool {
    name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn build_sync(raw: RawSync, problems: &mut Problems) -> SyncConfig {
    let retry = raw.retry.map_or_else(default_retry, |r| build_retry(r, problems));
    let shutdown_grace =
        raw.shutdown_grace.map_or(Duration::from_secs(10), |t| duration(&t, "sync.shutdown_grace", problems));
    let location_depth = raw.location_depth.unwrap_or(DEFAULT_LOCATION_DEPTH);
    if location_depth == 0 {
        problems.push("sync.location_depth", "must be at least 1");
    }
    let concurrency = raw.concurrency.unwrap_or(DEFAULT_SYNC_CONCURRENCY);
    if concurrency == 0 {
        problems.push("sync.concurrency", "must be at least 1");
    }
    let concurrency = usize::try_from(concurrency.max(1)).unwrap_or(1);
    SyncConfig { retry, shutdown_grace, location_depth, concurrency }
}

fn default_retry() -> RetryConfig {
    RetryConfig { max_attempts: 5, initial: Duration::from_millis(500), max: Duration::from_secs(30) }
}

fn build_retry(raw: RawRetry, problems: &mut Problems) -> RetryConfig {
    let defaults = default_retry();
    let initial = raw.initial.map_or(defaults.initial, |t| duration(&t, "sync.retry.initial", problems));
    let max = raw.max.map_or(defaults.max, |t| duration(&t, "sync.retry.max", problems));
    if initial > max {
        problems.push("sync.retry.initial", "must not exceed sync.retry.max");
    }
    RetryConfig { max_attempts: raw.max_attempts.unwrap_or(defaults.max_attempts), initial, max }
}

fn duration(text: &str, path: &str, problems: &mut Problems) -> Duration {
    match humantime::parse_duration(text) {
        Ok(d) if !d.is_zero() => d,
        Ok(_) => {
            problems.push(path, "must be greater than zero");
            Duration::from_secs(1)
        }
        Err(_) => {
            problems.push(path, format!("expected a duration such as 30s or 5m, found {text:?}"));
            Duration::from_secs(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn problems(text: &str) -> Vec<String> {
        parse(text, Path::new("/etc/rigger")).unwrap_err().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn empty_file_gives_sqlite_defaults() {
        let config = parse("", Path::new("/etc/rigger")).unwrap();
        assert!(matches!(config.database, DatabaseConfig::Url(ref u) if u == "sqlite:///etc/rigger/rigger.db"));
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:7070");
        assert!(config.sources.is_empty());
    }

    #[test]
    fn every_unknown_key_is_reported_with_its_path() {
        let found = problems("databse: {}\nsources:\n  - name: a\n    local: { path: x, colour: red }\n");
        assert!(found.contains(&"databse: unknown key; did you mean `database`?".to_owned()), "{found:?}");
        assert!(
            found.iter().any(|p| p.starts_with("sources[0].local.colour: unknown key; the keys here are")),
            "{found:?}"
        );
    }

    #[test]
    fn every_problem_comes_in_one_round_with_its_position() {
        let text = "databse: {}\nserver: { listen: nowhere, max_connections: lots }\nsources:\n  - name: Bad\n    intervl: 5m\n    git: { url: 'https://x/y.git', token: { envv: X } }\n";
        let found = parse(text, Path::new("/etc/rigger")).unwrap_err();
        let lines: Vec<String> =
            found.iter().map(|p| format!("{}:{}: {p}", p.at.map_or(0, |a| a.0), p.at.map_or(0, |a| a.1))).collect();
        assert_eq!(
            lines,
            [
                "1:1: databse: unknown key; did you mean `database`?",
                "2:11: server.listen: expected host:port such as 127.0.0.1:7070, found \"nowhere\"",
                "2:28: server.max_connections: expected a whole number, found string \"lots\"",
                "4:5: sources[0].name: must match ^[a-z0-9][a-z0-9-]*$ and be at most 63 characters, found \"Bad\"",
                "5:5: sources[0].intervl: unknown key; did you mean `interval`?",
                "6:45: sources[0].git.token.envv: unknown key; did you mean `env`?",
            ]
        );
    }

    #[test]
    fn a_missing_key_beside_a_misspelt_one_is_reported_in_the_same_round() {
        let found = problems("sources:\n  - name: a\n    git: { tokn: { env: T } }\n");
        assert!(
            found.iter().any(|p| p.starts_with("sources[0].git.tokn: unknown key; did you mean `token`?")),
            "{found:?}"
        );
        assert!(found.iter().any(|p| p == "sources[0].git: `url` is required here"), "{found:?}");
    }

    #[test]
    fn a_required_value_of_the_wrong_shape_is_not_also_missing() {
        let found = problems("sources:\n  - name: a\n    git: { url: [x] }\n");
        assert_eq!(found, ["sources[0].git.url: expected text, found a list"], "{found:?}");
    }

    #[test]
    fn list_items_keep_the_numbers_the_file_gives_them() {
        let text = "catalog:\n  placeholder_hosts: [[a], ok.example.com, {b: c}, 'x y z']\n";
        let found = problems(text);
        assert!(found.iter().any(|p| p.starts_with("catalog.placeholder_hosts[0]: expected text")), "{found:?}");
        assert!(found.iter().any(|p| p.starts_with("catalog.placeholder_hosts[2]: expected text")), "{found:?}");
        assert!(found.iter().any(|p| p.starts_with("catalog.placeholder_hosts[3]:")), "{found:?}");
        assert_eq!(found.len(), 3, "{found:?}");
    }

    #[test]
    fn cors_origins_are_origins() {
        let config = parse(
            "server: { cors_origins: ['https://portal.example.com', 'http://localhost:3000/'] }\n",
            Path::new("/etc/rigger"),
        )
        .unwrap();
        assert_eq!(config.server.cors_origins, ["https://portal.example.com", "http://localhost:3000"]);
        let config = parse("server: { cors_origins: ['https://Portal.Example.com:443'] }\n", Path::new("/e")).unwrap();
        assert_eq!(config.server.cors_origins, ["https://portal.example.com"], "as a browser sends it");
        let found = problems("server: { cors_origins: ['https://portal.example.com/catalog', 'portal', '*'] }\n");
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].starts_with("server.cors_origins[0]: expected an origin"), "{found:?}");
    }

    #[test]
    fn a_backstage_backend_is_a_url_and_a_plugin_id() {
        let config = parse(
            "server: { backstage: { base_url: 'http://backstage:7007/', permissions: true } }\n",
            Path::new("/e"),
        )
        .unwrap();
        let backstage = config.server.backstage.unwrap();
        assert_eq!(backstage.plugin_url("auth"), "http://backstage:7007/api/auth");
        assert_eq!((backstage.plugin_id.as_str(), backstage.permissions), ("catalog", true));
        let found = problems("server: { backstage: { base_url: backstage, plugin_id: 'cat/alog' } }\n");
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("server.backstage.base_url: expected the Backstage backend's URL"), "{found:?}");
        assert!(found[1].starts_with("server.backstage.plugin_id: expected a plugin id"), "{found:?}");
        let found = problems("server: { backstage: { base_url: 'http://b', permission: true } }\n");
        assert!(found.iter().any(|p| p.contains("did you mean `permissions`")), "{found:?}");
    }

    #[test]
    fn errors_say_what_to_write_not_which_type_failed() {
        let found = problems("database: { url: [a] }\nsync: { retry: 5 }\nsources: {}\n");
        assert!(found.iter().all(|p| !p.contains("Raw") && !p.contains("u64") && !p.contains("untagged")), "{found:?}");
        assert!(
            found.iter().any(|p| p.starts_with("sync.retry: expected a mapping of keys, found integer `5`")),
            "{found:?}"
        );
        assert!(found.iter().any(|p| p.starts_with("sources: expected a list, found a mapping")), "{found:?}");
    }

    #[test]
    fn semantic_problems_are_collected_together() {
        let text = "server: { listen: nowhere }\nsources:\n  - name: Bad_Name\n    interval: soon\n    local: { path: x }\n  - name: b\n";
        let found = problems(text);
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found.iter().any(|p| p.starts_with("server.listen:")));
        assert!(found.iter().any(|p| p.starts_with("sources[0].name:")));
        assert!(found.iter().any(|p| p.starts_with("sources[0].interval:")));
        assert!(found.iter().any(|p| p.starts_with("sources[1]: exactly one")));
    }

    #[test]
    fn inline_secret_literal_is_rejected() {
        let found = problems("sources:\n  - name: a\n    git: { url: 'https://x/y.git', token: abc }\n");
        assert!(found.iter().any(|p| p.starts_with("sources[0].git.token")), "{found:?}");
    }

    #[test]
    fn durations_and_relative_paths_are_typed() {
        let text = "sources:\n  - name: demo\n    interval: 30s\n    local: { path: ../examples }\n";
        let config = parse(text, Path::new("/srv/rigger/config")).unwrap();
        assert_eq!(config.sources[0].interval, Duration::from_secs(30));
        let SourceKind::Local(local) = &config.sources[0].kind else { panic!("local source") };
        assert_eq!(local.path, PathBuf::from("/srv/rigger/examples"));
    }

    #[test]
    fn kubernetes_and_tenancy_are_typed_and_checked() {
        let text = "kubernetes: { kubeconfig: kube.yaml, timeout: 5s, cluster_name: prod-eu, ingest: false }\nsources:\n  - name: a\n    local: { path: x }\n    tenancy:\n      namespaces: { default: [payments, payments-stage] }\n      kinds: [ConfigMap]\n      service_account: tenants/payments\n";
        let config = parse(text, Path::new("/etc/rigger")).unwrap();
        let kubernetes = config.kubernetes.unwrap();
        assert_eq!(kubernetes.kubeconfig, Some(PathBuf::from("/etc/rigger/kube.yaml")));
        assert_eq!((kubernetes.timeout, kubernetes.max_prune_fraction), (Duration::from_secs(5), 0.5));
        assert_eq!((kubernetes.cluster_name.as_str(), kubernetes.ingest_interval), ("prod-eu", None));
        let tenancy = &config.sources[0].tenancy;
        assert_eq!(tenancy.impersonate.as_deref(), Some("system:serviceaccount:tenants:payments"));
        let guard = crate::reconcile::guard::Tenancy::granted(tenancy, "default");
        assert_eq!(guard.namespaces, ["payments", "payments-stage"]);
        assert_eq!(guard.kinds, ["ConfigMap"]);
        assert!(
            crate::reconcile::guard::Tenancy::granted(tenancy, "ops").namespaces.is_empty(),
            "with a map, unlisted writes nowhere"
        );
        assert!(
            crate::reconcile::guard::Tenancy::granted(&crate::config::TenancyConfig::default(), "ops")
                .namespaces
                .is_empty(),
            "nothing configured: nothing granted, whatever the file's metadata.namespace says"
        );
        let listed = parse(
            "sources:\n  - name: a\n    local: { path: x }\n    tenancy: { namespaces: [payments] }\n",
            Path::new("/"),
        )
        .unwrap();
        let guard = crate::reconcile::guard::Tenancy::granted(&listed.sources[0].tenancy, "anything");
        assert_eq!((guard.namespaces, guard.rule.as_str()), (vec!["payments".to_owned()], "sources[0].tenancy"));
        let implicit = "kubernetes: {}\nsources:\n  - name: a\n    local: { path: x }\n    tenancy: { namespace_from_catalog: true }\n";
        let implicit = parse(implicit, Path::new("/")).unwrap();
        assert_eq!(
            crate::reconcile::guard::Tenancy::granted(&implicit.sources[0].tenancy, "ops").namespaces,
            ["ops"],
            "the old mapping, opted in"
        );
        assert!(implicit.warnings()[0].starts_with(
            "sources[0].tenancy.namespace_from_catalog: the Kubernetes namespace is then chosen by whoever writes"
        ));
        let found = problems("kubernetes: { max_prune_fraction: 2, cluster_name: Prod }\nsources:\n  - name: a\n    local: { path: x }\n    tenancy: { service_account: payments, namespaces: { default: [] }, colour: red }\n");
        for expected in [
            "kubernetes.max_prune_fraction",
            "kubernetes.cluster_name",
            "sources[0].tenancy.service_account",
            "sources[0].tenancy.namespaces.default",
            "sources[0].tenancy.colour: unknown key",
        ] {
            assert!(found.iter().any(|p| p.starts_with(expected)), "{expected} in {found:?}");
        }
        let found = problems("sources:\n  - name: a\n    local: { path: x }\n    grants: [{ repositories: [a], namespaces: [a] }]\n  - name: b\n    github: { org: acme }\n    grants:\n      - { namespaces: [], repositories: ['[' ] }\n");
        for expected in [
            "sources[0].grants: grants are per repository of a github source",
            "sources[1].grants[0].repositories: \"[\" is not a glob",
            "sources[1].grants[0].namespaces: lists no Kubernetes namespace",
        ] {
            assert!(found.iter().any(|p| p.starts_with(expected)), "{expected} in {found:?}");
        }
    }

    #[test]
    fn credentials_in_git_urls_are_rejected() {
        let found = problems("sources:\n  - name: a\n    git: { url: 'https://ghp_abc@github.com/acme/a.git' }\n");
        assert_eq!(
            found,
            vec!["sources[0].git.url: must not embed credentials; use git.token: { env: NAME }".to_owned()]
        );
        assert!(parse("sources:\n  - name: a\n    git: { url: 'git@github.com:acme/a.git' }\n", Path::new("/")).is_ok());
    }

    #[test]
    fn overlapping_sources_are_rejected() {
        let found = problems("sources:\n  - { name: a, local: { path: x } }\n  - { name: b, local: { path: x/y } }\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("sources (a and b): read the same"));
    }

    #[test]
    fn duplicate_source_names_are_rejected() {
        let found = problems("sources:\n  - { name: a, local: { path: x } }\n  - { name: a, local: { path: y } }\n");
        assert_eq!(found, vec!["sources[1].name: duplicate source name \"a\"".to_owned()]);
    }
}
