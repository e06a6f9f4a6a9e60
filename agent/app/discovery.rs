//! GitHub sources: discovery turns an organisation into git sources, one per repository,
//! named `<source>/<repository>`, by the policy in `source::github::discovery`, and applies it
//! to the store: pins each repository's first name, and removes the entities of a repository
//! that verifiably left.

use std::sync::{Arc, PoisonError};

use tracing::{info, warn};

use super::context::Context;
use super::discovered::Discovery;
use super::pass::SyncError;
use crate::config::{GithubSourceConfig, SourceConfig};
use crate::source::github::discovery::{
    auth, clone_token, departure, granted, keeps, repository_of, repository_source,
};
use crate::source::github::{GithubClient, Repo};
use crate::store::Changes;

/// The source's client, made once (its ETag cache lives there).
fn client(discovery: &Discovery, source: &str, gh: &GithubSourceConfig) -> Result<Arc<GithubClient>, SyncError> {
    let mut clients = discovery.clients.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(client) = clients.get(source) {
        return Ok(client.clone());
    }
    let auth = auth(gh).map_err(|error| SyncError::Secret { source_name: source.to_owned(), error })?;
    let client = Arc::new(GithubClient::new(&gh.api_url, auth)?);
    clients.insert(source.to_owned(), client.clone());
    Ok(client)
}

/// The name a repository was first seen under, pinning it now if GitHub's id is new; `None`
/// when another repository holds its name.
async fn first_name(
    ctx: &Context,
    source: &SourceConfig,
    repo: &Repo,
    pins: &mut std::collections::HashMap<u64, String>,
) -> Result<Option<String>, SyncError> {
    let name = repo.name.to_lowercase();
    let Some(id) = repo.id else { return Ok(Some(name)) };
    if let Some(first) = pins.get(&id) {
        return Ok(Some(first.clone()));
    }
    if ctx.store.pin_repository(&source.name, id, &name).await? {
        pins.insert(id, name.clone());
        return Ok(Some(name));
    }
    Ok(None)
}

/// Lists the organisation, remembers what the filters keep, and removes repositories that
/// verifiably left. Returns the repositories' git sources and what removing cost.
pub async fn discover(
    ctx: &Context,
    source: &SourceConfig,
    gh: &GithubSourceConfig,
) -> Result<(Vec<SourceConfig>, Changes), SyncError> {
    let client = client(&ctx.state.discovery, &source.name, gh)?;
    let listed = client.org_repos(&gh.org).await;
    if let Some(remaining) = client.budget().remaining {
        ctx.metrics.github_rate_remaining.with_label_values(&[source.name.as_str()]).set(remaining);
    }
    let listed = listed?;
    let token = clone_token(&client, gh).await?;
    let mut kept = Vec::new();
    let mut pins = ctx.store.repository_pins(&source.name).await?;
    for repo in listed.iter().filter(|r| keeps(&gh.filters, r)) {
        let first = first_name(ctx, source, repo, &mut pins).await?;
        if first.is_none() {
            warn!(repository = %format!("{}/{}", gh.org, repo.name), id = repo.id.unwrap_or_default(),
                "a repository took a name first granted to another; it is granted nothing");
        }
        let tenancy = granted(source, gh, repo, first.as_deref());
        kept.push(repository_source(source, gh, repo, token.as_ref(), tenancy));
    }
    let prefix = format!("{}/", source.name);
    let mut removed = Changes::default();
    let kept_names: std::collections::HashSet<&str> = kept.iter().map(|s| s.name.as_str()).collect();
    for known in ctx.store.source_names_with_prefix(&prefix).await? {
        if kept_names.contains(known.as_str()) {
            continue;
        }
        let Some(name) = repository_of(&source.name, &known) else { continue };
        let evidence = match departure(&client, gh, &listed, name).await {
            Ok(evidence) => evidence,
            Err(err) => {
                warn!(repository = %known, error = %err, "repository left the listing but the API did not confirm it; keeping it");
                None
            }
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
    ctx.state.discovery.remember(&source.name, kept.clone());
    Ok((kept, removed))
}
