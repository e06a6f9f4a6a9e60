//! The scaffolder's template language on minijinja: Nunjucks with `${{ … }}` for variables (or
//! `{{ … }}` under `cookiecutterCompat`), and the filters Backstage adds — `parseRepoUrl`,
//! `parseEntityRef`, `pick`, `projectSlug` — plus Nunjucks' `dump`, which minijinja lacks.

use minijinja::syntax::SyntaxConfig;
use minijinja::value::ValueKind;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior, Value};

/// How one `fetch:template` step asks for its templates to be read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Syntax {
    /// `{{ cookiecutter.x }}` instead of `${{ values.x }}`, and the `jsonify` filter.
    pub cookiecutter: bool,
    pub trim_blocks: bool,
    pub lstrip_blocks: bool,
}

/// JSON.stringify caps its indent at ten characters.
const MAX_DUMP_INDENT: usize = 10;

/// An environment that reads templates as the scaffolder's Nunjucks does.
pub fn environment(syntax: Syntax) -> Result<Environment<'static>, Error> {
    let mut env = Environment::new();
    let mut config = SyntaxConfig::builder();
    // Backstage changes only the variable delimiters: `{% %}` blocks and `{# #}` comments stay
    // Nunjucks' own, so a skeleton's `{% if values.x %}` works here as it does there.
    if !syntax.cookiecutter {
        config.variable_delimiters("${{", "}}");
    }
    // Nunjucks keeps a template's final newline; Jinja (and minijinja by default) drop it.
    config.trim_blocks(syntax.trim_blocks).lstrip_blocks(syntax.lstrip_blocks).keep_trailing_newline(true);
    env.set_syntax(config.build()?);
    // Printing or iterating an undefined value is an error (the point of rendering locally);
    // `{% if values.optional %}` and `| default(…)` still work on one.
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env.set_debug(true);
    // The scaffolder renders with `autoescape: false`, whatever the file's extension.
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_formatter(|out, _state, value| out.write_str(&js_string(value)).map_err(Error::from));
    env.add_filter("dump", dump);
    if syntax.cookiecutter {
        env.add_filter("jsonify", dump);
    }
    env.add_filter("parseRepoUrl", parse_repo_url);
    env.add_filter("parseEntityRef", parse_entity_ref);
    env.add_filter("pick", pick);
    env.add_filter("projectSlug", project_slug);
    // Nunjucks reads a bare object key as a string, so Backstage documents
    // `parseEntityRef({ defaultKind: "group" })`; Jinja would look `defaultKind` up as a
    // variable. These two globals make the documented form mean what it says.
    env.add_global("defaultKind", "defaultKind");
    env.add_global("defaultNamespace", "defaultNamespace");
    Ok(env)
}

/// How Nunjucks prints a value — JavaScript's `String()`: `true`, not Python's `True`; `null`
/// as nothing; arrays joined with commas. (Printing undefined fails before this is reached.)
fn js_string(value: &Value) -> String {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => String::new(),
        ValueKind::Bool => value.is_true().to_string(),
        // JavaScript has one number type: `1.0` prints as `1`.
        ValueKind::Number => {
            let text = value.to_string();
            text.strip_suffix(".0").map_or_else(|| text.clone(), str::to_owned)
        }
        ValueKind::Seq | ValueKind::Iterable => value
            .try_iter()
            .map(|items| items.map(|item| js_string(&item)).collect::<Vec<_>>().join(","))
            .unwrap_or_default(),
        ValueKind::Map => "[object Object]".to_owned(),
        _ => value.to_string(),
    }
}

