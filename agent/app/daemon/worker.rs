//! The workers that take sources off the queue and sync them, and the first pass readiness
//! waits for.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn, Instrument};

use crate::app::context::Context;
use crate::app::pass::Pass;
use crate::app::queue::{Outcome, WorkQueue};
use crate::app::sync::{discover_source, refresh_entity_gauge, sync_source};
use crate::config::SourceKind;
use crate::serve::Readiness;

/// Which sources still wait for their first pass; readiness follows when none does.
pub(super) struct FirstPass {
    waiting: std::sync::Mutex<std::collections::HashSet<String>>,
    readiness: Arc<Readiness>,
}

impl FirstPass {
    pub(super) fn new(sources: impl Iterator<Item = String>, readiness: Arc<Readiness>) -> Self {
        let first = Self { waiting: std::sync::Mutex::new(sources.collect()), readiness };
        first.check();
        first
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// An organisation's discovery found these: they are part of the first pass too.
    pub(super) fn expect(&self, repositories: &[String]) {
        if !self.readiness.first_pass_done() {
            self.waiting().extend(repositories.iter().cloned());
        }
    }

    /// A pass of `source` ended, however it ended. True when that was the last first pass.
    pub(super) fn finished(&self, source: &str) -> bool {
        let removed = self.waiting().remove(source);
        removed && self.check()
    }

    fn check(&self) -> bool {
        let done = self.waiting().is_empty() && !self.readiness.first_pass_done();
        if done {
            self.readiness.set_first_pass_done();
            info!("initial sync pass finished; ready");
            crate::app::systemd::ready();
        }
        done
    }
}

/// Takes sources off the queue one at a time and syncs them. A pass in flight finishes (bounded
/// by the grace period) rather than being torn mid-write.
pub(super) async fn worker(ctx: Context, queue: WorkQueue, cancel: CancellationToken, first: Arc<FirstPass>) {
    loop {
        let source_name = tokio::select! {
            () = cancel.cancelled() => return,
            name = queue.next() => name,
        };
        let _idle = ctx.state.progress.pass(&source_name);
        let configured = ctx.config.sources.iter().find(|s| s.name == source_name).cloned();
        let Some(source) = configured.or_else(|| ctx.state.discovery.repository(&source_name)) else {
            queue.finish(&source_name, Outcome::Done);
            continue;
        };
        let source = &source;
        let started = crate::store::now_millis();
        let span = tracing::info_span!("source", source = %source.name);
        let result = match &source.kind {
            // An organisation's repositories become queue entries of their own.
            SourceKind::Github(gh) => {
                ctx.state.progress.enter(&source.name, "fetching");
                match discover_source(&ctx, source, gh).instrument(span).await {
                    Ok(Some(repositories)) => {
                        first.expect(&repositories);
                        for repository in &repositories {
                            queue.request(repository, "discovery");
                        }
                        Ok(Pass::Synced {
                            revision: None,
                            changes: crate::store::Changes::default(),
                            errors: Vec::new(),
                        })
                    }
                    Ok(None) => Ok(Pass::Skipped),
                    Err(err) => Err(err),
                }
            }
            _ => sync_source(&ctx, source).instrument(span).await,
        };
        let outcome = match &result {
            Ok(_) => Outcome::Done,
            Err(err) if crate::retry::Transient::is_transient(err) => Outcome::Transient,
            Err(_) => Outcome::Permanent,
        };
        // A request is served by a pass that started after it arrived; a transient failure keeps
        // it for the retry, and a replica that skipped the source leaves it to the holder.
        if outcome != Outcome::Transient && !matches!(result, Ok(Pass::Skipped)) {
            if let Err(err) = ctx.store.clear_pending(&source.name, started).await {
                warn!(source = %source.name, error = %err, "cannot clear the served sync request; it will run once more");
            }
        }
        refresh_entity_gauge(&ctx).await;
        first.finished(&source.name);
        queue.finish(&source.name, outcome);
    }
}
