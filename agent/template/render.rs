//! One `fetch:*` step over its skeleton: which files are templated, how their names are, and
//! where they land — following the scaffolder's `fetch:template` action handler.

use std::collections::BTreeMap;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use minijinja::value::ValueKind;
use minijinja::Value;

use super::filters::{environment, Syntax};
use super::{describe, OutputFile, TemplateError};
use crate::catalog::location::resolve_target;
use crate::source::{normalise, FileTree};

/// Skeleton files are source files; anything larger is refused before it is loaded.
const MAX_SKELETON_FILE_BYTES: usize = 32 * 1024 * 1024;

/// What a step needs besides its input: the tree, and the template file for resolving `url`s
/// and pointing errors at a line.
pub struct Fetch<'a> {
    pub files: &'a dyn FileTree,
    pub template_path: &'a str,
    pub template_text: &'a str,
    pub step: &'a str,
}

impl Fetch<'_> {
    /// An error about this step's input, at the line of the template file holding `near`.
    fn fail(&self, near: &str, message: impl std::fmt::Display) -> TemplateError {
        let line = self.template_text.lines().position(|l| !near.is_empty() && l.contains(near)).map_or(1, |i| i + 1);
        TemplateError::StepInput(format!("{}:{line}: step {}: {message}", self.template_path, self.step))
    }
}

/// Which files of a skeleton get their contents rendered.
enum Contents {
    /// `fetch:plain`: none, and names are kept.
    Plain,
    /// Everything but the globs' matches; `names_of_copies` is false for the deprecated
    /// `copyWithoutRender`, whose matches keep their names unrendered too.
    AllBut { globs: GlobSet, names_of_copies: bool },
    /// `templateFileExtension`: only files with it, which lose it.
    Extension(String),
}

/// Runs one fetch step, adding its files to `out`. A path already written by an earlier file
/// is kept unless the step says `replace: true`, as the scaffolder skips existing files.
pub fn fetch(
    ctx: &Fetch<'_>,
    action: &str,
    input: &Value,
    out: &mut BTreeMap<String, OutputFile>,
) -> Result<(), TemplateError> {
    let url = string(ctx, input, "url")?.ok_or_else(|| ctx.fail(action, "input.url is required"))?;
    let target = string(ctx, input, "targetPath")?;
    let replace = flag(input, "replace");
    let source = resolve_target(ctx.template_path, &url).map_err(|e| ctx.fail(&url, format!("url: {e}")))?;
    let plain = action.starts_with("fetch:plain");
    let syntax = Syntax {
        cookiecutter: flag(input, "cookiecutterCompat"),
        trim_blocks: flag(input, "trimBlocks"),
        lstrip_blocks: flag(input, "lstripBlocks"),
    };
    let values = field(input, "values");
    let values = if values.is_undefined() { Value::from_pairs(Vec::<(&str, Value)>::new()) } else { values };
    let scope = Value::from_pairs([(if syntax.cookiecutter { "cookiecutter" } else { "values" }, values)]);
    let renderer = Renderer { env: environment(syntax).map_err(TemplateError::Engine)?, scope };
    let mut put = |path: String, file: OutputFile| {
        if replace || !out.contains_key(&path) {
            out.insert(path, file);
        }
    };
    if action.ends_with(":file") {
        let target = target.ok_or_else(|| ctx.fail(action, "input.targetPath is required for a single file"))?;
        let path = output_path(ctx, &target, "")?;
        let bytes = read(ctx, &source, &url)?;
        let content = if plain { bytes } else { renderer.contents(&source, bytes)? };
        put(path, OutputFile { content, source, step: ctx.step.to_owned() });
        return Ok(());
    }
    let contents = if plain { Contents::Plain } else { contents(ctx, input, syntax)? };
    // A skeleton at the repository root (`url: ./` beside a root template) is every file.
    let prefix = if source.is_empty() { String::new() } else { format!("{source}/") };
    let listed = ctx.files.list()?;
    let skeleton: Vec<&str> = listed.iter().filter_map(|path| path.strip_prefix(&prefix)).collect();
    if skeleton.is_empty() {
        return Err(ctx.fail(&url, format!("url: the skeleton directory {source} holds no files")));
    }
    let target = target.unwrap_or_default();
    for relative in skeleton {
        let path = format!("{prefix}{relative}");
        let (render_contents, local) = match &contents {
            Contents::Plain => (false, relative.to_owned()),
            Contents::AllBut { globs, names_of_copies } => {
                let copy = globs.is_match(relative);
                let name =
                    if copy && !names_of_copies { relative.to_owned() } else { renderer.name(&path, relative)? };
                (!copy, name)
            }
            Contents::Extension(extension) => {
                let templated = extension_of(relative) == Some(extension.as_str());
                let local = if templated { &relative[..relative.len() - extension.len()] } else { relative };
                (templated, renderer.name(&path, local)?)
            }
        };
        // A name that renders empty drops the file (or the folder it names), as in Backstage:
        // `${{ 'docs' if values.docs }}/index.md`.
        if local.is_empty() || local.starts_with('/') || local.contains("//") {
            continue;
        }
        let output = output_path(ctx, &target, &local)?;
        let bytes = read(ctx, &path, &url)?;
        let content = if render_contents { renderer.contents(&path, bytes)? } else { bytes };
        put(output, OutputFile { content, source: path, step: ctx.step.to_owned() });
    }
    Ok(())
}