/// Nunjucks' `dump`: `JSON.stringify(value, null, indent)`.
fn dump(value: &Value, indent: Option<Value>) -> Result<Value, Error> {
    if value.is_undefined() {
        return Err(Error::new(ErrorKind::UndefinedError, "dump of an undefined value"));
    }
    let indent = match indent {
        None => String::new(),
        Some(indent) if indent.kind() == ValueKind::Number => {
            let width = usize::try_from(indent).unwrap_or(0);
            " ".repeat(width.min(MAX_DUMP_INDENT))
        }
        Some(indent) => indent.as_str().unwrap_or_default().chars().take(MAX_DUMP_INDENT).collect(),
    };
    let bad = |e: serde_json::Error| Error::new(ErrorKind::InvalidOperation, format!("cannot dump as JSON: {e}"));
    let text = if indent.is_empty() {
        serde_json::to_string(value).map_err(bad)?
    } else {
        let mut out = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
        serde::Serialize::serialize(value, &mut serializer).map_err(bad)?;
        String::from_utf8_lossy(&out).into_owned()
    };
    Ok(Value::from(text))
}

/// The fields `parseRepoUrl` reads from the query, in the order Backstage returns them.
const REPO_URL_FIELDS: [&str; 4] = ["owner", "organization", "workspace", "project"];

/// The scaffolder's `parseRepoUrl`: `github.com?owner=o&repo=r` (as the `RepoUrlPicker` writes
/// it) → `{host, owner, repo, organization?, workspace?, project?}`. Backstage decides which
/// query keys are required from the integration configured for the host; without that config
/// the kind of host is read from its name.
fn parse_repo_url(url: &str) -> Result<Value, Error> {
    let invalid = |why: String| Error::new(ErrorKind::InvalidOperation, format!("invalid repo URL {url:?}: {why}"));
    let parsed = url::Url::parse(&format!("https://{url}")).map_err(|e| invalid(e.to_string()))?;
    let name = parsed.host_str().unwrap_or_default();
    let host = parsed.port().map_or_else(|| name.to_owned(), |port| format!("{name}:{port}"));
    let param = |key: &str| parsed.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.trim_matches('/').to_owned());
    let required: &[&str] = match host_kind(&host) {
        HostKind::Bitbucket if host == "www.bitbucket.org" => &["workspace", "project", "repo"],
        HostKind::Bitbucket | HostKind::Azure => &["project", "repo"],
        HostKind::Gitlab if param("project").is_none() => &["owner", "repo"],
        HostKind::Gitlab => &[],
        HostKind::RepoOnly => &["repo"],
        HostKind::Other => &["repo", "owner"],
    };
    if let Some(missing) = required.iter().find(|key| param(key).is_none_or(|v| v.is_empty())) {
        return Err(invalid(format!("missing {missing}")));
    }
    let mut fields = vec![("host", host.clone())];
    // Backstage returns `owner` before `repo`; undefined fields vanish in JSON.
    fields.extend(param("owner").map(|v| ("owner", v)));
    fields.extend(param("repo").map(|v| ("repo", v)));
    for key in &REPO_URL_FIELDS[1..] {
        fields.extend(param(key).map(|v| (*key, v)));
    }
    Ok(Value::from_pairs(fields))
}

enum HostKind {
    Bitbucket,
    Azure,
    Gitlab,
    /// Gitea and Gerrit need only `repo`.
    RepoOnly,
    /// GitHub and anything unrecognised: `owner` and `repo`.
    Other,
}

fn host_kind(host: &str) -> HostKind {
    if host.contains("bitbucket") {
        HostKind::Bitbucket
    } else if host == "dev.azure.com" || host.ends_with(".visualstudio.com") {
        HostKind::Azure
    } else if host.contains("gitlab") {
        HostKind::Gitlab
    } else if host.contains("gitea") || host.contains("gerrit") {
        HostKind::RepoOnly
    } else {
        HostKind::Other
    }
}

/// The scaffolder's `projectSlug`: `owner/repo` of a repo URL. Like Backstage, a host without an
/// owner (a GitLab project id) yields `undefined/repo`.
fn project_slug(url: &str) -> Result<Value, Error> {
    let parsed = parse_repo_url(url)?;
    let field = |key: &str| {
        let value = parsed.get_attr(key).unwrap_or_default();
        if value.is_undefined() {
            "undefined".to_owned()
        } else {
            value.to_string()
        }
    };
    Ok(Value::from(format!("{}/{}", field("owner"), field("repo"))))
}

