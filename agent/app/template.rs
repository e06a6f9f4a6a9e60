//! `rigger template render`: a Software Template's fetch steps rendered into a directory from a
//! values file, so template authors see what the scaffolder would produce without a Backstage
//! backend. From a file (no config needed), or by entity ref from the catalog, at the commit
//! last synced (needs `--config`). The renderer itself is `crate::template`.

use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use super::exit::{EXIT_FAILED, EXIT_USAGE};
use crate::source::local::LocalDir;
use crate::template::{self, Rendered};

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// The Template entity's YAML file (`scaffolder.backstage.io/v1beta3`), or its entity ref
    /// (`template:default/web`, `default/web`) to render it from the catalog at the synced
    /// commit (reads `--config`).
    #[arg(value_name = "FILE_OR_REF")]
    file: PathBuf,
    /// YAML mapping of what a user would enter in the form; schema defaults fill the rest.
    #[arg(long, value_name = "FILE")]
    values: Option<PathBuf>,
    /// Directory to write the files into; created if missing, refused if not empty.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Render only the fetch step with this id.
    #[arg(long, value_name = "ID")]
    step: Option<String>,
}

/// Why the command stopped: the call itself (64) or the template and its values (1).
enum Failure {
    Usage(String),
    Failed(String),
}

pub fn render(args: &RenderArgs, config: Option<&Path>, out: &mut impl Write) -> ExitCode {
    let result = if !args.file.exists() && looks_like_ref(&args.file) {
        from_catalog(args, config, out)
    } else {
        run(args, out)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("rigger template render: {message}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(Failure::Failed(message)) => {
            eprintln!("rigger template render: {message}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// `kind:namespace/name`, `namespace/name` or a bare name without a YAML extension.
fn looks_like_ref(arg: &Path) -> bool {
    let text = arg.to_string_lossy();
    !text.ends_with(".yaml")
        && !text.ends_with(".yml")
        && crate::catalog::EntityRef::parse(&text, Some("template"), "default").is_ok()
}

/// Renders a Template entity of the catalog: its file and skeletons read from the source's
/// tree at the commit last synced (git: the local cache; a directory: as it is now).
fn from_catalog(args: &RenderArgs, config: Option<&Path>, out: &mut impl Write) -> Result<(), Failure> {
    let text = args.file.to_string_lossy();
    let entity_ref = crate::catalog::EntityRef::parse(&text, Some("template"), "default").map_err(Failure::Usage)?;
    if entity_ref.kind != "template" {
        return Err(Failure::Usage(format!("{entity_ref} is not a Template")));
    }
    let config_path = config.map_or_else(|| PathBuf::from("rigger.yaml"), Path::to_path_buf);
    let config = crate::config::Config::load(&config_path).map_err(|e| Failure::Usage(e.to_string()))?;
    let form = read_values(args.values.as_deref())?;
    check_output_dir(&args.out)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Failed(e.to_string()))?;
    let (tree, path) = runtime.block_on(catalog_tree(std::sync::Arc::new(config), &entity_ref.to_string()))?;
    let rendered = template::render(tree.as_ref(), &path, &form, args.step.as_deref()).map_err(|e| {
        if e.is_usage() {
            Failure::Usage(e.to_string())
        } else {
            Failure::Failed(e.to_string())
        }
    })?;
    write_files(&rendered, &|source| mode_in(tree.as_ref(), source), &args.out)?;
    report(&rendered, &args.out, out).map_err(|e| Failure::Failed(e.to_string()))
}

/// The synced tree of the source that holds `entity_ref`, and the entity's file in it.
async fn catalog_tree(
    config: std::sync::Arc<crate::config::Config>,
    entity_ref: &str,
) -> Result<(std::sync::Arc<dyn crate::source::FileTree>, String), Failure> {
    let ctx = super::context::Context::open(config).map_err(|_| Failure::Usage("cannot open the store".into()))?;
    let failed = |e: &dyn std::fmt::Display| Failure::Failed(e.to_string());
    let entity = ctx.store.entity(entity_ref).await.map_err(|e| failed(&e))?;
    let entity = entity.ok_or_else(|| Failure::Failed(format!("{entity_ref} is not in the catalog")))?;
    let source = ctx.config.sources.iter().find(|s| s.name == entity.source).ok_or_else(|| {
        Failure::Failed(format!(
            "{entity_ref} comes from {}, which is not a configured git or local source; render it from a checkout",
            entity.source
        ))
    })?;
    let paths = ctx.store.location_keys_by_path(&source.name).await.map_err(|e| failed(&e))?;
    let path = paths.into_iter().find(|(_, key)| *key == entity.location_key).map(|(path, _)| path);
    let path = path.ok_or_else(|| Failure::Failed(format!("the catalog file of {entity_ref} is not known")))?;
    let tree = super::pass::synced_tree(&ctx, source).await.map_err(|e| failed(&e))?;
    ctx.store.close().await;
    Ok((tree, path))
}

fn mode_in(tree: &dyn crate::source::FileTree, source: &str) -> Option<u32> {
    let stat = tree.stat(source, usize::MAX).ok()??;
    Some(if stat.mode == "100755" { 0o755 } else { 0o644 })
}

fn run(args: &RenderArgs, out: &mut impl Write) -> Result<(), Failure> {
    if !args.file.is_file() {
        return Err(Failure::Usage(format!("{} is not a file", args.file.display())));
    }
    let form = read_values(args.values.as_deref())?;
    check_output_dir(&args.out)?;
    let absolute = std::path::absolute(&args.file).map_err(|e| Failure::Usage(e.to_string()))?;
    let root = repository_root(&absolute);
    let relative = absolute
        .strip_prefix(&root)
        .map_err(|_| Failure::Usage(format!("{} is outside {}", absolute.display(), root.display())))?
        .to_string_lossy()
        .into_owned();
    let tree = LocalDir { source: "template".into(), root: root.clone(), catalog_path: relative.clone() };
    let snapshot = tree.snapshot().map_err(|e| Failure::Failed(e.to_string()))?;
    let rendered = template::render(snapshot.files.as_ref(), &relative, &form, args.step.as_deref()).map_err(|e| {
        // Errors name repository-relative paths; say where the repository is.
        let message = format!("{e}\n  (paths are relative to {})", root.display());
        if e.is_usage() {
            Failure::Usage(message)
        } else {
            Failure::Failed(message)
        }
    })?;
    let mode_of = |source: &str| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(root.join(source)).ok().map(|m| m.permissions().mode())
    };
    write_files(&rendered, &mode_of, &args.out)?;
    report(&rendered, &args.out, out).map_err(|e| Failure::Failed(e.to_string()))
}

/// The values file as a mapping; an empty file is no values.
fn read_values(path: Option<&Path>) -> Result<serde_yaml::Mapping, Failure> {
    let Some(path) = path else { return Ok(serde_yaml::Mapping::new()) };
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Usage(format!("cannot read the values file {}: {e}", path.display())))?;
    match serde_yaml::from_str::<serde_yaml::Value>(&text) {
        Ok(serde_yaml::Value::Mapping(form)) => Ok(form),
        Ok(serde_yaml::Value::Null) => Ok(serde_yaml::Mapping::new()),
        Ok(_) => Err(Failure::Failed(format!("{}: the values must be a YAML mapping of parameters", path.display()))),
        Err(e) => Err(Failure::Failed(format!("{}: {e}", path.display()))),
    }
}

/// A fresh directory only: leftovers from an earlier render would pass for output of this one.
fn check_output_dir(dir: &Path) -> Result<(), Failure> {
    match std::fs::read_dir(dir).map(|mut entries| entries.next().is_none()) {
        Ok(true) => Ok(()),
        Ok(false) => {
            Err(Failure::Usage(format!("{} is not empty; render into a new or empty directory", dir.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Failure::Usage(format!("cannot use {} as the output directory: {e}", dir.display()))),
    }
}

/// The nearest folder holding `.git`, else the template's own folder: skeleton urls may reach
/// anywhere in the repository, and nowhere outside it.
fn repository_root(template: &Path) -> PathBuf {
    let folder = template.parent().map(Path::to_path_buf).unwrap_or_default();
    folder.ancestors().find(|dir| dir.join(".git").exists()).map_or(folder.clone(), Path::to_path_buf)
}

/// Writes the files; `mode_of` gives each skeleton file's permission bits, kept on the output.
fn write_files(rendered: &Rendered, mode_of: &dyn Fn(&str) -> Option<u32>, dir: &Path) -> Result<(), Failure> {
    use std::os::unix::fs::PermissionsExt;
    let failed = |path: &Path, e: std::io::Error| Failure::Failed(format!("cannot write {}: {e}", path.display()));
    std::fs::create_dir_all(dir).map_err(|e| failed(dir, e))?;
    for (relative, file) in &rendered.files {
        // The renderer normalises output paths; this is the last line of defence all the same.
        if !Path::new(relative).components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(Failure::Failed(format!("refusing to write {relative:?}: it leaves {}", dir.display())));
        }
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| failed(parent, e))?;
        }
        std::fs::write(&path, &file.content).map_err(|e| failed(&path, e))?;
        // Executable scripts in a skeleton stay executable, as the scaffolder keeps modes.
        if let Some(mode) = mode_of(&file.source) {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).map_err(|e| failed(&path, e))?;
        }
    }
    Ok(())
}

fn report(rendered: &Rendered, dir: &Path, out: &mut impl Write) -> std::io::Result<()> {
    for step in &rendered.steps {
        match &step.skipped {
            None => {
                let count = rendered.files.values().filter(|f| f.step == step.step).count();
                writeln!(out, "step {} ({}): {count} files", step.step, step.action)?;
            }
            Some(reason) => writeln!(out, "step {} ({}): skipped, {reason}", step.step, step.action)?,
        }
    }
    writeln!(out, "{} files written to {}", rendered.files.len(), dir.display())
}
