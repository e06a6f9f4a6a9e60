//! Discovery's policy: which repositories of an organisation become git sources, what each may
//! write, and when one counts as gone. A repository's entities are removed only on positive
//! evidence (the API lists it as archived or filtered out, answers 404, or says it moved) —
//! never because of a timeout or a 5xx. The pass that applies it to the store is the app's.

use tracing::warn;

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
        name: format!("{}/{}", source.name, repo.name.to_lowercase()),
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
        warn!(repository = %full, id, "a repository took a name first granted to another; it is granted nothing");
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
