//! Which commit statuses a pass calls for, and where they go. A git source's repository gets
//! them when Rigger can post there: a repository of a `github` source (its API and credential),
//! or a `git` source with a token on github.com or on a host `commit_statuses.api_urls` names.

use crate::config::{SecretRef, SourceConfig, SourceKind};
use crate::notify::{Description, StatusState, Target, Update, CATALOG_CONTEXT, CLUSTER_CONTEXT};
use crate::reconcile::health::Health;
use crate::source::git::RemoteUrl;

use super::context::Context;
use super::pass::Pass;
use crate::reconcile::SourceReport;

/// Where `source`'s statuses go, with the credential still unresolved: `(api, owner/name, token)`.
fn destination<'a>(ctx: &'a Context, source: &'a SourceConfig) -> Option<(String, String, &'a SecretRef)> {
    ctx.statuses.as_ref()?;
    let SourceKind::Git(git) = &source.kind else { return None };
    let token = git.token.as_ref()?;
    // A repository an organisation source discovered: `<source>/<repository>`.
    for parent in &ctx.config.sources {
        if let (SourceKind::Github(gh), Some(repo)) =
            (&parent.kind, source.name.strip_prefix(&format!("{}/", parent.name)))
        {
            return Some((gh.api_url.clone(), format!("{}/{repo}", gh.org), token));
        }
    }
    let remote = RemoteUrl::parse(&git.url);
    let api_urls = &ctx.config.commit_statuses.as_ref()?.api_urls;
    // `host:port` for an HTTP(S) remote on its own port, else the host.
    let host = remote.host().to_lowercase();
    let bare = host.split(':').next().unwrap_or_default().to_owned();
    let configured = api_urls.get(&host).or_else(|| api_urls.get(&bare)).cloned();
    let api_url = configured.or_else(|| remote.is_github().then(|| "https://api.github.com".to_owned()))?;
    Some((api_url, remote.display_name(), token))
}

/// The repository's page on the status page.
fn page(ctx: &Context, source: &str) -> String {
    let Some(mut url) = ctx.config.commit_statuses.as_ref().map(|c| c.page_url.clone()) else { return String::new() };
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().push("sources").extend(source.split('/'));
    }
    url.to_string()
}

/// Queues the status unless this process knows the commit shows it already.
fn post(
    ctx: &Context,
    source: &SourceConfig,
    sha: &str,
    context: &'static str,
    state: StatusState,
    description: Description,
) {
    let (Some(statuses), Some((api_url, full_name, token))) = (&ctx.statuses, destination(ctx, source)) else { return };
    if statuses.is_posted(&Target::repository(&api_url, &full_name), sha, context, state) {
        return;
    }
    let Ok(token) = token.resolve() else { return };
    let target = Target { api_url, full_name, token };
    let target_url = page(ctx, &source.name);
    statuses.post(Update { target, sha: sha.to_owned(), context, state, description, target_url });
}

/// A new commit was read and is being synced.
pub fn picked_up(ctx: &Context, source: &SourceConfig, sha: &str) {
    let description = Description::Text("Rigger is syncing this commit into the catalog".to_owned());
    post(ctx, source, sha, CATALOG_CONTEXT, StatusState::Pending, description);
}

/// The catalog's verdict on the commit a pass synced (or found already synced): every entity
/// synced, or the first file in error with its line and how many files failed.
pub fn catalog(ctx: &Context, source: &SourceConfig, pass: &Pass) {
    let (sha, in_error) = match pass {
        Pass::Synced { revision: Some(sha), errors, .. } => (sha, !errors.is_empty()),
        Pass::Unchanged { revision, files_in_error } => (revision, *files_in_error > 0),
        _ => return,
    };
    let name = source.name.clone();
    let (state, description) = if in_error {
        (StatusState::Failure, Description::InError { source: name })
    } else {
        (StatusState::Success, Description::Synced { source: name })
    };
    post(ctx, source, sha, CATALOG_CONTEXT, state, description);
}

/// The cluster's verdict, for a commit whose entities declare cluster objects: applied and
/// healthy, still converging, or the first refusal, failure or unhealthy object with its cause.
pub fn cluster(ctx: &Context, source: &SourceConfig, pass: &Pass, report: &SourceReport) {
    let (Pass::Synced { revision: Some(sha), .. } | Pass::Unchanged { revision: sha, .. }) = pass else { return };
    if report.entities.iter().all(|e| e.steps.is_empty() && e.errors.is_empty()) {
        return;
    }
    let (state, description) = cluster_verdict(report);
    post(ctx, source, sha, CLUSTER_CONTEXT, state, Description::Text(description));
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
    let applied: usize = report
        .entities
        .iter()
        .flat_map(|e| &e.steps)
        .filter(|(action, _)| !matches!(action, crate::reconcile::plan::Action::Prune))
        .count();
    let healthy = report.entities.iter().all(|e| matches!(e.health, Some(Health::Healthy)));
    let words = if healthy { "applied and healthy" } else { "applied" };
    (StatusState::Success, format!("{applied} cluster objects {words}"))
}