/// `@backstage/catalog-model`'s `parseEntityRef`: `[kind:][namespace/]name` (or an object with
/// those keys) → `{kind, namespace, name}`, case kept, with optional
/// `{defaultKind, defaultNamespace}`.
// minijinja hands optional filter arguments over owned.
#[allow(clippy::needless_pass_by_value)]
fn parse_entity_ref(reference: &Value, context: Option<Value>) -> Result<Value, Error> {
    let fail = |message: String| Error::new(ErrorKind::InvalidOperation, message);
    let text = |value: Value| value.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    let context_field = |key: &str| context.as_ref().and_then(|c| c.get_attr(key).ok()).and_then(text);
    let (kind, namespace, name) = if let Some(reference) = reference.as_str() {
        if reference.is_empty() {
            return Err(fail("Entity reference must not be empty".into()));
        }
        split_entity_ref(reference).ok_or_else(|| {
            fail(format!("Entity reference \"{reference}\" was not on the form [<kind>:][<namespace>/]<name>"))
        })?
    } else if reference.kind() == ValueKind::Map {
        let field = |key: &str| reference.get_attr(key).ok().and_then(text);
        (field("kind"), field("namespace"), field("name").unwrap_or_default())
    } else {
        return Err(fail(format!("Entity reference must be a string or an object, not {reference}")));
    };
    let shown = || serde_json::to_string(reference).unwrap_or_default();
    let kind = kind.or_else(|| context_field("defaultKind")).ok_or_else(|| {
        fail(format!(
            "Entity reference {} had missing or empty kind (e.g. did not start with \"component:\" or similar)",
            shown()
        ))
    })?;
    let namespace = namespace.or_else(|| context_field("defaultNamespace")).unwrap_or_else(|| "default".into());
    if name.is_empty() {
        return Err(fail(format!("Entity reference {} had missing or empty name", shown())));
    }
    Ok(Value::from_pairs([("kind", kind), ("namespace", namespace), ("name", name)]))
}

/// Backstage's `parseRefString`: a `:` names the kind only before the first `/`.
fn split_entity_ref(reference: &str) -> Option<(Option<String>, Option<String>, String)> {
    let slash = reference.find('/');
    let colon = reference.find(':').filter(|colon| slash.is_none_or(|slash| *colon < slash));
    let kind = colon.map(|c| &reference[..c]);
    let rest = colon.map_or(reference, |c| &reference[c + 1..]);
    let (namespace, name) = match rest.find('/') {
        Some(s) => (Some(&rest[..s]), &rest[s + 1..]),
        None => (None, rest),
    };
    if kind == Some("") || namespace == Some("") || name.is_empty() {
        return None;
    }
    Some((kind.map(str::to_owned), namespace.map(str::to_owned), name.to_owned()))
}

/// lodash `get(object, path)`, which Backstage registers as `pick`: `a.b[0].c`; a key that is
/// itself the whole path wins; anything missing is undefined.
fn pick(object: &Value, path: &str) -> Value {
    if let Ok(direct) = object.get_item(&Value::from(path)) {
        if !direct.is_undefined() {
            return direct;
        }
    }
    let mut current = object.clone();
    for segment in path_segments(path) {
        let next = match segment.parse::<usize>() {
            Ok(index) if current.kind() == ValueKind::Seq => current.get_item_by_index(index),
            _ => current.get_item(&Value::from(segment)),
        };
        match next {
            Ok(value) if !value.is_undefined() => current = value,
            _ => return Value::UNDEFINED,
        }
    }
    current
}

