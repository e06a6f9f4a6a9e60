//! `rigger plan`: what a sync would change in the cluster, per entity, without changing it.
//! Each source is read at its remote tip (git fetches into the cache, nothing else is written),
//! its catalog built in memory, and every create and update dry-run on the API server.

use std::process::ExitCode;
use std::sync::Arc;

use super::context::Context;
use super::exit::{EXIT_FAILED, EXIT_USAGE};
use crate::catalog;
use crate::config::{Config, SourceConfig, SourceKind};
use crate::reconcile::plan::Action;
use crate::reconcile::MANIFESTS_ANNOTATION;
use crate::reconcile::{reconcile, Mode, SourceReport};
use crate::source::Snapshot;
use crate::store::ManagedEntity;

pub async fn run(config: Arc<Config>) -> ExitCode {
    let ctx = match Context::open(config) {
        Ok(ctx) => ctx,
        Err(code) => return code,
    };
    let Some(reconciler) = ctx.reconciler.clone() else {
        eprintln!("rigger plan: no `kubernetes` section in the config; there is no cluster to plan for");
        return ExitCode::from(EXIT_USAGE);
    };
    if let Err(err) = ctx.store.migrate().await {
        eprintln!("rigger plan: {err}");
        return ExitCode::from(EXIT_FAILED);
    }
    let mut failed = false;
    for source in &ctx.config.sources {
        let outcome = match plan_source(&ctx, &reconciler, source).await {
            Ok(Some(report)) => report,
            Ok(None) => {
                println!("{}: an organisation; its repositories are planned by the daemon, one by one", source.name);
                continue;
            }
            Err(err) => {
                failed = true;
                println!("{}: cannot plan: {err}", source.name);
                continue;
            }
        };
        failed |= outcome.has_errors();
        print_report(&source.name, &outcome);
    }
    ctx.store.close().await;
    if failed {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}

async fn plan_source(
    ctx: &Context,
    reconciler: &crate::reconcile::Reconciler,
    source: &SourceConfig,
) -> anyhow::Result<Option<SourceReport>> {
    let Some(snapshot) = snapshot(ctx, source).await? else { return Ok(None) };
    let limits = super::pass::limits(&ctx.config);
    let walked = {
        let snapshot = snapshot.clone();
        tokio::task::spawn_blocking(move || catalog::ingest(&snapshot, limits)).await?
    };
    let mut entities = Vec::new();
    let mut failing = Vec::new();
    for location in &walked.locations {
        failing.extend(location.failing.iter().map(|(r, _)| r.to_string().to_lowercase()));
        for entity in &location.entities {
            if entity.body["metadata"]["annotations"][MANIFESTS_ANNOTATION].is_string() {
                entities.push(ManagedEntity {
                    entity_ref: entity.entity_ref.to_string().to_lowercase(),
                    namespace: entity.body["metadata"]["namespace"].as_str().unwrap_or("default").to_owned(),
                    file: location.path.clone(),
                    body: entity.body.clone(),
                    orphan: false,
                });
            }
        }
    }
    let inventory = ctx.store.inventory(&source.name).await?;
    if !walked.is_complete() {
        // A file that could not be read hides which entities it holds: none counts as gone.
        failing.extend(inventory.keys().cloned());
    }
    let report =
        reconcile(reconciler, source, &entities, &inventory, &failing, snapshot.files.as_ref(), Mode::Plan).await?;
    Ok(Some(report))
}

async fn snapshot(ctx: &Context, source: &SourceConfig) -> anyhow::Result<Option<Snapshot>> {
    match &source.kind {
        SourceKind::Git(git) => {
            let token = git.token.as_ref().map(crate::config::SecretRef::resolve).transpose()?;
            let remote = super::pass::git_remote(&source.name, git, token);
            let (cache, interrupt) = (ctx.config.cache_dir.clone(), ctx.interrupt.clone());
            let snapshot = tokio::task::spawn_blocking(move || {
                let tip = remote.fetch(&cache, None, &interrupt)?;
                remote.snapshot(&cache, &tip)
            })
            .await??;
            Ok(Some(snapshot))
        }
        SourceKind::Local(local) => Ok(Some(super::pass::local_dir(&source.name, local).snapshot()?)),
        SourceKind::Github(_) => Ok(None),
    }
}

fn print_report(source: &str, report: &SourceReport) {
    if report.entities.is_empty() {
        println!("{source}: no entity declares cluster objects");
        return;
    }
    println!("{source}:");
    for entity in &report.entities {
        println!("  {}", entity.entity_ref);
        for (action, key) in &entity.steps {
            let word = match action {
                Action::Create => "create",
                Action::Update => "update",
                Action::Unchanged => "unchanged",
                Action::Prune => "prune",
            };
            println!("    {word:<9} {key}");
        }
        for error in &entity.errors {
            println!("    error: {error}");
        }
    }
}
