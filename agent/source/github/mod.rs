//! GitHub organisation discovery over the REST API (octocrab as the HTTP client): every
//! repository of an org, page by page, with conditional requests so an unchanged org costs
//! almost no rate limit, and with GitHub's primary and secondary rate limits honoured.
//! Knows nothing of the catalog: it answers "which repositories are there".

pub mod discovery;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, StatusCode};
use octocrab::Octocrab;
use serde_json::Value;

use crate::config::Secret;

/// Repositories per page: GitHub's maximum, so 5,000 repositories are 50 requests.
const PER_PAGE: u32 = 100;
/// Rate-limited requests are retried this many times (after waiting as told) before failing.
const RATE_LIMIT_RETRIES: u32 = 3;
/// Longest wait for a rate-limit window to reset or a `Retry-After`; longer means fail the pass
/// and let the queue retry later.
const MAX_RATE_WAIT: Duration = Duration::from_secs(15 * 60);

/// One repository as discovery sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    /// GitHub's id: it stays with the repository through renames and transfers, and a new
    /// repository under an old name gets a new one.
    pub id: Option<u64>,
    pub name: String,
    pub full_name: String,
    pub clone_url: String,
    pub default_branch: String,
    pub archived: bool,
    pub fork: bool,
    pub topics: Vec<String>,
    /// `public`, `private` or `internal`.
    pub visibility: String,
}

impl Repo {
    fn from_json(value: &Value) -> Option<Self> {
        let text = |k: &str| value[k].as_str().map(str::to_owned);
        let private = value["private"].as_bool().unwrap_or(false);
        Some(Self {
            id: value["id"].as_u64(),
            name: text("name")?,
            full_name: text("full_name")?,
            clone_url: text("clone_url")?,
            default_branch: text("default_branch").unwrap_or_else(|| "main".to_owned()),
            archived: value["archived"].as_bool().unwrap_or(false),
            fork: value["fork"].as_bool().unwrap_or(false),
            topics: value["topics"]
                .as_array()
                .map(|t| t.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
            visibility: text("visibility").unwrap_or_else(|| if private { "private" } else { "public" }.to_owned()),
        })
    }
}

/// What the API says about one repository that left the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoCheck {
    Exists(Repo),
    /// 404: deleted (or no longer visible to us) — positive evidence.
    Gone,
    /// 301: renamed or transferred; the new name is listed under it.
    Moved,
}

#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    #[error("GitHub API at {url} is unavailable: {reason}")]
    Unavailable { url: String, reason: String },
    #[error("GitHub API refused {url}: HTTP {status}: {message}")]
    Refused { url: String, status: u16, message: String },
    #[error("GitHub rate limit exhausted; it resets in {}, longer than Rigger waits within a pass", crate::telemetry::Rounded(*.wait))]
    RateLimited { wait: Duration },
    #[error("cannot set up the GitHub client: {0}")]
    Client(String),
}

impl GithubError {
    /// Outages and rate limits pass; a refusal (bad token, unknown org) needs a person.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::RateLimited { .. })
    }
}

/// A cached page: its ETag, its repositories as JSON, and the next page's URL.
#[derive(Debug, Clone)]
struct CachedPage {
    etag: String,
    items: Vec<Value>,
    next: Option<String>,
}

/// What the last response said about the rate limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct Budget {
    pub remaining: Option<i64>,
    /// Unix seconds at which the window resets.
    pub reset: Option<i64>,
}

/// How discovery authenticates.
pub enum Auth {
    Anonymous,
    /// A personal or fine-grained token, also used to clone over HTTPS.
    Token(Secret),
    /// A GitHub App installation: octocrab signs a JWT with the App's key, exchanges it for an
    /// installation token and renews that token before it expires.
    App {
        app_id: u64,
        installation_id: u64,
        private_key: Secret,
    },
}

/// A handed-out clone token lasts at least this long (installation tokens live an hour).
const CLONE_TOKEN_MIN_LIFE_MINUTES: i64 = 10;

pub struct GithubClient {
    octocrab: Octocrab,
    /// Token for cloning; `None` for an App, whose token is asked for when needed.
    token: Option<Secret>,
    app: bool,
    api_url: String,
    pages: Mutex<HashMap<String, CachedPage>>,
    budget: Mutex<Budget>,
}

