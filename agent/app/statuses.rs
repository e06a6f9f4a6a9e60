//! Which commit statuses a pass calls for, and where they go. A git source's repository gets
//! them when Rigger can post there: a repository of a `github` source (its API and credential),
//! or a `git` source with a token on github.com or on a host `commit_statuses.api_urls` names.

use crate::config::{SourceConfig, SourceKind};
use crate::notify::{StatusState, Target, Update, CATALOG_CONTEXT, CLUSTER_CONTEXT};
use crate::reconcile::health::Health;
use crate::source::git::RemoteUrl;

use super::reconcile::SourceReport;
use super::sync::{Context, Pass};

/// Where `source`'s statuses go, if anywhere.
fn target(ctx: &Context, source: &SourceConfig) -> Option<Target> {
    ctx.statuses.as_ref()?;
    let SourceKind::Git(git) = &source.kind else { return None };
    let token = git.token.as_ref()?.resolve().ok()?;
    // A repository an organisation source discovered: `<source>/<repository>`.
    for parent in &ctx.config.sources {
        if let (SourceKind::Github(gh), Some(repo)) =
            (&parent.kind, source.name.strip_prefix(&format!("{}/", parent.name)))
        {
            return Some(Target { api_url: gh.api_url.clone(), full_name: format!("{}/{repo}", gh.org), token });
        }
    }
    let remote = RemoteUrl::parse(&git.url);
    let configured = ctx.config.commit_statuses.as_ref()?.api_urls.get(&remote.host().to_lowercase()).cloned();
    let api_url = configured.or_else(|| remote.is_github().then(|| "https://api.github.com".to_owned()))?;
    Some(Target { api_url, full_name: remote.display_name(), token })
}

/// The repository's page on the status page.
fn page(ctx: &Context, source: &str) -> String {
    let base = ctx.config.commit_statuses.as_ref().map(|c| c.page_url.to_string()).unwrap_or_default();
    let segments: Vec<String> =
        source.split('/').map(|s| url::form_urlencoded::byte_serialize(s.as_bytes()).collect()).collect();
    format!("{base}sources/{}", segments.join("/"))
}

fn post(
    ctx: &Context,
    target: Target,
    source: &str,
    sha: &str,
    context: &'static str,
    state: StatusState,
    description: String,
) {
    if let Some(statuses) = &ctx.statuses {
        let target_url = page(ctx, source);
        statuses.post(Update { target, sha: sha.to_owned(), context, state, description, target_url });
    }
}

/// A new commit was picked up.
pub fn picked_up(ctx: &Context, source: &SourceConfig, sha: &str) {
    if let Some(target) = target(ctx, source) {
        let description = "Rigger is syncing this commit into the catalog".to_owned();
        post(ctx, target, &source.name, sha, CATALOG_CONTEXT, StatusState::Pending, description);
    }
}

/// The catalog's verdict on the commit a pass synced (or found already synced): every entity
/// synced, or the first file in error with its line and how many files failed.
pub async fn catalog(ctx: &Context, source: &SourceConfig, pass: &Pass) {
    let (sha, in_error) = match pass {
        Pass::Synced { revision: Some(sha), errors, .. } => (sha, !errors.is_empty()),
        Pass::Unchanged { revision, files_in_error } => (revision, *files_in_error > 0),
        _ => return,
    };
    let Some(target) = target(ctx, source) else { return };
    let state = if in_error { StatusState::Failure } else { StatusState::Success };
    let Some(statuses) = &ctx.statuses else { return };
    if statuses.is_known(&target, sha, CATALOG_CONTEXT, state) {
        return;
    }
    let description = if in_error {
        match ctx.store.locations_in_error_of(&source.name).await {
            Ok(files) => failure(&files),
            Err(_) => "Some catalog files are in error".to_owned(),
        }
    } else {
        match ctx.store.entity_count(&source.name).await {
            Ok(1) => "1 entity synced".to_owned(),
            Ok(count) => format!("{count} entities synced"),
            Err(_) => "Catalog synced".to_owned(),
        }
    };
    post(ctx, target, &source.name, sha, CATALOG_CONTEXT, state, description);
}

/// `catalog-info.yaml:6: <problem> (2 files in error)`.
fn failure(files: &[crate::store::LocationRow]) -> String {
    let Some(first) = files.first() else { return "Some catalog files are in error".to_owned() };
    let problem = first.errors.as_ref().and_then(|e| e.as_array()).and_then(|e| e.first());
    let line = problem.and_then(|p| p["line"].as_u64()).map(|l| format!(":{l}")).unwrap_or_default();
    let message = problem.and_then(|p| p["message"].as_str()).unwrap_or("in error");
    let more = match files.len() {
        1 => String::new(),
        n => format!(" ({n} files in error)"),
    };
    format!("{}{line}: {message}{more}", first.path)
}

/// The cluster's verdict, for a commit whose entities declare cluster objects: applied and
/// healthy, still converging, or the first refusal, failure or unhealthy object with its cause.
pub fn cluster(ctx: &Context, source: &SourceConfig, pass: &Pass, report: &SourceReport) {
    let (Pass::Synced { revision: Some(sha), .. } | Pass::Unchanged { revision: sha, .. }) = pass else { return };
    if report.entities.iter().all(|e| e.steps.is_empty() && e.errors.is_empty()) {
        return;
    }
    let Some(target) = target(ctx, source) else { return };
    let (state, description) = cluster_verdict(report);
    post(ctx, target, &source.name, sha, CLUSTER_CONTEXT, state, description);
}

fn cluster_verdict(report: &SourceReport) -> (StatusState, String) {
    if let Some(entity) = report.entities.iter().find(|e| !e.errors.is_empty()) {
        return (StatusState::Failure, format!("{}: {}", entity.entity_ref, entity.errors[0]));
    }
    for entity in &report.entities {
        match &entity.health {
            Some(Health::Failed(why) | Health::Degraded(why)) => {
                return (StatusState::Failure, format!("{} is unhealthy: {why}", entity.entity_ref));
            }
            Some(Health::Progressing(why)) => {
                return (StatusState::Pending, format!("{} is converging: {why}", entity.entity_ref));
            }
            _ => {}
        }
    }
    let objects: usize = report.entities.iter().map(|e| e.steps.len()).sum();
    (StatusState::Success, format!("{objects} cluster objects applied and healthy"))
}
