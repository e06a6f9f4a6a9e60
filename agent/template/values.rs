//! From the form to a step's input: the parameter schema's defaults and required keys applied to
//! what the user entered, then every `${{ … }}` in a step's `input` evaluated as the scaffolder's
//! workflow runner does (a string that is one whole expression keeps its type).

use std::collections::BTreeSet;

use minijinja::value::{Serde, ValueKind};
use minijinja::{Environment, Value};
use serde_yaml::{Mapping, Value as Yaml};

/// A YAML value as a template value, keys in document order.
pub fn to_value(yaml: &Yaml) -> Value {
    Value::from(Serde(yaml))
}

/// `spec.parameters` as a list of form pages (Backstage accepts one object or a list).
pub fn pages(parameters: Option<&Yaml>) -> Vec<&Mapping> {
    match parameters {
        Some(Yaml::Mapping(page)) => vec![page],
        Some(Yaml::Sequence(pages)) => pages.iter().filter_map(Yaml::as_mapping).collect(),
        _ => Vec::new(),
    }
}

/// Fills keys the user left out with the schema's `default`s (nested object properties too, as
/// the form does) and returns the required keys still missing, in schema order. Keys come out in
/// the order react-jsonschema-form builds them — defaulted ones in schema order, then the rest as
/// entered — so `dump` prints what Backstage would.
pub fn apply_defaults(pages: &[&Mapping], form: &mut Mapping) -> Vec<String> {
    let properties: Vec<&Mapping> = pages.iter().filter_map(|page| properties(page)).collect();
    *form = with_defaults(&properties, form);
    let mut missing = Vec::new();
    for page in pages {
        let required = page.get("required").and_then(Yaml::as_sequence).into_iter().flatten();
        for key in required.filter_map(Yaml::as_str) {
            if !form.contains_key(key) && !missing.iter().any(|m| m == key) {
                missing.push(key.to_owned());
            }
        }
    }
    missing
}

fn properties(schema: &Mapping) -> Option<&Mapping> {
    schema.get("properties").and_then(Yaml::as_mapping)
}

/// `form` with defaults from `property_maps` (the `properties` of one or more schemas).
fn with_defaults(property_maps: &[&Mapping], form: &Mapping) -> Mapping {
    let mut out = Mapping::new();
    for (key, property) in property_maps.iter().flat_map(|p| p.iter()) {
        let Some(property) = property.as_mapping() else { continue };
        let nested = properties(property).map(|p| with_defaults(&[p], &Mapping::new())).filter(|m| !m.is_empty());
        let Some(default) = property.get("default").cloned().or(nested.map(Yaml::Mapping)) else { continue };
        let value = match (form.get(key), properties(property)) {
            (Some(Yaml::Mapping(entered)), Some(inner)) => Yaml::Mapping(with_defaults(&[inner], entered)),
            (Some(entered), _) => entered.clone(),
            (None, _) => default,
        };
        out.insert(key.clone(), value);
    }
    for (key, value) in form {
        if !out.contains_key(key) {
            out.insert(key.clone(), value.clone());
        }
    }
    out
}

/// Every top-level parameter name the schema declares.
pub fn declared(pages: &[&Mapping]) -> BTreeSet<String> {
    let properties = pages.iter().filter_map(|page| page.get("properties").and_then(Yaml::as_mapping));
    properties.flat_map(|p| p.keys().filter_map(Yaml::as_str).map(str::to_owned)).collect()
}

/// Where an expression sits, for error messages: the template file and its text (to find the
/// line), and the key path inside the step (`input.values.name`).
pub struct Site<'a> {
    pub file: &'a str,
    pub text: &'a str,
    pub step: &'a str,
}

