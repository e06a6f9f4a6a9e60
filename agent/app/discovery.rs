//! GitHub sources: discovery turns an organisation into git sources, one per repository,
//! named `<source>/<repository>`, and removes a repository's entities only on positive evidence
//! (the API lists it as archived or filtered out, answers 404, or says it moved) — never because
//! of a timeout or a 5xx.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};

use tracing::{info, warn};

use super::discovered::Discovery;
use super::pass::{Context, SyncError};
use crate::config::{
    GitSourceConfig, GithubSourceConfig, RepoFilters, SecretRef, SourceConfig, SourceKind, TenancyConfig,
};
use crate::source::github::{Auth, GithubClient, Repo, RepoCheck};
use crate::store::Changes;

/// The source's client, made once (its ETag cache lives there).
fn client(discovery: &Discovery, source: &str, gh: &GithubSourceConfig) -> Result<Arc<GithubClient>, SyncError> {
    let mut clients = discovery.clients.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(client) = clients.get(source) {
        return Ok(client.clone());
    }
    let resolve = |secret: &SecretRef| {
        secret.resolve().map_err(|error| SyncError::Secret { source_name: source.to_owned(), error })
    };
    let auth = match (&gh.token, &gh.app) {
        (Some(token), _) => Auth::Token(resolve(token)?),
        (None, Some(app)) => Auth::App {
            app_id: app.app_id,
            installation_id: app.installation_id,
            private_key: resolve(&app.private_key)?,
        },
        (None, None) => Auth::Anonymous,
    };
    let client = Arc::new(GithubClient::new(&gh.api_url, auth)?);
    clients.insert(source.to_owned(), client.clone());
    Ok(client)
}

/// Whether the filters keep a repository.
pub fn keeps(filters: &RepoFilters, repo: &Repo) -> bool {
    let has = |topic: &String| repo.topics.iter().any(|t| t.eq_ignore_ascii_case(topic));
    (filters.include_archived || !repo.archived)
        && (filters.include_forks || !repo.fork)
        && (filters.topics.is_empty() || filters.topics.iter().any(has))
        && !filters.exclude_topics.iter().any(has)
        && filters.name_pattern.as_ref().is_none_or(|p| p.is_match(&repo.name))
        && (filters.visibility.is_empty()
            || filters.visibility.iter().any(|v| v.eq_ignore_ascii_case(&repo.visibility)))
}

/// The git source syncing one discovered repository, cloning with `token`, writing what
/// `tenancy` grants.
fn repository_source(
    source: &SourceConfig,
    gh: &GithubSourceConfig,
    repo: &Repo,
    token: Option<&SecretRef>,
    tenancy: TenancyConfig,
) -> SourceConfig {
    SourceConfig {
        name: format!("{}/{}", source.name, repo.name.to_lowercase()),
        interval: source.interval,
        tenancy,
        kind: SourceKind::Git(GitSourceConfig {
            url: repo.clone_url.clone(),
            branch: Some(gh.branch.clone().unwrap_or_else(|| repo.default_branch.clone())),
            catalog_path: gh.catalog_path.clone(),
            token: token.cloned(),
        }),
    }
}

/// What a repository may write: the first grant matching the name it was first seen under
/// (pinned by GitHub's id), else the source's own tenancy. A renamed repository keeps the grant
/// of its first name; a new repository under a name pinned to another gets nothing.
async fn granted(
    ctx: &Context,
    source: &SourceConfig,
    gh: &GithubSourceConfig,
    repo: &Repo,
    pins: &mut HashMap<u64, String>,
) -> Result<TenancyConfig, SyncError> {
    let name = repo.name.to_lowercase();
    let full = format!("{}/{}", gh.org, repo.name);
    let pinned = match repo.id {
        None => name.clone(),
        Some(id) => match pins.get(&id) {
            Some(first) => first.clone(),
            None if ctx.store.pin_repository(&source.name, id, &name).await? => {
                pins.insert(id, name.clone());
                name.clone()
            }
            None => {
                warn!(repository = %full, id, "a repository took a name first granted to another; it is granted nothing");
                return Ok(TenancyConfig {
                    rule: format!(
                        "{}: repository {full} (id {id}) is not the repository first seen under that name; a name does not carry grants to a new repository",
                        source.tenancy.rule.trim_end_matches(".tenancy")
                    ),
                    ..TenancyConfig::default()
                });
            }
        },
    };
    let renamed =
        (pinned != name).then(|| format!(" via {}/{pinned}, its name when first seen (renamed since)", gh.org));
    let matching = gh.grants.iter().find(|g| g.repositories.iter().any(|p| p.is_match(&pinned)));
    let mut tenancy = matching.map_or_else(|| source.tenancy.clone(), |grant| grant.tenancy.clone());
    if matching.is_none() {
        tenancy.rule = format!("{} (no grant matches {full})", tenancy.rule);
    }
    tenancy.rule.push_str(renamed.as_deref().unwrap_or_default());
    Ok(tenancy)
}