/// `a.b[0]["c"]` → `a`, `b`, `0`, `c`.
fn path_segments(path: &str) -> Vec<String> {
    let mut segments = Vec::new();
    for dotted in path.split('.') {
        let mut rest = dotted;
        if let Some(open) = rest.find('[') {
            segments.push(rest[..open].to_owned());
            rest = &rest[open..];
            while let Some(inner) = rest.strip_prefix('[') {
                let close = inner.find(']').unwrap_or(inner.len());
                segments.push(inner[..close].trim_matches(['"', '\'']).to_owned());
                rest = inner.get(close + 1..).unwrap_or_default();
            }
        } else {
            segments.push(rest.to_owned());
        }
    }
    segments.retain(|s| !s.is_empty());
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str) -> Result<String, Error> {
        render_with(Syntax::default(), template)
    }

    fn render_with(syntax: Syntax, template: &str) -> Result<String, Error> {
        let env = environment(syntax).unwrap();
        let yaml: serde_yaml::Value = serde_yaml::from_str(
            "name: Payments\nrepoUrl: github.com?owner=acme&repo=payments\nowner: group:platform/infra\nlist: [a, b, c]\nobj: {z: 1, a: [true, null], s: \"x\"}\n",
        )
        .unwrap();
        let values = Value::from(minijinja::value::Serde(yaml));
        env.render_str(template, Value::from_pairs([("values", values)]))
    }

    #[test]
    fn variables_use_the_scaffolder_delimiters_and_leave_plain_braces_alone() {
        assert_eq!(
            render("${{ values.name }} {{ values.name }} ${{values.name}}").unwrap(),
            "Payments {{ values.name }} Payments"
        );
        assert_eq!(render("{% if values.name %}yes{% endif %}{# gone #}\n").unwrap(), "yes\n");
    }

    #[test]
    fn cookiecutter_syntax_uses_double_braces_and_jsonify() {
        let compat = Syntax { cookiecutter: true, ..Syntax::default() };
        assert_eq!(
            render_with(compat, "{{ values.name }} ${x} {{ values.list | jsonify }}").unwrap(),
            "Payments ${x} [\"a\",\"b\",\"c\"]"
        );
        assert_eq!(render("${{ values.list | jsonify }}").unwrap_err().kind(), ErrorKind::UnknownFilter);
    }

    #[test]
    fn printing_an_undefined_value_is_an_error_but_testing_one_is_not() {
        let err = render("line one\n${{ values.nmae }}").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UndefinedError);
        assert_eq!(err.line(), Some(2));
        assert_eq!(render("{% if values.nmae %}x{% endif %}${{ values.nmae | default('d') }}").unwrap(), "d");
    }

    #[test]
    fn values_print_as_javascript_prints_them() {
        assert_eq!(
            render("${{ true }} ${{ none }} ${{ values.list }} ${{ values.obj }} ${{ 1.0 }} ${{ 2.5 }}").unwrap(),
            "true  a,b,c [object Object] 1 2.5"
        );
    }

    #[test]
    fn dump_is_json_stringify_with_key_order_and_indent() {
        assert_eq!(render("${{ values.obj | dump }}").unwrap(), r#"{"z":1,"a":[true,null],"s":"x"}"#);
        assert_eq!(render("${{ values.name | dump }}").unwrap(), "\"Payments\"");
        assert_eq!(render("${{ values.list | dump(2) }}").unwrap(), "[\n  \"a\",\n  \"b\",\n  \"c\"\n]");
        assert_eq!(render("${{ {} | dump(2) }}").unwrap(), "{}");
        assert_eq!(render("${{ values.list | dump('\t') }}").unwrap(), "[\n\t\"a\",\n\t\"b\",\n\t\"c\"\n]");
        assert!(render("${{ values.nope | dump }}").is_err());
    }

    #[test]
    fn nunjucks_builtins_come_from_minijinja() {
        assert_eq!(render("${{ values.name | upper }}|${{ values.name | lower }}").unwrap(), "PAYMENTS|payments");
        assert_eq!(render("${{ values.name | replace('Pay', 'Re') }}|${{ '  x ' | trim }}").unwrap(), "Rements|x");
        assert_eq!(render("${{ values.list | length }}|${{ values.list | join('-') }}").unwrap(), "3|a-b-c");
        assert_eq!(render("${{ values.list | first }}${{ values.list | last }}").unwrap(), "ac");
        assert_eq!(render("${{ values.nope | default('none') }}|${{ '' | default('e', true) }}").unwrap(), "none|e");
    }

    #[test]
    fn parse_repo_url_reads_the_picker_format() {
        assert_eq!(
            render("${{ values.repoUrl | parseRepoUrl | dump }}").unwrap(),
            r#"{"host":"github.com","owner":"acme","repo":"payments"}"#
        );
        assert_eq!(
            render("${{ 'dev.azure.com?organization=o&project=p&repo=r' | parseRepoUrl | dump }}").unwrap(),
            r#"{"host":"dev.azure.com","repo":"r","organization":"o","project":"p"}"#
        );
        assert_eq!(
            render("${{ 'bitbucket.org?workspace=w&project=p&repo=r' | parseRepoUrl | dump }}").unwrap(),
            r#"{"host":"bitbucket.org","repo":"r","workspace":"w","project":"p"}"#
        );
        assert_eq!(
            render("${{ 'ghe.acme.dev:8443?owner=/o/&repo=r' | parseRepoUrl | pick('host') }}").unwrap(),
            "ghe.acme.dev:8443"
        );
        let err = render("${{ 'github.com?repo=r' | parseRepoUrl }}").unwrap_err();
        assert!(err.to_string().contains("missing owner"), "{err}");
        // A GitLab project id stands in for owner and repo.
        assert_eq!(
            render("${{ 'gitlab.com?project=123' | parseRepoUrl | dump }}").unwrap(),
            r#"{"host":"gitlab.com","project":"123"}"#
        );
    }

    #[test]
    fn project_slug_is_owner_slash_repo() {
        assert_eq!(render("${{ values.repoUrl | projectSlug }}").unwrap(), "acme/payments");
        assert_eq!(render("${{ 'gitlab.com?project=42&repo=r' | projectSlug }}").unwrap(), "undefined/r");
    }

    #[test]
    fn parse_entity_ref_keeps_case_and_takes_defaults() {
        assert_eq!(
            render("${{ values.owner | parseEntityRef | dump }}").unwrap(),
            r#"{"kind":"group","namespace":"platform","name":"infra"}"#
        );
        assert_eq!(
            render("${{ 'Team-A' | parseEntityRef({ defaultKind: \"Group\", defaultNamespace: \"ops\" }) | dump }}")
                .unwrap(),
            r#"{"kind":"Group","namespace":"ops","name":"Team-A"}"#
        );
        assert_eq!(render("${{ 'user:a/b:c' | parseEntityRef | pick('name') }}").unwrap(), "b:c");
        assert_eq!(render("${{ 'ns/x' | parseEntityRef({'defaultKind': 'api'}) | pick('namespace') }}").unwrap(), "ns");
        assert!(render("${{ 'techdocs' | parseEntityRef }}")
            .unwrap_err()
            .to_string()
            .contains("missing or empty kind"));
        assert!(render("${{ 'group:' | parseEntityRef }}").unwrap_err().to_string().contains("was not on the form"));
    }

    #[test]
    fn pick_follows_lodash_paths() {
        assert_eq!(render("${{ values.obj | pick('s') }}|${{ values.obj | pick('a[0]') }}").unwrap(), "x|true");
        assert_eq!(render("${{ values | pick('obj.z') }}").unwrap(), "1");
        assert_eq!(render("${{ values | pick('obj.missing') | default('none') }}").unwrap(), "none");
        assert_eq!(path_segments("a.b[0][\"c\"]"), ["a", "b", "0", "c"]);
    }
}
