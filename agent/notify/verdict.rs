//! What a pass's commit statuses say and where they go. A git source's repository gets them
//! when Rigger can post there: a repository of a `github` source (its API and credential), or a
//! `git` source with a token on github.com or on a host `commit_statuses.api_urls` names.

use super::{Description, StatusState};
use crate::config::{Config, SecretRef, SourceConfig, SourceKind};
use crate::reconcile::health::Health;
use crate::reconcile::plan::Action;
use crate::reconcile::SourceReport;
use crate::source::git::RemoteUrl;
use crate::source::github::discovery::repository_of;

/// Where `source`'s statuses go, with the credential still unresolved: `(api, owner/name, token)`.
pub fn destination<'a>(config: &'a Config, source: &'a SourceConfig) -> Option<(String, String, &'a SecretRef)> {
    let SourceKind::Git(git) = &source.kind else { return None };
    let token = git.token.as_ref()?;
    // A repository an organisation source discovered: `<source>/<repository>`.
    for parent in &config.sources {
        if let (SourceKind::Github(gh), Some(repo)) = (&parent.kind, repository_of(&parent.name, &source.name)) {
            return Some((gh.api_url.clone(), format!("{}/{repo}", gh.org), token));
        }
    }
    let remote = RemoteUrl::parse(&git.url);
    let api_urls = &config.commit_statuses.as_ref()?.api_urls;
    // `host:port` for an HTTP(S) remote on its own port, else the host.
    let host = remote.host().to_lowercase();
    let bare = host.split(':').next().unwrap_or_default().to_owned();
    let configured = api_urls.get(&host).or_else(|| api_urls.get(&bare)).cloned();
    let api_url = configured.or_else(|| remote.is_github().then(|| "https://api.github.com".to_owned()))?;
    Some((api_url, remote.display_name(), token))
}

/// The repository's page on the status page.
pub fn page(config: &Config, source: &str) -> String {
    let Some(mut url) = config.commit_statuses.as_ref().map(|c| c.page_url.clone()) else { return String::new() };
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().push("sources").extend(source.split('/'));
    }
    url.to_string()
}

/// A new commit was read and is being synced.
pub fn picked_up() -> (StatusState, Description) {
    (StatusState::Pending, Description::Text("Rigger is syncing this commit into the catalog".to_owned()))
}

/// The catalog's verdict on a commit: every entity synced, or some file in error (the
/// description names the first, with its line, from the store).
pub fn catalog(source: &str, in_error: bool) -> (StatusState, Description) {
    let source = source.to_owned();
    if in_error {
        (StatusState::Failure, Description::InError { source })
    } else {
        (StatusState::Success, Description::Synced { source })
    }
}

/// The cluster's verdict, for a commit whose entities declare cluster objects (`None`
/// otherwise): applied and healthy, still converging, or the first refusal, failure or
/// unhealthy object with its cause.
pub fn cluster(report: &SourceReport) -> Option<(StatusState, String)> {
    if report.entities.iter().all(|e| e.steps.is_empty() && e.errors.is_empty()) {
        return None;
    }
    if let Some(entity) = report.entities.iter().find(|e| !e.errors.is_empty()) {
        return Some((StatusState::Failure, format!("{}: {}", entity.entity_ref, entity.errors[0])));
    }
    for entity in &report.entities {
        match &entity.health {
            Some(Health::Failed(why) | Health::Degraded(why)) => {
                return Some((StatusState::Failure, format!("{} is unhealthy: {why}", entity.entity_ref)));
            }
            Some(Health::Progressing(why)) => {
                return Some((StatusState::Pending, format!("{} is converging: {why}", entity.entity_ref)));
            }
            _ => {}
        }
    }
    let applied: usize =
        report.entities.iter().flat_map(|e| &e.steps).filter(|(action, _)| !matches!(action, Action::Prune)).count();
    let healthy = report.entities.iter().all(|e| matches!(e.health, Some(Health::Healthy)));
    let words = if healthy { "applied and healthy" } else { "applied" };
    Some((StatusState::Success, format!("{applied} cluster objects {words}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::{EntityReport, SourceReport};
    use crate::store::ObjectKey;

    fn config() -> Config {
        let text = r#"
commit_statuses:
  page_url: https://rigger.example.com/
  api_urls: { "ghe.example.com:8443": https://ghe.example.com/api/v3 }
sources:
  - name: acme
    github: { org: acme, token: { env: GH_TOKEN } }
  - name: pay
    git: { url: https://github.com/acme/pay.git, token: { env: GH_TOKEN } }
  - name: ghe
    git: { url: https://ghe.example.com:8443/team/ghe.git, token: { env: GH_TOKEN } }
  - name: anonymous
    git: { url: https://github.com/acme/open.git }
  - name: elsewhere
    git: { url: https://gitlab.example.com/team/x.git, token: { env: GH_TOKEN } }
"#;
        Config::parse(text, std::path::Path::new("/")).expect("the config is valid")
    }

    fn git_source(config: &Config, name: &str) -> SourceConfig {
        config.sources.iter().find(|s| s.name == name).cloned().unwrap()
    }

    #[test]
    fn statuses_go_where_rigger_holds_a_token_for_a_github_api() {
        let config = config();
        let discovered = SourceConfig { name: "acme/billing".into(), ..git_source(&config, "pay") };
        let api = |source: &SourceConfig| destination(&config, source).map(|(api, repo, _)| (api, repo));
        assert_eq!(api(&discovered), Some(("https://api.github.com".into(), "acme/billing".into())));
        assert_eq!(api(&git_source(&config, "pay")), Some(("https://api.github.com".into(), "acme/pay".into())));
        assert_eq!(
            api(&git_source(&config, "ghe")),
            Some(("https://ghe.example.com/api/v3".into(), "team/ghe".into())),
            "a host with its own port is found by host:port"
        );
        assert_eq!(api(&git_source(&config, "anonymous")), None, "no token, no status");
        assert_eq!(api(&git_source(&config, "elsewhere")), None, "not a GitHub API Rigger knows");
        assert_eq!(page(&config, "acme/billing"), "https://rigger.example.com/sources/acme/billing");
    }

    fn entity(health: Option<Health>, errors: &[&str]) -> EntityReport {
        let key = ObjectKey {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("pay".into()),
            name: "settings".into(),
        };
        EntityReport {
            entity_ref: "component:default/pay".into(),
            steps: vec![(Action::Create, key)],
            errors: errors.iter().map(|e| (*e).to_owned()).collect(),
            health,
            retry: false,
        }
    }

    #[test]
    fn the_cluster_verdict_names_the_first_failure_then_what_is_unhealthy_or_converging() {
        assert_eq!(cluster(&SourceReport::default()), None, "no objects declared: no cluster status");
        let report = |entities| SourceReport { entities, unavailable: false };
        let (state, text) = cluster(&report(vec![entity(None, &["refused: outside the grant"])])).unwrap();
        assert_eq!((state, text.as_str()), (StatusState::Failure, "component:default/pay: refused: outside the grant"));
        let (state, text) =
            cluster(&report(vec![entity(Some(Health::Progressing("rolling out".into())), &[])])).unwrap();
        assert_eq!((state, text.as_str()), (StatusState::Pending, "component:default/pay is converging: rolling out"));
        let (state, text) = cluster(&report(vec![entity(Some(Health::Healthy), &[])])).unwrap();
        assert_eq!((state, text.as_str()), (StatusState::Success, "1 cluster objects applied and healthy"));
        assert_eq!(catalog("pay", true).0, StatusState::Failure);
        assert_eq!(catalog("pay", false).0, StatusState::Success);
    }
}