/// Evaluates every string in `input` with `context`. `Ok(None)` is a value Backstage drops (an
/// expression that renders empty, or one that reads an optional parameter left unset).
pub fn evaluate(
    env: &Environment<'_>,
    input: &Yaml,
    context: &Value,
    declared: &BTreeSet<String>,
    site: &Site<'_>,
    key: &str,
) -> Result<Option<Value>, String> {
    match input {
        Yaml::String(text) => evaluate_string(env, text, context, declared, site, key),
        Yaml::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                let evaluated = evaluate(env, item, context, declared, site, &format!("{key}[{index}]"))?;
                out.push(evaluated.unwrap_or(Value::from(())));
            }
            Ok(Some(Value::from(out)))
        }
        Yaml::Mapping(map) => {
            let mut out = Vec::with_capacity(map.len());
            for (name, item) in map {
                let name_text = name.as_str().map_or_else(|| to_value(name).to_string(), str::to_owned);
                if let Some(value) = evaluate(env, item, context, declared, site, &format!("{key}.{name_text}"))? {
                    out.push((to_value(name), value));
                }
            }
            Ok(Some(Value::from_pairs(out)))
        }
        Yaml::Tagged(tagged) => evaluate(env, &tagged.value, context, declared, site, key),
        other => Ok(Some(to_value(other))),
    }
}

fn evaluate_string(
    env: &Environment<'_>,
    text: &str,
    context: &Value,
    declared: &BTreeSet<String>,
    site: &Site<'_>,
    key: &str,
) -> Result<Option<Value>, String> {
    let fail = |message: String| {
        let line = line_of(site.text, text);
        format!("{}:{line}: step {}: {key}: {message}", site.file, site.step)
    };
    if let Some(expression) = whole_expression(text) {
        // A syntax error falls through to rendering, which reports it with its position.
        if let Ok(compiled) = env.compile_expression(expression) {
            let value = compiled.eval(context).map_err(|e| fail(super::describe(&e)))?;
            if !value.is_undefined() {
                return Ok(Some(value));
            }
            // Backstage drops an input that reads an optional parameter the user left empty;
            // a name the schema never declared is a mistake worth stopping for.
            let unknown: Vec<String> = compiled
                .undeclared_variables(true)
                .into_iter()
                .filter_map(|name| name.strip_prefix("parameters.").map(str::to_owned))
                .map(|name| name.split('.').next().unwrap_or_default().to_owned())
                .filter(|name| !declared.contains(name))
                .collect();
            if unknown.is_empty() {
                return Ok(None);
            }
            return Err(fail(format!(
                "undefined value: `{}` reads parameters the schema does not declare: {}",
                expression.trim(),
                unknown.join(", ")
            )));
        }
    }
    let rendered = env.render_str(text, context).map_err(|e| fail(super::describe(&e)))?;
    Ok((!rendered.is_empty()).then(|| Value::from(rendered)))
}

/// The expression of a string that is exactly one `${{ … }}` and nothing else (Backstage's
/// `isSingleTemplateString`), whose value keeps its type.
fn whole_expression(text: &str) -> Option<&str> {
    let inner = text.strip_prefix("${{")?.strip_suffix("}}")?;
    (!inner.contains("}}") && !inner.contains("${{")).then_some(inner)
}

/// The 1-based line of the template file where `needle` (its first line) appears; 1 when it
/// cannot be found (a folded scalar, say).
fn line_of(text: &str, needle: &str) -> usize {
    let first = needle.lines().next().unwrap_or_default();
    text.lines().position(|line| line.contains(first)).map_or(1, |index| index + 1)
}

