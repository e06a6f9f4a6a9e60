//! The commands that do one thing and exit: `sync`, `migrate`, `config check`.

use std::process::ExitCode;
use std::sync::Arc;

use futures::StreamExt;
use tracing::Instrument;

use super::context::Context;
use super::exit::{EXIT_FAILED, EXIT_USAGE};
use super::pass::Pass;
use super::sync::{refresh_entity_gauge, sync_and_reconcile};
use crate::config::{Config, DatabaseConfig, SourceKind};

pub async fn migrate(config: Arc<Config>) -> ExitCode {
    let ctx = match Context::open(config) {
        Ok(ctx) => ctx,
        Err(code) => return code,
    };
    match ctx.store.migrate().await {
        Ok(()) => {
            println!("migrations applied ({})", ctx.store.backend());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("rigger migrate: {err}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// One pass over every source. Exit 1 when any source failed or any document is in error.
pub async fn sync_once(config: Arc<Config>) -> ExitCode {
    let ctx = match Context::open(config) {
        Ok(ctx) => ctx,
        Err(code) => return code,
    };
    if let Err(err) = ctx.store.migrate().await {
        eprintln!("rigger sync: {err}");
        return ExitCode::from(EXIT_FAILED);
    }
    let mut failed = false;
    // `sync.concurrency` sources at a time, as the daemon's workers do; reported in config order.
    let ctx = &ctx;
    let passes = futures::stream::iter(&ctx.config.sources)
        .map(|source| {
            let span = tracing::info_span!("source", source = %source.name);
            async move { (source, sync_and_reconcile(ctx, source).await) }.instrument(span)
        })
        .buffered(ctx.config.sync.concurrency.max(1));
    let mut passes = std::pin::pin!(passes);
    while let Some((source, (result, cluster))) = passes.next().await {
        match result {
            Ok(pass) => {
                failed |= pass.has_errors();
                println!("{}", summary(&source.name, &pass));
                if let Pass::Synced { errors, .. } = &pass {
                    for error in errors {
                        println!("  error: {error}");
                    }
                }
            }
            Err(err) => {
                failed = true;
                println!("{}: failed: {err}", source.name);
            }
        }
        for entity in cluster.iter().flat_map(|report| &report.entities) {
            failed |= !entity.errors.is_empty();
            for error in &entity.errors {
                println!("  cluster error: {}: {error}", entity.entity_ref);
            }
        }
    }
    if let Some(reconciler) = ctx.reconciler.as_ref().filter(|r| r.config().ingest_interval.is_some()) {
        match crate::reconcile::ingest::ingest(reconciler).await {
            Ok(Some(changes)) => println!(
                "{}: ingested: {} added, {} updated, {} deleted",
                crate::reconcile::ingest::source_name(&reconciler.config().cluster_name),
                changes.added,
                changes.updated,
                changes.deleted
            ),
            Ok(None) => {}
            Err(err) => {
                failed = true;
                println!("cluster ingest failed: {err}");
            }
        }
    }
    refresh_entity_gauge(ctx).await;
    ctx.store.close().await;
    if failed {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}

fn summary(name: &str, pass: &Pass) -> String {
    match pass {
        Pass::Skipped => format!("{name}: skipped; another replica is syncing it"),
        Pass::Unchanged { revision, files_in_error: 0 } => format!("{name}: unchanged at {revision}"),
        Pass::Unchanged { revision, files_in_error } => {
            format!("{name}: unchanged at {revision}; {files_in_error} catalog file(s) still in error")
        }
        Pass::Synced { revision, changes, errors } => format!(
            "{name}: synced {}: {} added, {} updated, {} deleted, {} unchanged, {} error(s)",
            revision.as_deref().unwrap_or("working tree"),
            changes.added,
            changes.updated,
            changes.deleted,
            changes.unchanged,
            errors.len()
        ),
    }
}

/// Validates the config, resolves every secret (without printing it) and prints a summary.
pub fn config_check(config: &Config, path: &std::path::Path) -> ExitCode {
    for (at, secret) in config.secret_refs() {
        if secret.resolve().is_ok() {
            println!("secret {at}: {secret} (set)");
        }
    }
    let problems = config.unresolved_secrets(path);
    let database = match &config.database {
        DatabaseConfig::Url(url) => redact_url(url),
        DatabaseConfig::Secret(secret) => format!("from {secret}"),
    };
    println!("database: {database}");
    println!("server.listen: {}", config.server.listen);
    for source in &config.sources {
        let kind = match &source.kind {
            SourceKind::Git(git) => {
                format!("git {} ({})", redact_url(&git.url), git.branch.as_deref().unwrap_or("remote HEAD"))
            }
            SourceKind::Github(gh) => format!("github org {}", gh.org),
            SourceKind::Local(local) => format!("local {}", local.path.display()),
        };
        println!("source {}: {kind}, every {}", source.name, humantime::format_duration(source.interval));
    }
    if let Some(kubernetes) = &config.kubernetes {
        let from = kubernetes
            .kubeconfig
            .as_ref()
            .map_or_else(|| "in-cluster config or KUBECONFIG".to_owned(), |path| path.display().to_string());
        println!("kubernetes: reconcile with {from}, timeout {}", humantime::format_duration(kubernetes.timeout));
    }
    for warning in config.warnings() {
        eprintln!("{}: warning: {warning}", path.display());
    }
    if problems.is_empty() {
        println!("{}: ok", path.display());
        ExitCode::SUCCESS
    } else {
        for problem in &problems {
            eprintln!("{problem}");
        }
        ExitCode::from(EXIT_USAGE)
    }
}

/// Hides a password embedded in a URL.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}
