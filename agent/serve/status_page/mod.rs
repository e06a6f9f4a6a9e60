//! The status page at `/`: for developers who merged and want to know whether it landed. Every
//! source and repository with its synced revision (linking to the commit), last success, state,
//! entity count and files in error; a page per source with each problem at its file and line.
//! Plain HTML from the store, no JavaScript; it refreshes itself, links relatively (so it works
//! under a path prefix such as a reverse proxy's or the Kubernetes API proxy's), and changes
//! nothing.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, State as AxumState};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

use super::State;
use crate::store::{LocationRow, SourceRow};

/// How often the page reloads itself (unless asked not to: `?refresh=off`).
const REFRESH_SECONDS: u64 = 30;

fn templates() -> &'static minijinja::Environment<'static> {
    static ENVIRONMENT: OnceLock<minijinja::Environment<'static>> = OnceLock::new();
    ENVIRONMENT.get_or_init(|| {
        // `.html` names turn on HTML escaping of every value.
        let mut env = minijinja::Environment::new();
        for (name, text) in [
            ("base.html", include_str!("base.html")),
            ("overview.html", include_str!("overview.html")),
            ("source.html", include_str!("source.html")),
        ] {
            env.add_template(name, text).expect("the status page's templates parse");
        }
        env
    })
}

#[derive(Serialize)]
struct SourceView {
    name: String,
    href: String,
    state: String,
    /// `synced`, `errors`, `failing` or `busy`: the colour, beside words that say the same.
    tone: &'static str,
    revision: Option<String>,
    revision_short: Option<String>,
    revision_url: Option<String>,
    web_url: Option<String>,
    last_success: Option<String>,
    entities: i64,
    files_in_error: usize,
    error: Option<String>,
}

#[derive(Serialize)]
struct Problem {
    line: Option<u64>,
    message: String,
}

#[derive(Serialize)]
struct FileView {
    path: String,
    file_url: Option<String>,
    held_by: Option<String>,
    problems: Vec<Problem>,
}

#[derive(Serialize)]
struct ErrorView {
    source: String,
    source_href: String,
    path: String,
    file_url: Option<String>,
    line: Option<u64>,
    message: String,
}

/// What the page shows, read from the store and the agent's memory.
struct Snapshot {
    sources: Vec<SourceRow>,
    locations: Vec<LocationRow>,
    counts: std::collections::HashMap<String, i64>,
}

async fn snapshot(state: &State) -> Result<Snapshot, Response> {
    let read = async {
        Ok::<_, crate::store::StoreError>(Snapshot {
            sources: state.store.sources().await?,
            locations: state.store.locations().await?,
            counts: state.store.entity_counts_by_source().await?,
        })
    };
    read.await.map_err(|err| {
        let message = super::store_unavailable(&err);
        (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "5")], message).into_response()
    })
}

/// `?refresh=off` stops the page reloading itself (a screen reader's place is kept).
#[derive(serde::Deserialize)]
pub struct PageQuery {
    refresh: Option<String>,
}

impl PageQuery {
    fn refreshes(&self) -> bool {
        self.refresh.as_deref() != Some("off")
    }
}

/// `GET /`
pub async fn overview(AxumState(state): AxumState<State>, Query(query): Query<PageQuery>) -> Response {
    let snapshot = match snapshot(&state).await {
        Ok(snapshot) => snapshot,
        Err(response) => return response,
    };
    let root = "./";
    let sources = views(&state, &snapshot, root);
    let revisions: BTreeMap<&str, &SourceView> = sources.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut errors = Vec::new();
    for location in &snapshot.locations {
        let source = revisions.get(location.source.as_str());
        for problem in problems(location) {
            errors.push(ErrorView {
                source: location.source.clone(),
                source_href: href(root, &location.source),
                path: location.path.clone(),
                file_url: source.and_then(|s| file_url(s, &location.path, problem.line)),
                line: problem.line,
                message: problem.message,
            });
        }
    }
    let entities: i64 = snapshot.counts.values().sum();
    let (sources, errors) = (serialized(&sources), serialized(&errors));
    render("overview.html", query.refreshes(), minijinja::context! { root, sources, errors, entities })
}

