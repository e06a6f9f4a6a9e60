//! Discovery's policy: which repositories of an organisation become git sources, what each may
//! write, and when one counts as gone. A repository's entities are removed only on positive
//! evidence (the API lists it as archived or filtered out, answers 404, or says it moved) —
//! never because of a timeout or a 5xx. The pass that applies it to the store is the app's.

use super::{Auth, GithubClient, GithubError, Repo, RepoCheck};
use crate::config::{
    GitSourceConfig, GithubSourceConfig, RepoFilters, SecretError, SecretRef, SourceConfig, SourceKind, TenancyConfig,
};

/// How the source's client signs in, its secrets resolved.
pub fn auth(gh: &GithubSourceConfig) -> Result<Auth, SecretError> {
    Ok(match (&gh.token, &gh.app) {
        (Some(token), _) => Auth::Token(token.resolve()?),
        (None, Some(app)) => Auth::App {
            app_id: app.app_id,
            installation_id: app.installation_id,
            private_key: app.private_key.resolve()?,
        },
        (None, None) => Auth::Anonymous,
    })
}

/// The name of a discovered repository's git source: `<source>/<repository>`, lower case.
pub fn repository_name(source: &str, repository: &str) -> String {
    format!("{source}/{}", repository.to_lowercase())
}

/// The repository a source name stands for, when it is one `source` discovered.
pub fn repository_of<'a>(source: &str, name: &'a str) -> Option<&'a str> {
    name.strip_prefix(source)?.strip_prefix('/')
}

/// The credential discovered repositories are cloned with: a configured token as configured;
/// an App's installation token issued now, valid well past this pass and renewed by the next
/// discovery; none for an anonymous source.
pub async fn clone_token(client: &GithubClient, gh: &GithubSourceConfig) -> Result<Option<SecretRef>, GithubError> {
    Ok(match (&gh.token, &gh.app) {
        (Some(token), _) => Some(token.clone()),
        (None, Some(_)) => client.clone_token().await?.map(SecretRef::Issued),
        (None, None) => None,
    })
}

/// Whether the filters keep a repository.
pub fn keeps(filters: &RepoFilters, repo: &Repo) -> bool {
    let has = |topic: &String| repo.topics.iter().any(|t| t.eq_ignore_ascii_case(topic));
    (filters.include_archived || !repo.archived)
        && (filters.include_forks || !repo.fork)
        && (filters.topics.is_empty() || filters.topics.iter().any(has))
        && !filters.exclude_topics.iter().any(has)
        && filters.name_pattern.as_ref().is_none_or(|p| p.is_match(&repo.name))
        && (filters.visibility.is_empty()
            || filters.visibility.iter().any(|v| v.eq_ignore_ascii_case(&repo.visibility)))
}

/// The git source syncing one discovered repository, cloning with `token`, writing what
/// `tenancy` grants.
pub fn repository_source(
    source: &SourceConfig,
    gh: &GithubSourceConfig,
    repo: &Repo,
    token: Option<&SecretRef>,
    tenancy: TenancyConfig,
) -> SourceConfig {
    SourceConfig {
        name: repository_name(&source.name, &repo.name),
        interval: source.interval,
        tenancy,
        kind: SourceKind::Git(GitSourceConfig {
            url: repo.clone_url.clone(),
            branch: Some(gh.branch.clone().unwrap_or_else(|| repo.default_branch.clone())),
            catalog_path: gh.catalog_path.clone(),
            token: token.cloned(),
        }),
    }
}

/// What a repository may write: the first grant matching `first_name`, the name it was first
/// seen under (pinned by GitHub's id), else the source's own tenancy. A renamed repository keeps
/// the grant of its first name; `None` — a new repository under a name pinned to another — gets
/// nothing.
pub fn granted(source: &SourceConfig, gh: &GithubSourceConfig, repo: &Repo, first_name: Option<&str>) -> TenancyConfig {
    let name = repo.name.to_lowercase();
    let full = format!("{}/{}", gh.org, repo.name);
    let Some(pinned) = first_name else {
        let id = repo.id.unwrap_or_default();
        return TenancyConfig {
            rule: format!(
                "{}: repository {full} (id {id}) is not the repository first seen under that name; a name does not carry grants to a new repository",
                source.tenancy.rule.trim_end_matches(".tenancy")
            ),
            ..TenancyConfig::default()
        };
    };
    let renamed =
        (pinned != name).then(|| format!(" via {}/{pinned}, its name when first seen (renamed since)", gh.org));
    let matching = gh.grants.iter().find(|g| g.repositories.iter().any(|p| p.is_match(pinned)));
    let mut tenancy = matching.map_or_else(|| source.tenancy.clone(), |grant| grant.tenancy.clone());
    if matching.is_none() {
        tenancy.rule = format!("{} (no grant matches {full})", tenancy.rule);
    }
    tenancy.rule.push_str(renamed.as_deref().unwrap_or_default());
    tenancy
}

