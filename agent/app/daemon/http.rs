//! The HTTP side's wiring: the webhook endpoint, who may call the API, and the channels that
//! turn its requests into queue entries.

use std::sync::Arc;

use anyhow::Context as _;

use crate::app::context::Context;
use crate::app::queue::WorkQueue;
use crate::config::SourceKind;
use crate::serve::{self, GithubWebhook};

/// The webhook endpoint's half of the wiring, when `webhooks.github` is configured: the secret,
/// the repositories git sources track, and a channel into the queue.
pub(super) fn github_webhook(ctx: &Context, queue: &WorkQueue) -> anyhow::Result<Option<Arc<GithubWebhook>>> {
    let Some(secret) = ctx.config.webhooks.as_ref().and_then(|w| w.github_secret.as_ref()) else {
        return Ok(None);
    };
    let secret = secret.resolve().context("webhooks.github.secret")?;
    let tracked = ctx.config.sources.iter().filter_map(crate::app::discovered::tracked).collect();
    let requests = forward_to_queue(queue, "webhook");
    let discovered = ctx.state.discovery.tracked.clone();
    let orgs = ctx
        .config
        .sources
        .iter()
        .filter_map(|s| match &s.kind {
            SourceKind::Github(gh) => Some((gh.org.clone(), s.name.clone())),
            _ => None,
        })
        .collect();
    let verifying = tokio::sync::Semaphore::new(serve::MAX_WEBHOOK_VERIFYING);
    Ok(Some(Arc::new(GithubWebhook { secret, tracked, discovered, orgs, requests, verifying })))
}

/// Who may call the API: its tokens (resolved at start; `run` has checked they resolve) and the
/// Backstage backend whose tokens and permission policy it honours.
pub(super) fn api_auth(ctx: &Context) -> anyhow::Result<Arc<serve::Auth>> {
    let tokens = ctx
        .config
        .server
        .api_tokens
        .iter()
        .enumerate()
        .map(|(i, token)| token.resolve().with_context(|| format!("server.api_tokens[{i}]")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let auth =
        serve::Auth::new(tokens, ctx.config.server.backstage.as_ref(), &ctx.store).map_err(anyhow::Error::msg)?;
    Ok(Arc::new(auth))
}

/// The API's state-changing side: a channel into the queue, whose requests jump the backlog as
/// webhooks do.
pub(super) fn api_writes(ctx: &Context, queue: &WorkQueue) -> Arc<serve::Writes> {
    let requests = forward_to_queue(queue, "refresh");
    let configured = ctx.config.sources.iter().map(|s| s.name.clone()).collect();
    Arc::new(serve::Writes { requests, configured, discovered: ctx.state.discovery.tracked.clone() })
}

/// A channel whose source names become queue requests with `reason`: how the HTTP side asks
/// for passes without knowing the queue.
fn forward_to_queue(queue: &WorkQueue, reason: &'static str) -> tokio::sync::mpsc::UnboundedSender<String> {
    let (requests, mut received) = tokio::sync::mpsc::unbounded_channel::<String>();
    let queue = queue.clone();
    tokio::spawn(async move {
        while let Some(source) = received.recv().await {
            queue.request(&source, reason);
        }
    });
    requests
}