/// `GET /sources/{name}`: one source (an organisation's repository is `org/name`).
pub async fn source(
    AxumState(state): AxumState<State>,
    Path(name): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    let snapshot = match snapshot(&state).await {
        Ok(snapshot) => snapshot,
        Err(response) => return response,
    };
    // Back to the overview from `sources/<name>`, however many segments the name has.
    let root = "../".repeat(1 + name.matches('/').count());
    let Some(source) = views(&state, &snapshot, &root).into_iter().find(|s| s.name == name) else {
        let page = format!("No source named {name}");
        return (StatusCode::NOT_FOUND, page).into_response();
    };
    let files: Vec<FileView> = snapshot
        .locations
        .iter()
        .filter(|l| l.source == name)
        .map(|l| FileView {
            path: l.path.clone(),
            file_url: file_url(&source, &l.path, None),
            held_by: l.held_by.clone(),
            problems: problems(l),
        })
        .collect();
    let (source, files) = (serialized(&source), serialized(&files));
    render("source.html", query.refreshes(), minijinja::context! { root, source, files })
}

fn serialized<T: Serialize>(value: &T) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(value))
}

fn render(template: &str, refreshes: bool, context: minijinja::Value) -> Response {
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let refresh_seconds = refreshes.then_some(REFRESH_SECONDS);
    let context = minijinja::context! { now, refresh_seconds, ..context };
    match templates().get_template(template).and_then(|t| t.render(context)) {
        // Nothing but this page's own markup and inline style may run or load.
        Ok(page) => (
            [
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
                ),
            ],
            Html(page),
        )
            .into_response(),
        Err(err) => {
            tracing::warn!(error = %err, template, "the status page could not be rendered");
            (StatusCode::INTERNAL_SERVER_ERROR, "The status page could not be rendered; the agent's log has the cause")
                .into_response()
        }
    }
}

/// Every source the store knows and every one still waiting for its first pass, by name.
fn views(state: &State, snapshot: &Snapshot, root: &str) -> Vec<SourceView> {
    let mut progress = state.progress.snapshot();
    let mut in_error: BTreeMap<&str, usize> = BTreeMap::new();
    for location in snapshot.locations.iter().filter(|l| l.state == "error") {
        *in_error.entry(location.source.as_str()).or_default() += 1;
    }
    let mut views: Vec<SourceView> = snapshot
        .sources
        .iter()
        .map(|row| {
            let busy = progress.remove(&row.name).map(|p| p.state);
            let files_in_error = in_error.get(row.name.as_str()).copied().unwrap_or_default();
            let (label, tone) = match (busy, &row.error, files_in_error) {
                (Some(doing), _, _) => (doing.to_owned(), "busy"),
                (None, Some(_), _) => ("last pass failed".to_owned(), "failing"),
                (None, None, 0) => ("synced".to_owned(), "synced"),
                (None, None, 1) => ("synced; 1 file in error".to_owned(), "errors"),
                (None, None, n) => (format!("synced; {n} files in error"), "errors"),
            };
            let web_url = state_web_url(state, &row.name);
            SourceView {
                href: href(root, &row.name),
                state: label,
                tone,
                revision_short: row.revision.as_deref().map(|r| r.chars().take(12).collect()),
                revision_url: web_url.as_deref().zip(row.revision.as_deref()).map(|(w, r)| format!("{w}/commit/{r}")),
                revision: row.revision.clone(),
                web_url,
                last_success: last_success(state, &row.name),
                entities: snapshot.counts.get(&row.name).copied().unwrap_or_default(),
                files_in_error,
                error: row.error.clone(),
                name: row.name.clone(),
            }
        })
        .collect();
    // Sources waiting for (or in) their first pass have no row in the store yet.
    for (name, progress) in progress {
        views.push(SourceView {
            href: href(root, &name),
            state: progress.state.to_owned(),
            tone: "busy",
            revision: None,
            revision_short: None,
            revision_url: None,
            web_url: state_web_url(state, &name),
            last_success: None,
            entities: 0,
            files_in_error: 0,
            error: None,
            name,
        });
    }
    views.sort_by(|a, b| a.name.cmp(&b.name));
    views
}