/// JavaScript truthiness as the scaffolder's `isTruthy` applies it to a step's `if`: empty
/// arrays are false, objects are always true.
pub fn is_truthy(value: &Value) -> bool {
    match value.kind() {
        ValueKind::Map => true,
        _ => value.is_true(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::filters::{environment, Syntax};

    fn yaml(text: &str) -> Yaml {
        serde_yaml::from_str(text).unwrap()
    }

    fn evaluate_input(input: &str, parameters: &str) -> Result<Option<Value>, String> {
        let env = environment(Syntax::default()).unwrap();
        let context = Value::from_pairs([("parameters", to_value(&yaml(parameters)))]);
        let declared = ["name", "count", "tags", "description"].map(str::to_owned).into();
        let site = Site { file: "t.yaml", text: "a\nb: ${{ parameters.nope }}\n", step: "fetch" };
        evaluate(&env, &yaml(input), &context, &declared, &site, "input")
    }

    #[test]
    fn defaults_fill_missing_keys_and_required_ones_are_reported() {
        let parameters = yaml(
            "- required: [name, owner]\n  properties:\n    name: {type: string}\n    owner: {type: string, default: group:a}\n- required: [repoUrl, system]\n  properties:\n    repoUrl: {type: string}\n    ci:\n      type: object\n      properties:\n        enabled: {type: boolean, default: true}\n",
        );
        let pages = pages(Some(&parameters));
        let mut form = yaml("name: x").as_mapping().cloned().unwrap();
        let missing = apply_defaults(&pages, &mut form);
        assert_eq!(missing, ["repoUrl", "system"]);
        let keys: Vec<&str> = form.keys().filter_map(Yaml::as_str).collect();
        assert_eq!(keys, ["owner", "ci", "name"]);
        assert_eq!(form, yaml("name: x\nowner: group:a\nci: {enabled: true}").as_mapping().cloned().unwrap());
        let mut form = yaml("{ci: {extra: 1}, owner: group:b}").as_mapping().cloned().unwrap();
        apply_defaults(&pages, &mut form);
        assert_eq!(
            serde_json::to_string(&to_value(&Yaml::Mapping(form))).unwrap(),
            r#"{"owner":"group:b","ci":{"enabled":true,"extra":1}}"#
        );
        assert_eq!(declared(&pages), ["ci", "name", "owner", "repoUrl"].map(str::to_owned).into());
    }

    #[test]
    fn a_single_parameter_also_may_be_one_object() {
        let parameters = yaml("properties: {a: {default: 1}}");
        let mut form = Mapping::new();
        assert!(apply_defaults(&pages(Some(&parameters)), &mut form).is_empty());
        assert_eq!(form.get("a"), Some(&yaml("1")));
    }

    #[test]
    fn whole_expressions_keep_their_type_and_mixed_strings_render() {
        let out = evaluate_input(
            "{n: '${{ parameters.count }}', t: '${{ parameters.tags }}', s: 'v${{ parameters.count }}', k: 3}",
            "{count: 2, tags: [a, b]}",
        )
        .unwrap()
        .unwrap();
        assert_eq!(serde_json::to_string(&out).unwrap(), r#"{"n":2,"t":["a","b"],"s":"v2","k":3}"#);
    }

    #[test]
    fn optional_parameters_left_empty_drop_the_key_but_unknown_ones_fail() {
        let out = evaluate_input("{d: '${{ parameters.description }}', e: ''}", "{}").unwrap().unwrap();
        // A plain empty string renders empty, and Backstage drops that too.
        assert_eq!(serde_json::to_string(&out).unwrap(), "{}");
        let err = evaluate_input("{d: '${{ parameters.nope }}'}", "{}").unwrap_err();
        assert!(err.starts_with("t.yaml:2: step fetch: input.d: undefined value"), "{err}");
        assert!(err.contains("nope"), "{err}");
        let err = evaluate_input("{d: 'x ${{ parameters.nope }}'}", "{}").unwrap_err();
        assert!(err.contains("undefined value"), "{err}");
    }

    #[test]
    fn truthiness_follows_the_scaffolder() {
        assert!(!is_truthy(&Value::from(Vec::<Value>::new())));
        assert!(is_truthy(&Value::from_pairs(Vec::<(&str, Value)>::new())));
        assert!(is_truthy(&Value::from("false")));
        assert!(!is_truthy(&Value::from(0)));
    }
}
