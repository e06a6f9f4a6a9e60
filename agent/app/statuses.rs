//! A pass's commit statuses, queued: the verdicts and their destination are `notify::verdict`'s;
//! this connects them to the pass's outcome.

use super::context::Context;
use super::pass::Pass;
use crate::config::SourceConfig;
use crate::notify::{verdict, Description, StatusState, Target, Update, CATALOG_CONTEXT, CLUSTER_CONTEXT};
use crate::reconcile::SourceReport;

/// Queues the status unless this process knows the commit shows it already.
fn post(ctx: &Context, source: &SourceConfig, sha: &str, context: &'static str, verdict: (StatusState, Description)) {
    let Some(statuses) = &ctx.statuses else { return };
    let Some((api_url, full_name, token)) = verdict::destination(&ctx.config, source) else { return };
    let (state, description) = verdict;
    if statuses.is_posted(&Target::repository(&api_url, &full_name), sha, context, state) {
        return;
    }
    let Ok(token) = token.resolve() else { return };
    let target = Target { api_url, full_name, token };
    let target_url = verdict::page(&ctx.config, &source.name);
    statuses.post(Update { target, sha: sha.to_owned(), context, state, description, target_url });
}

/// A new commit was read and is being synced.
pub fn picked_up(ctx: &Context, source: &SourceConfig, sha: &str) {
    post(ctx, source, sha, CATALOG_CONTEXT, verdict::picked_up());
}

/// The catalog's verdict on the commit a pass synced (or found already synced).
pub fn catalog(ctx: &Context, source: &SourceConfig, pass: &Pass) {
    let (sha, in_error) = match pass {
        Pass::Synced { revision: Some(sha), errors, .. } => (sha, !errors.is_empty()),
        Pass::Unchanged { revision, files_in_error } => (revision, *files_in_error > 0),
        _ => return,
    };
    post(ctx, source, sha, CATALOG_CONTEXT, verdict::catalog(&source.name, in_error));
}

/// The cluster's verdict, for a commit whose entities declare cluster objects.
pub fn cluster(ctx: &Context, source: &SourceConfig, pass: &Pass, report: &SourceReport) {
    let (Pass::Synced { revision: Some(sha), .. } | Pass::Unchanged { revision: sha, .. }) = pass else { return };
    let Some((state, description)) = verdict::cluster(report) else { return };
    post(ctx, source, sha, CLUSTER_CONTEXT, (state, Description::Text(description)));
}