struct Renderer {
    env: minijinja::Environment<'static>,
    /// `{values}` (or `{cookiecutter}`): all a skeleton sees.
    scope: Value,
}

impl Renderer {
    /// A file's contents, rendered unless binary (not UTF-8, or holding NUL bytes), which the
    /// scaffolder copies as they are.
    fn contents(&self, source: &str, bytes: Vec<u8>) -> Result<Vec<u8>, TemplateError> {
        if bytes.contains(&0) {
            return Ok(bytes);
        }
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => return Ok(e.into_bytes()),
        };
        let rendered = self.env.render_named_str(source, &text, &self.scope).map_err(|e| TemplateError::Render {
            file: source.to_owned(),
            line: e.line().unwrap_or(1),
            message: describe(&e),
        })?;
        Ok(rendered.into_bytes())
    }

    /// A skeleton-relative path with its `${{ … }}` rendered.
    fn name(&self, source: &str, relative: &str) -> Result<String, TemplateError> {
        let name = format!("{source} (file name)");
        self.env.render_named_str(&name, relative, &self.scope).map_err(|e| TemplateError::Render {
            file: name.clone(),
            line: e.line().unwrap_or(1),
            message: describe(&e),
        })
    }
}

/// `templateFileExtension`, or `copyWithoutTemplating`/`copyWithoutRender` globs, checked for
/// the combinations Backstage refuses.
fn contents(ctx: &Fetch<'_>, input: &Value, syntax: Syntax) -> Result<Contents, TemplateError> {
    let without_render = strings(ctx, input, "copyWithoutRender")?;
    let without_templating = strings(ctx, input, "copyWithoutTemplating")?;
    if without_render.is_some() && without_templating.is_some() {
        return Err(ctx.fail("copyWithout", "copyWithoutRender and copyWithoutTemplating cannot be used together"));
    }
    let extension = match field(input, "templateFileExtension") {
        value if value.kind() == ValueKind::Bool && value.is_true() => Some(".njk".to_owned()),
        value => value.as_str().filter(|s| !s.is_empty()).map(|s| {
            if s.starts_with('.') {
                s.to_owned()
            } else {
                format!(".{s}")
            }
        }),
    };
    if let Some(extension) = extension {
        if without_render.is_some() || without_templating.is_some() || syntax.cookiecutter {
            return Err(ctx.fail(
                "templateFileExtension",
                "templateFileExtension cannot be combined with copyWithoutRender, copyWithoutTemplating or cookiecutterCompat",
            ));
        }
        return Ok(Contents::Extension(extension));
    }
    let names_of_copies = without_render.is_none();
    let patterns = without_render.or(without_templating).unwrap_or_default();
    let mut globs = GlobSetBuilder::new();
    for pattern in &patterns {
        // Globs are relative to the skeleton folder, as globby's `cwd` makes them.
        let relative = pattern.strip_prefix("./").unwrap_or(pattern);
        let glob = GlobBuilder::new(relative)
            .literal_separator(true)
            .build()
            .map_err(|e| ctx.fail(pattern, format!("{pattern:?} is not a valid glob: {e}")))?;
        globs.add(glob);
    }
    let globs = globs.build().map_err(|e| ctx.fail("copyWithout", e))?;
    Ok(Contents::AllBut { globs, names_of_copies })
}

/// Node's `path.extname` of the last segment (a leading dot is a name, not an extension).
fn extension_of(path: &str) -> Option<&str> {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.rfind('.').filter(|dot| *dot > 0).map(|dot| &name[dot..])
}

/// `targetPath` joined with a rendered path, confined to the output directory.
fn output_path(ctx: &Fetch<'_>, target: &str, local: &str) -> Result<String, TemplateError> {
    let joined = if local.is_empty() { target.to_owned() } else { format!("{target}/{local}") };
    if target.starts_with('/') || local.starts_with('/') {
        return Err(ctx.fail(target, format!("output path {joined:?} is absolute")));
    }
    normalise(&joined).ok_or_else(|| ctx.fail(target, format!("output path {joined:?} leaves the output directory")))
}

fn read(ctx: &Fetch<'_>, path: &str, url: &str) -> Result<Vec<u8>, TemplateError> {
    ctx.files.read(path, MAX_SKELETON_FILE_BYTES)?.ok_or_else(|| ctx.fail(url, format!("url: {path} does not exist")))
}

fn field(input: &Value, key: &str) -> Value {
    if input.kind() == ValueKind::Map {
        input.get_attr(key).unwrap_or_default()
    } else {
        Value::UNDEFINED
    }
}

fn flag(input: &Value, key: &str) -> bool {
    field(input, key).is_true()
}

fn string(ctx: &Fetch<'_>, input: &Value, key: &str) -> Result<Option<String>, TemplateError> {
    let value = field(input, key);
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => Ok(None),
        ValueKind::String => Ok(value.as_str().map(str::to_owned)),
        _ => Err(ctx.fail(key, format!("input.{key} must be a string, not {value}"))),
    }
}

fn strings(ctx: &Fetch<'_>, input: &Value, key: &str) -> Result<Option<Vec<String>>, TemplateError> {
    let value = field(input, key);
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => Ok(None),
        ValueKind::Seq => {
            let items = value.try_iter().map_err(|e| ctx.fail(key, e))?;
            Ok(Some(items.map(|item| item.as_str().map_or_else(|| item.to_string(), str::to_owned)).collect()))
        }
        _ => Err(ctx.fail(key, format!("input.{key} must be a list of globs"))),
    }
}
