//! After a catalog pass: the skeleton files each Template entity of the source scaffolds from,
//! recorded at the synced commit. Unchanged sources cost no write; a changed file set records
//! which files changed at which commit; a template whose skeleton cannot be read keeps its
//! last good set, with the error beside it.

use tracing::{info, warn};

use super::context::Context;
use crate::catalog::template_sources::{collect, diff, skeleton_refs, SourceFile};
use crate::config::SourceConfig;
use crate::source::FileTree;
use crate::store::{StoreError, TemplateChange, TemplateEntity};

/// Records the template sources of one source (no-op for a source without templates).
pub async fn sync(ctx: &Context, source: &SourceConfig) -> Result<(), StoreError> {
    let templates = ctx.store.template_entities(&source.name).await?;
    let refs: Vec<String> = templates.iter().map(|t| t.entity_ref.clone()).collect();
    ctx.store.forget_templates(&source.name, &refs).await?;
    if templates.is_empty() {
        return Ok(());
    }
    let revision = ctx.store.source_revision(&source.name).await?;
    if checked_at(ctx, &source.name).is_some_and(|checked| revision.as_deref() == Some(checked.as_str())) {
        return Ok(());
    }
    let tree = match super::pass::synced_tree(ctx, source).await {
        Ok(tree) => tree,
        Err(err) => {
            if ctx.state.log_memory.is_news(&format!("synced tree of {}", source.name), &err) {
                warn!(source = %source.name, error = %err, "cannot read the synced tree for template sources");
            }
            return Ok(());
        }
    };
    let mut clean = true;
    for template in &templates {
        ctx.metrics.templates_synced.with_label_values(&[source.name.as_str()]).inc();
        clean &= record(ctx, source, template, tree.as_ref(), revision.as_deref()).await?;
    }
    // A commit whose templates all read cleanly need not be checked again; a directory has no
    // commit, and templates in error are tried again every pass.
    if let (Some(revision), true) = (revision, clean) {
        ctx.state
            .templates_checked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(source.name.clone(), revision);
    }
    Ok(())
}

fn checked_at(ctx: &Context, source: &str) -> Option<String> {
    ctx.state.templates_checked.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(source).cloned()
}

async fn record(
    ctx: &Context,
    source: &SourceConfig,
    template: &TemplateEntity,
    tree: &dyn FileTree,
    revision: Option<&str>,
) -> Result<bool, StoreError> {
    let max_bytes = ctx.config.catalog.max_file_bytes;
    let read = skeleton_refs(&template.body, &template.file).and_then(|refs| collect(tree, &refs, max_bytes));
    let files = match read {
        Ok(files) => files,
        Err(errors) => {
            let message = errors.join("; ");
            if ctx.state.log_memory.is_news(&template_subject(&template.entity_ref), &message) {
                warn!(source = %source.name, template = %template.entity_ref, error = %message, "template sources not readable; the last good set stays");
            }
            ctx.store.record_template_error(&source.name, &template.entity_ref, &message).await?;
            return Ok(false);
        }
    };
    if ctx.state.log_memory.clear(&template_subject(&template.entity_ref)) {
        info!(source = %source.name, template = %template.entity_ref, "template sources readable again");
    }
    // One read of the recorded state: its error, and the file set to diff against.
    let recorded = ctx.store.template(&template.entity_ref).await?;
    let before = recorded.as_ref().map(crate::store::TemplateRecord::source_files).unwrap_or_default();
    let changes = diff(&before, &files);
    // Contents lost to an earlier fault are written again, without a version of their own.
    let missing = ctx.store.template_files_without_content(&template.entity_ref).await?;
    // `revision` on the template is the commit its file set last changed at: a commit that
    // touched other files costs no write.
    if changes.is_empty() && missing.is_empty() && recorded.as_ref().is_some_and(|r| r.error.is_none()) {
        return Ok(true);
    }
    let wanted: Vec<&str> = changes.iter().map(|(p, _)| p.as_str()).chain(missing.iter().map(String::as_str)).collect();
    let contents = match contents(tree, &files, &wanted, max_bytes) {
        Ok(contents) => contents,
        Err(message) => {
            ctx.store.record_template_error(&source.name, &template.entity_ref, &message).await?;
            return Ok(false);
        }
    };
    let change = TemplateChange {
        source: &source.name,
        entity_ref: &template.entity_ref,
        revision,
        files: &files,
        changes: &changes,
        contents: &contents,
    };
    ctx.store.record_template_change(&change).await?;
    for (_, kind) in &changes {
        ctx.metrics.template_changes.with_label_values(&[source.name.as_str(), kind.as_str()]).inc();
    }
    if !changes.is_empty() {
        info!(source = %source.name, template = %template.entity_ref, files = changes.len(), "template sources changed");
    }
    Ok(true)
}

/// The contents of the files at `paths` (added, modified, or missing their content), by blob id.
fn contents(
    tree: &dyn FileTree,
    files: &[SourceFile],
    paths: &[&str],
    max_bytes: usize,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    for path in paths {
        let Some(file) = files.iter().find(|f| f.path == *path) else { continue };
        let content = tree
            .read(path, max_bytes)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{path} vanished while it was read"))?;
        out.push((file.stat.blob_id.clone(), content));
    }
    Ok(out)
}

/// The log memory's subject for a template's skeleton sources.
fn template_subject(entity_ref: &str) -> String {
    format!("template sources of {entity_ref}")
}