/// A repository's web address, when it is browsable over HTTP(S).
fn state_web_url(state: &State, source: &str) -> Option<String> {
    state.repositories.web_url(source).filter(|u| u.starts_with("http://") || u.starts_with("https://"))
}

fn href(root: &str, source: &str) -> String {
    format!("{root}sources/{}", encoded_path(source))
}

/// A `/`-separated path with each segment percent-encoded as a URL path segment.
fn encoded_path(path: &str) -> String {
    let mut url = url::Url::parse("http://x/").expect("a literal URL parses");
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.clear().extend(path.split('/'));
    }
    url.path().trim_start_matches('/').to_owned()
}

/// A file at the synced revision (GitHub's and GitLab's `/blob/` form), at its line.
fn file_url(source: &SourceView, path: &str, line: Option<u64>) -> Option<String> {
    let (web, revision) = (source.web_url.as_deref()?, source.revision.as_deref()?);
    let anchor = line.map(|l| format!("#L{l}")).unwrap_or_default();
    Some(format!("{web}/blob/{revision}/{}{anchor}", encoded_path(path)))
}

/// A file's stored problems.
fn problems(location: &LocationRow) -> Vec<Problem> {
    location.problems().into_iter().map(|(line, message)| Problem { line, message }).collect()
}

/// "3 min ago (2026-12-06T03:52:41Z)", from the last-success metric; `None` when the source has
/// not synced since the agent started.
fn last_success(state: &State, source: &str) -> Option<String> {
    let seconds = state.metrics.sync_last_success.with_label_values(&[source]).get();
    let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).ok().filter(|s| *s > 0)?);
    let ago = SystemTime::now().duration_since(at).unwrap_or_default().as_secs();
    let words = match ago {
        0..=59 => format!("{ago} s ago"),
        60..=3599 => format!("{} min ago", ago / 60),
        _ => format!("{} h ago", ago / 3600),
    };
    Some(format!("{words} ({})", humantime::format_rfc3339_seconds(at)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_parse_and_escape_what_they_show() {
        let errors = vec![ErrorView {
            source: "acme/pay".into(),
            source_href: "./sources/acme/pay".into(),
            path: "catalog-info.yaml".into(),
            file_url: None,
            line: Some(6),
            message: "<script>alert(1)</script>".into(),
        }];
        let context = minijinja::context! {
            root => "./", sources => serialized(&Vec::<SourceView>::new()), errors => serialized(&errors), entities => 0,
            now => "2026-12-06T00:00:00Z", refresh_seconds => Some(REFRESH_SECONDS),
        };
        let page = templates().get_template("overview.html").unwrap().render(context).unwrap();
        // minijinja's HTML escaping also writes `/` as `&#x2f;`.
        assert!(page.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"), "{page}");
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("<td class=\"number\">6</td>"), "{page}");
        let files = vec![FileView { path: "a.yaml".into(), file_url: None, held_by: None, problems: Vec::new() }];
        let source = SourceView {
            name: "acme/pay".into(),
            href: "../../sources/acme/pay".into(),
            state: "synced".into(),
            tone: "synced",
            revision: Some("abc".into()),
            revision_short: Some("abc".into()),
            revision_url: None,
            web_url: None,
            last_success: None,
            entities: 1,
            files_in_error: 0,
            error: None,
        };
        let context = minijinja::context! {
            root => "../../", source => serialized(&source), files => serialized(&files),
            now => "2026-12-06T00:00:00Z", refresh_seconds => Some(REFRESH_SECONDS),
        };
        let page = templates().get_template("source.html").unwrap().render(context).unwrap();
        assert!(page.contains("<h1>acme&#x2f;pay</h1>") && page.contains("href=\"..&#x2f;..&#x2f;\""), "{page}");
    }

    #[test]
    fn links_are_relative_and_names_are_encoded() {
        assert_eq!(href("./", "acme/pay"), "./sources/acme/pay");
        assert_eq!(href("../", "a b"), "../sources/a%20b");
        assert_eq!(encoded_path("dir/a#b?.yaml"), "dir/a%23b%3F.yaml");
    }
}