/// One HTTP exchange, reduced to what discovery needs.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl GithubClient {
    /// octocrab is built without its `retry` feature: rate limits and outages are handled here,
    /// where they are counted and bounded.
    pub fn new(api_url: &str, auth: Auth) -> Result<Self, GithubError> {
        let client = |e: octocrab::Error| GithubError::Client(e.to_string());
        let builder = Octocrab::builder()
            .base_uri(api_url)
            .map_err(client)?
            .set_connect_timeout(Some(Duration::from_secs(10)))
            .set_read_timeout(Some(Duration::from_secs(30)));
        let (octocrab, token, app) = match auth {
            Auth::Anonymous => (builder.build().map_err(client)?, None, false),
            Auth::Token(token) => {
                (builder.personal_token(token.expose().to_owned()).build().map_err(client)?, Some(token), false)
            }
            Auth::App { app_id, installation_id, private_key } => {
                let key = octocrab::jsonwebtoken::EncodingKey::from_rsa_pem(private_key.expose().as_bytes()).map_err(
                    |e| GithubError::Client(format!("the GitHub App private key is not an RSA PEM key: {e}")),
                )?;
                let as_app = builder.app(app_id.into(), key).build().map_err(client)?;
                (as_app.installation(installation_id.into()).map_err(client)?, None, true)
            }
        };
        Ok(Self {
            octocrab,
            token,
            app,
            api_url: api_url.trim_end_matches('/').to_owned(),
            pages: Mutex::default(),
            budget: Mutex::default(),
        })
    }

    /// The credential for cloning over HTTPS: the token, or a current installation token (valid
    /// for at least ten more minutes; octocrab renews it when it is older).
    pub async fn clone_token(&self) -> Result<Option<Secret>, GithubError> {
        if !self.app {
            return Ok(self.token.clone());
        }
        let token = self
            .octocrab
            .installation_token_with_buffer(chrono::Duration::minutes(CLONE_TOKEN_MIN_LIFE_MINUTES))
            .await
            .map_err(|e| GithubError::Unavailable {
                url: self.api_url.clone(),
                reason: format!("installation token: {e}"),
            })?;
        Ok(Some(Secret::from_config(octocrab::secrecy::ExposeSecret::expose_secret(&token).to_owned())))
    }

    /// The rate-limit budget the last response advertised.
    pub fn budget(&self) -> Budget {
        self.budget.lock().map(|b| *b).unwrap_or_default()
    }

    /// Every repository of `org`, following `Link: rel="next"`. Pages that did not change answer
    /// 304 to `If-None-Match` and are served from the cache.
    pub async fn org_repos(&self, org: &str) -> Result<Vec<Repo>, GithubError> {
        let mut url = Some(format!("{}/orgs/{org}/repos?per_page={PER_PAGE}&type=all", self.api_url));
        let mut repos = Vec::new();
        while let Some(page_url) = url.take() {
            let cached = self.pages.lock().ok().and_then(|p| p.get(&page_url).cloned());
            let answer = self.get(&page_url, cached.as_ref().map(|c| c.etag.as_str())).await?;
            let page = match (answer.status, cached) {
                (StatusCode::NOT_MODIFIED, Some(cached)) => cached,
                (status, _) if status.is_success() => {
                    let items: Vec<Value> =
                        serde_json::from_str(&answer.body).map_err(|e| GithubError::Unavailable {
                            url: page_url.clone(),
                            reason: format!("not a list of repositories: {e}"),
                        })?;
                    let page = CachedPage {
                        etag: header(&answer.headers, "etag").unwrap_or_default().to_owned(),
                        items,
                        next: next_link(&answer.headers),
                    };
                    if let Ok(mut pages) = self.pages.lock() {
                        pages.insert(page_url.clone(), page.clone());
                    }
                    page
                }
                (status, _) => return Err(refused(&page_url, status, &answer.body)),
            };
            repos.extend(page.items.iter().filter_map(Repo::from_json));
            url = page.next;
        }
        Ok(repos)
    }

    /// Asks about one repository by `owner/name`, without following redirects.
    pub async fn check(&self, full_name: &str) -> Result<RepoCheck, GithubError> {
        let url = format!("{}/repos/{full_name}", self.api_url);
        let answer = self.get(&url, None).await?;
        match answer.status {
            StatusCode::NOT_FOUND => Ok(RepoCheck::Gone),
            StatusCode::MOVED_PERMANENTLY => Ok(RepoCheck::Moved),
            status if status.is_success() => serde_json::from_str::<Value>(&answer.body)
                .ok()
                .as_ref()
                .and_then(Repo::from_json)
                .map(RepoCheck::Exists)
                .ok_or_else(|| GithubError::Unavailable { url, reason: "not a repository".to_owned() }),
            status => Err(refused(&url, status, &answer.body)),
        }
    }

    /// Posts a commit status (`{state, target_url, description, context}`) for `sha` of
    /// `owner/name`, waiting out rate limits as reads do.
    pub async fn create_status(&self, full_name: &str, sha: &str, status: &Value) -> Result<(), GithubError> {
        let url = format!("{}/repos/{full_name}/statuses/{sha}", self.api_url);
        let answer = self.request(&url, None, Some(status)).await?;
        if answer.status.is_success() {
            Ok(())
        } else {
            Err(refused(&url, answer.status, &answer.body))
        }
    }

    /// One GET, conditional when `etag` is given; waits out rate limits (bounded) and retries.
    async fn get(&self, url: &str, etag: Option<&str>) -> Result<Answer, GithubError> {
        self.request(url, etag, None).await
    }

    /// A GET, or a POST of `body`; waits out rate limits (bounded) and retries.
    async fn request(&self, url: &str, etag: Option<&str>, body: Option<&Value>) -> Result<Answer, GithubError> {
        let mut attempt = 0;
        loop {
            self.wait_for_budget().await?;
            let mut headers = HeaderMap::new();
            if let Some(value) = etag.and_then(|e| HeaderValue::from_str(e).ok()) {
                headers.insert(http::header::IF_NONE_MATCH, value);
            }
            let unavailable = |reason: String| GithubError::Unavailable { url: url.to_owned(), reason };
            let sent = match body {
                Some(body) => self.octocrab._post(self.on_api(url), Some(body)).await,
                None => self.octocrab._get_with_headers(self.on_api(url), Some(headers)).await,
            };
            let response = sent.map_err(|e| unavailable(e.to_string()))?;
            let (status, headers) = (response.status(), response.headers().clone());
            let body = self.octocrab.body_to_string(response).await.map_err(|e| unavailable(e.to_string()))?;
            self.note_budget(&headers);
            if status.is_server_error() {
                return Err(unavailable(format!("HTTP {status}")));
            }
            let limited = status == StatusCode::TOO_MANY_REQUESTS
                || (status == StatusCode::FORBIDDEN
                    && (header(&headers, "retry-after").is_some()
                        || header(&headers, "x-ratelimit-remaining") == Some("0")));
            if !limited {
                return Ok(Answer { status, headers, body });
            }
            attempt += 1;
            if attempt > RATE_LIMIT_RETRIES {
                return Err(refused(url, status, &body));
            }
            // Secondary limits say how long to wait; primary ones when the window resets.
            let wait = header(&headers, "retry-after")
                .and_then(|s| s.parse::<u64>().ok())
                .map_or_else(|| self.until_reset(), Duration::from_secs);
            if wait > MAX_RATE_WAIT {
                return Err(GithubError::RateLimited { wait });
            }
            tracing::warn!(url, wait = %crate::telemetry::Rounded(wait), "GitHub rate limit reached; waiting as the API asks");
            tokio::time::sleep(wait).await;
        }
    }

    /// The request target for `url`: its path and query when it is on the API host. octocrab
    /// sends credentials only with such relative targets (or to api.github.com), so a GitHub
    /// Enterprise host gets them too, and a URL on any other host never does.
    fn on_api(&self, url: &str) -> String {
        let (Ok(target), Ok(api)) = (url::Url::parse(url), url::Url::parse(&self.api_url)) else {
            return url.to_owned();
        };
        if target.scheme() == api.scheme() && target.host_str() == api.host_str() && target.port() == api.port() {
            match target.query() {
                Some(query) => format!("{}?{query}", target.path()),
                None => target.path().to_owned(),
            }
        } else {
            url.to_owned()
        }
    }

    /// Never spends past the advertised budget: with nothing left, wait for the reset first.
    async fn wait_for_budget(&self) -> Result<(), GithubError> {
        if self.budget().remaining != Some(0) {
            return Ok(());
        }
        let wait = self.until_reset();
        if wait > MAX_RATE_WAIT {
            return Err(GithubError::RateLimited { wait });
        }
        tokio::time::sleep(wait).await;
        if let Ok(mut budget) = self.budget.lock() {
            budget.remaining = None;
        }
        Ok(())
    }

    fn until_reset(&self) -> Duration {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let reset = self.budget().reset.and_then(|r| u64::try_from(r).ok()).unwrap_or(now);
        // One second past the reset, so the window has really turned over.
        Duration::from_secs(reset.saturating_sub(now) + 1)
    }

    fn note_budget(&self, headers: &HeaderMap) {
        let number = |name: &str| header(headers, name).and_then(|v| v.parse::<i64>().ok());
        if let (Some(remaining), Ok(mut budget)) = (number("x-ratelimit-remaining"), self.budget.lock()) {
            *budget = Budget { remaining: Some(remaining), reset: number("x-ratelimit-reset") };
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn refused(url: &str, status: StatusCode, body: &str) -> GithubError {
    let message = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(200).collect());
    GithubError::Refused { url: url.to_owned(), status: status.as_u16(), message }
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(headers: &HeaderMap) -> Option<String> {
    header(headers, "link")?.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == r#"rel="next""#)
            .then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links_are_read_from_link_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "link",
            r#"<https://api.github.com/organizations/1/repos?page=3>; rel="next", <https://api.github.com/organizations/1/repos?page=9>; rel="last""#
                .parse()
                .unwrap(),
        );
        assert_eq!(next_link(&headers).as_deref(), Some("https://api.github.com/organizations/1/repos?page=3"));
        headers.insert("link", r#"<https://x/repos?page=1>; rel="prev""#.parse().unwrap());
        assert_eq!(next_link(&headers), None);
    }

    #[test]
    fn repositories_are_read_with_defaults_for_missing_fields() {
        let repo = Repo::from_json(&serde_json::json!({
            "name": "pay", "full_name": "acme/pay", "clone_url": "https://github.com/acme/pay.git",
            "default_branch": "trunk", "private": true, "topics": ["backstage"]}))
        .unwrap();
        assert_eq!((repo.visibility.as_str(), repo.archived, repo.topics.len()), ("private", false, 1));
        assert!(Repo::from_json(&serde_json::json!({"name": "x"})).is_none(), "no clone URL: not usable");
    }
}