/// Lists the organisation, remembers what the filters keep, and removes repositories that
/// verifiably left. Returns the repositories' git sources and what removing cost.
pub async fn discover(
    ctx: &Context,
    source: &SourceConfig,
    gh: &GithubSourceConfig,
) -> Result<(Vec<SourceConfig>, Changes), SyncError> {
    let client = client(&ctx.discovery, &source.name, gh)?;
    let listed = client.org_repos(&gh.org).await;
    if let Some(remaining) = client.budget().remaining {
        ctx.metrics.github_rate_remaining.with_label_values(&[source.name.as_str()]).set(remaining);
    }
    let listed = listed?;
    // A configured token is passed on as configured; an App's installation token is issued
    // now, valid well past this pass, and renewed by the next discovery.
    let token = match (&gh.token, &gh.app) {
        (Some(token), _) => Some(token.clone()),
        (None, Some(_)) => client.clone_token().await?.map(SecretRef::Issued),
        (None, None) => None,
    };
    let mut kept = Vec::new();
    let mut pins = ctx.store.repository_pins(&source.name).await?;
    for repo in listed.iter().filter(|r| keeps(&gh.filters, r)) {
        let tenancy = granted(ctx, source, gh, repo, &mut pins).await?;
        kept.push(repository_source(source, gh, repo, token.as_ref(), tenancy));
    }
    let prefix = format!("{}/", source.name);
    let mut removed = Changes::default();
    let kept_names: std::collections::HashSet<&str> = kept.iter().map(|s| s.name.as_str()).collect();
    for known in ctx.store.source_names_with_prefix(&prefix).await? {
        if kept_names.contains(known.as_str()) {
            continue;
        }
        let name = &known[prefix.len()..];
        let listed_repo = listed.iter().find(|r| r.name.eq_ignore_ascii_case(name));
        let evidence = match listed_repo {
            // Listed but filtered out (archived, a topic changed): the API said so.
            Some(_) => Some("filtered out"),
            None => match client.check(&format!("{}/{name}", gh.org)).await {
                Ok(RepoCheck::Gone) => Some("deleted (404)"),
                Ok(RepoCheck::Moved) => Some("renamed or transferred (301)"),
                Ok(RepoCheck::Exists(repo)) if !keeps(&gh.filters, &repo) => Some("filtered out"),
                Ok(RepoCheck::Exists(_)) => None,
                Err(err) => {
                    warn!(repository = %known, error = %err, "repository left the listing but the API did not confirm it; keeping it");
                    None
                }
            },
        };
        if let Some(why) = evidence {
            info!(repository = %known, why, "repository left the organisation's catalog; removing its entities");
            removed.absorb(ctx.store.prune_locations(&known, &[], ctx.config.catalog.orphan_strategy).await?);
            ctx.store.forget_source(&known).await?;
        }
    }
    if removed.entity_writes() > 0 {
        ctx.store.bump_generation().await?;
    }
    ctx.discovery.remember(&source.name, kept.clone());
    Ok((kept, removed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(name: &str) -> Repo {
        Repo {
            id: None,
            name: name.into(),
            full_name: format!("acme/{name}"),
            clone_url: format!("https://github.com/acme/{name}.git"),
            default_branch: "main".into(),
            archived: false,
            fork: false,
            topics: vec!["backstage".into()],
            visibility: "public".into(),
        }
    }

    #[test]
    fn filters_leave_out_archived_forks_topics_names_and_visibility_as_configured() {
        let all = RepoFilters::default();
        assert!(keeps(&all, &repo("pay")));
        assert!(!keeps(&all, &Repo { archived: true, ..repo("old") }), "archived out by default");
        assert!(!keeps(&all, &Repo { fork: true, ..repo("fork") }), "forks out by default");
        assert!(keeps(&RepoFilters { include_archived: true, ..all.clone() }, &Repo { archived: true, ..repo("old") }));
        let topics = RepoFilters { topics: vec!["Backstage".into()], ..all.clone() };
        assert!(keeps(&topics, &repo("pay")));
        assert!(!keeps(&topics, &Repo { topics: vec![], ..repo("pay") }));
        assert!(!keeps(&RepoFilters { exclude_topics: vec!["backstage".into()], ..all.clone() }, &repo("pay")));
        let named =
            RepoFilters { name_pattern: Some(globset::Glob::new("svc-*").unwrap().compile_matcher()), ..all.clone() };
        assert!(keeps(&named, &repo("svc-pay")) && !keeps(&named, &repo("pay")));
        let private = RepoFilters { visibility: vec!["private".into()], ..all };
        assert!(!keeps(&private, &repo("pay")));
    }
}
