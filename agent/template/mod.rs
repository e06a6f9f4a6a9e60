//! Software Templates rendered without a Backstage backend: a `Template` entity's `fetch:*`
//! steps run over a [`FileTree`] with the values a user would enter in the form, producing the
//! files the scaffolder would write. Pure: the caller reads the tree and writes the output.
//!
//! The expression language is the scaffolder's Nunjucks (`${{ … }}`, `{% … %}`) on minijinja;
//! `filters` holds the environment, `values` the form and step inputs, `render` the skeletons.

mod filters;
mod render;
mod values;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use minijinja::Value;
use serde::Deserialize;
use serde_yaml::{Mapping, Value as Yaml};

use crate::source::{FileTree, TreeError};

pub use filters::{environment, Syntax};

/// The `apiVersion` of the templates this renders; older ones are legacy in Backstage too.
pub const TEMPLATE_API_VERSION: &str = "scaffolder.backstage.io/v1beta3";

/// The actions whose files end up in the output; every other step (publish, register, …) needs
/// a backend and is skipped.
pub const FETCH_ACTIONS: [&str; 4] = ["fetch:template", "fetch:plain", "fetch:template:file", "fetch:plain:file"];

/// A template file larger than this is not a template anyone writes by hand.
const MAX_TEMPLATE_BYTES: usize = 1024 * 1024;

/// One file the steps produce, by output path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    pub content: Vec<u8>,
    /// The skeleton file it came from (repository-relative), so a caller can copy its mode.
    pub source: String,
    /// The step that wrote it.
    pub step: String,
}