/// Why a repository Rigger syncs (`name`, without the organisation) is no longer one of the
/// organisation's: `None` unless the API says so. A repository absent from the listing is asked
/// about on its own; an error is no evidence, and the caller keeps the repository.
pub async fn departure(
    client: &GithubClient,
    gh: &GithubSourceConfig,
    listed: &[Repo],
    name: &str,
) -> Result<Option<&'static str>, GithubError> {
    if listed.iter().any(|r| r.name.eq_ignore_ascii_case(name)) {
        // Listed but filtered out (archived, a topic changed): the API said so.
        return Ok(Some("filtered out"));
    }
    Ok(match client.check(&format!("{}/{name}", gh.org)).await? {
        RepoCheck::Gone => Some("deleted (404)"),
        RepoCheck::Moved => Some("renamed or transferred (301)"),
        RepoCheck::Exists(repo) if !keeps(&gh.filters, &repo) => Some("filtered out"),
        RepoCheck::Exists(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(name: &str) -> Repo {
        Repo {
            id: None,
            name: name.into(),
            full_name: format!("acme/{name}"),
            clone_url: format!("https://github.com/acme/{name}.git"),
            default_branch: "main".into(),
            archived: false,
            fork: false,
            topics: vec!["backstage".into()],
            visibility: "public".into(),
        }
    }

    fn organisation() -> (SourceConfig, GithubSourceConfig) {
        let text = r#"
sources:
  - name: acme
    github: { org: acme }
    tenancy: { namespaces: [shared] }
    grants:
      - { repositories: ["payments-*"], namespaces: [payments] }
"#;
        let config = crate::config::Config::parse(text, std::path::Path::new("/")).expect("the config is valid");
        let source = config.sources.into_iter().next().unwrap();
        let SourceKind::Github(gh) = source.kind.clone() else { panic!("a github source") };
        (source, gh)
    }

    #[test]
    fn a_repository_is_granted_by_its_first_name_and_a_newcomer_under_a_taken_name_gets_nothing() {
        let (source, gh) = organisation();
        let payments =
            |tenancy: &TenancyConfig| tenancy.namespaces == crate::config::Namespaces::All(vec!["payments".into()]);
        let api = Repo { id: Some(7), ..repo("payments-api") };
        assert!(payments(&granted(&source, &gh, &api, Some("payments-api"))));
        let renamed = Repo { id: Some(7), ..repo("billing") };
        let kept = granted(&source, &gh, &renamed, Some("payments-api"));
        assert!(payments(&kept), "a rename keeps the grant of the first name");
        assert!(kept.rule.contains("acme/payments-api, its name when first seen"), "{}", kept.rule);
        let other = granted(&source, &gh, &repo("docs"), Some("docs"));
        assert_eq!(other.namespaces, source.tenancy.namespaces, "no grant matches: the source's own tenancy");
        assert!(other.rule.ends_with("(no grant matches acme/docs)"), "{}", other.rule);
        let newcomer = Repo { id: Some(8), ..repo("payments-api") };
        let nothing = granted(&source, &gh, &newcomer, None);
        assert_eq!(nothing.namespaces, TenancyConfig::default().namespaces, "a taken name grants nothing");
        assert!(nothing.rule.contains("(id 8) is not the repository first seen under that name"), "{}", nothing.rule);
    }

    #[test]
    fn discovered_sources_are_named_after_their_organisation_source() {
        assert_eq!(repository_name("acme", "Payments-API"), "acme/payments-api");
        assert_eq!(repository_of("acme", "acme/payments-api"), Some("payments-api"));
        assert_eq!(repository_of("acme", "acme-two/payments-api"), None);
        assert_eq!(repository_of("acme", "acme"), None);
    }

    #[test]
    fn filters_leave_out_archived_forks_topics_names_and_visibility_as_configured() {
        let all = RepoFilters::default();
        assert!(keeps(&all, &repo("pay")));
        assert!(!keeps(&all, &Repo { archived: true, ..repo("old") }), "archived out by default");
        assert!(!keeps(&all, &Repo { fork: true, ..repo("fork") }), "forks out by default");
        assert!(keeps(&RepoFilters { include_archived: true, ..all.clone() }, &Repo { archived: true, ..repo("old") }));
        let topics = RepoFilters { topics: vec!["Backstage".into()], ..all.clone() };
        assert!(keeps(&topics, &repo("pay")));
        assert!(!keeps(&topics, &Repo { topics: vec![], ..repo("pay") }));
        assert!(!keeps(&RepoFilters { exclude_topics: vec!["backstage".into()], ..all.clone() }, &repo("pay")));
        let named =
            RepoFilters { name_pattern: Some(globset::Glob::new("svc-*").unwrap().compile_matcher()), ..all.clone() };
        assert!(keeps(&named, &repo("svc-pay")) && !keeps(&named, &repo("pay")));
        let private = RepoFilters { visibility: vec!["private".into()], ..all };
        assert!(!keeps(&private, &repo("pay")));
    }
}