/// What a render produced: the files by output path, and what each step did.
#[derive(Debug, Default)]
pub struct Rendered {
    pub files: BTreeMap<String, OutputFile>,
    pub steps: Vec<StepOutcome>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutcome {
    pub step: String,
    pub action: String,
    /// `None` when the step ran; otherwise why it was skipped.
    pub skipped: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error(transparent)]
    ReadFile(#[from] TreeError),
    #[error("{path} does not exist")]
    MissingFile { path: String },
    #[error("{path}: {message}")]
    ParseTemplate { path: String, message: String },
    #[error("{path}: the values miss required parameters: {}", names.join(", "))]
    MissingParameters { path: String, names: Vec<String> },
    #[error("{path} has no fetch step with id {step:?}; fetch steps: {}", if available.is_empty() { "none".to_owned() } else { available.join(", ") })]
    UnknownStep { path: String, step: String, available: Vec<String> },
    /// A step's input could not be evaluated or is unusable; the message names file and line.
    #[error("{0}")]
    StepInput(String),
    #[error("{file}:{line}: {message}")]
    Render { file: String, line: usize, message: String },
    #[error("the template engine refused its configuration: {0}")]
    Engine(#[source] minijinja::Error),
}

impl TemplateError {
    /// A mistake in how the command was called rather than in the template or its values.
    pub fn is_usage(&self) -> bool {
        matches!(self, Self::UnknownStep { .. })
    }
}

/// Renders the template at `template_path` (repository-relative) with `form`, the values a user
/// would enter. `only_step` renders just that step (by id). Skeleton `url`s are resolved
/// against the template file and confined to `files`.
pub fn render(
    files: &dyn FileTree,
    template_path: &str,
    form: &Mapping,
    only_step: Option<&str>,
) -> Result<Rendered, TemplateError> {
    let text = read_text(files, template_path, MAX_TEMPLATE_BYTES)?;
    let template = parse(template_path, &text)?;
    let pages = values::pages(template.parameters.as_ref());
    let mut form = form.clone();
    let missing = values::apply_defaults(&pages, &mut form);
    if !missing.is_empty() {
        return Err(TemplateError::MissingParameters { path: template_path.to_owned(), names: missing });
    }
    let declared = values::declared(&pages);
    let steps = select(template_path, &template.steps, only_step)?;
    let env = environment(Syntax::default()).map_err(TemplateError::Engine)?;
    let context = Value::from_pairs([("parameters", values::to_value(&Yaml::Mapping(form))), ("user", guest())]);
    let mut rendered = Rendered::default();
    for step in steps {
        let label = step.label();
        let outcome = |skipped: Option<&str>| StepOutcome {
            step: label.clone(),
            action: step.action.clone(),
            skipped: skipped.map(str::to_owned),
        };
        if !FETCH_ACTIONS.contains(&step.action.as_str()) {
            rendered.steps.push(outcome(Some("not a fetch action")));
            continue;
        }
        let site = values::Site { file: template_path, text: &text, step: &label };
        if let Some(condition) = &step.condition {
            let value = values::evaluate(&env, condition, &context, &declared, &site, "if")
                .map_err(TemplateError::StepInput)?;
            if !value.as_ref().is_some_and(values::is_truthy) {
                rendered.steps.push(outcome(Some("its `if` is false")));
                continue;
            }
        }
        if step.each.is_some() {
            return Err(TemplateError::StepInput(format!(
                "{template_path}: step {label}: `each` is not supported when rendering locally"
            )));
        }
        let input = values::evaluate(&env, &step.input, &context, &declared, &site, "input")
            .map_err(TemplateError::StepInput)?
            .unwrap_or_default();
        let fetch = render::Fetch { files, template_path, template_text: &text, step: &label };
        render::fetch(&fetch, &step.action, &input, &mut rendered.files)?;
        rendered.steps.push(outcome(None));
    }
    Ok(rendered)
}

/// `user` in step inputs: who runs the template. Locally nobody is signed in, so a guest.
fn guest() -> Value {
    let entity = serde_yaml::from_str::<Yaml>(
        "{apiVersion: backstage.io/v1alpha1, kind: User, metadata: {name: guest, namespace: default}, spec: {}}",
    )
    .unwrap_or_default();
    Value::from_pairs([("ref", Value::from("user:default/guest")), ("entity", values::to_value(&entity))])
}

/// The parts of a Template entity rendering reads.
struct Template {
    parameters: Option<Yaml>,
    steps: Vec<Step>,
}

#[derive(Debug, Clone, Deserialize)]
struct Step {
    #[serde(default)]
    id: Option<String>,
    action: String,
    #[serde(default)]
    input: Yaml,
    #[serde(default, rename = "if")]
    condition: Option<Yaml>,
    #[serde(default)]
    each: Option<Yaml>,
    #[serde(skip)]
    index: usize,
}

impl Step {
    fn label(&self) -> String {
        self.id.clone().unwrap_or_else(|| format!("#{}", self.index + 1))
    }
}

fn read_text(files: &dyn FileTree, path: &str, max_bytes: usize) -> Result<String, TemplateError> {
    let bytes = files.read(path, max_bytes)?.ok_or_else(|| TemplateError::MissingFile { path: path.to_owned() })?;
    String::from_utf8(bytes)
        .map_err(|_| TemplateError::ParseTemplate { path: path.to_owned(), message: "not UTF-8 text".into() })
}

/// The one `kind: Template` document of a file.
fn parse(path: &str, text: &str) -> Result<Template, TemplateError> {
    let error = |message: String| TemplateError::ParseTemplate { path: path.to_owned(), message };
    let mut templates = Vec::new();
    for document in serde_yaml::Deserializer::from_str(text) {
        let document = Yaml::deserialize(document).map_err(|e| error(e.to_string()))?;
        if document.get("kind").and_then(Yaml::as_str) == Some("Template") {
            templates.push(document);
        }
    }
    let document = match templates.len() {
        1 => templates.remove(0),
        0 => return Err(error("no document has kind: Template".into())),
        n => return Err(error(format!("{n} documents have kind: Template; render needs a file with one"))),
    };
    let api_version = document.get("apiVersion").and_then(Yaml::as_str).unwrap_or_default();
    if api_version != TEMPLATE_API_VERSION {
        return Err(error(format!("apiVersion {api_version:?} is not {TEMPLATE_API_VERSION}, the version rendered")));
    }
    let spec = document.get("spec").ok_or_else(|| error("the Template has no spec".into()))?;
    let raw_steps = spec.get("steps").cloned().unwrap_or(Yaml::Sequence(Vec::new()));
    let mut steps: Vec<Step> = serde_yaml::from_value(raw_steps).map_err(|e| error(format!("spec.steps: {e}")))?;
    for (index, step) in steps.iter_mut().enumerate() {
        step.index = index;
    }
    Ok(Template { parameters: spec.get("parameters").cloned(), steps })
}

fn select<'a>(path: &str, steps: &'a [Step], only: Option<&str>) -> Result<Vec<&'a Step>, TemplateError> {
    let Some(only) = only else { return Ok(steps.iter().collect()) };
    let is_fetch = |step: &&Step| FETCH_ACTIONS.contains(&step.action.as_str());
    match steps.iter().filter(is_fetch).find(|step| step.id.as_deref() == Some(only)) {
        Some(step) => Ok(vec![step]),
        None => Err(TemplateError::UnknownStep {
            path: path.to_owned(),
            step: only.to_owned(),
            available: steps.iter().filter(is_fetch).filter_map(|s| s.id.clone()).collect(),
        }),
    }
}

/// A template engine error as one line: what failed and, when known, the failing expression.
fn describe(error: &minijinja::Error) -> String {
    let mut message = match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    };
    let snippet = error.template_source().zip(error.range()).and_then(|(source, range)| source.get(range));
    if let Some(snippet) = snippet.map(str::trim).filter(|s| !s.is_empty()) {
        let _ = write!(message, " in `{snippet}`");
    }
    message
}

#[cfg(test)]
mod tests;
