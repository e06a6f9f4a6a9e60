//! Turning a clone URL into the browsable base URL that Backstage's location annotations use.

/// A remote's clone URL, understood well enough to name the repository and its web address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUrl {
    /// `github.com`, `ghe.example.com`, with the port of an HTTP(S) URL that names one (the
    /// web server is there too); empty for local paths.
    host: String,
    /// The repository path without leading `/` and without `.git`, e.g. `acme/platform`.
    path: String,
    /// `https`, `http` or `file` for the web URL (ssh remotes are browsed over https).
    scheme: &'static str,
}

impl RemoteUrl {
    /// Accepts `https://host/o/r.git`, `ssh://git@host/o/r.git`, scp-like `git@host:o/r.git`,
    /// `file:///path/r.git` and plain paths.
    pub fn parse(url: &str) -> Self {
        if let Ok(parsed) = url::Url::parse(url) {
            let scheme = match parsed.scheme() {
                "http" => "http",
                "file" => "file",
                _ => "https",
            };
            let mut host = parsed.host_str().unwrap_or_default().to_owned();
            // An ssh port says nothing of where the web pages are; an HTTP(S) port does.
            if let (Some(port), "http" | "https") = (parsed.port(), parsed.scheme()) {
                host = format!("{host}:{port}");
            }
            let path = parsed.path().trim_matches('/').trim_end_matches(".git").to_owned();
            return Self { host, path, scheme };
        }
        if let Some((user_host, path)) = url.split_once(':').filter(|(h, _)| h.contains('@') && !h.contains('/')) {
            let host = user_host.rsplit('@').next().unwrap_or_default().to_owned();
            let path = path.trim_matches('/').trim_end_matches(".git").to_owned();
            return Self { host, path, scheme: "https" };
        }
        let path = url.trim_end_matches('/').trim_end_matches(".git").trim_start_matches('/').to_owned();
        Self { host: String::new(), path, scheme: "file" }
    }

    /// The same repository, however it is spelled (scheme, `.git`, case, user): what a push
    /// webhook's clone or SSH URL is matched with.
    pub fn same_repository(&self, other: &RemoteUrl) -> bool {
        self.host.eq_ignore_ascii_case(&other.host) && self.path.eq_ignore_ascii_case(&other.path)
    }

    /// Whether `owner/name` (a webhook's `full_name`) names this repository.
    pub fn names(&self, full_name: &str) -> bool {
        !full_name.is_empty() && self.display_name().eq_ignore_ascii_case(full_name)
    }

    /// `github.com`, or `host:port` for an HTTP(S) remote on another port.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn is_github(&self) -> bool {
        self.host.eq_ignore_ascii_case("github.com")
    }

    /// `https://github.com/acme/platform`; `file:///srv/git/platform` for local repositories.
    pub fn web_url(&self) -> String {
        if self.scheme == "file" {
            format!("file:///{}", self.path)
        } else {
            format!("{}://{}/{}", self.scheme, self.host, self.path)
        }
    }

    /// `acme/platform` for hosted repositories: the last two path segments, or fewer.
    pub fn display_name(&self) -> String {
        let segments: Vec<&str> = self.path.rsplitn(3, '/').take(2).collect();
        segments.into_iter().rev().collect::<Vec<_>>().join("/")
    }
}

/// Shorthand for [`RemoteUrl::web_url`].
pub fn web_url(url: &str) -> String {
    RemoteUrl::parse(url).web_url()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_remotes_in_every_form_share_one_web_url() {
        for url in [
            "https://github.com/acme/platform.git",
            "https://token@github.com/acme/platform",
            "ssh://git@github.com/acme/platform.git",
            "git@github.com:acme/platform.git",
        ] {
            let remote = RemoteUrl::parse(url);
            assert_eq!(remote.web_url(), "https://github.com/acme/platform", "{url}");
            assert!(remote.is_github(), "{url}");
            assert_eq!(remote.display_name(), "acme/platform");
        }
    }

    #[test]
    fn an_http_port_is_part_of_the_web_address_and_an_ssh_port_is_not() {
        assert_eq!(
            web_url("https://git.example.com:8443/acme/platform.git"),
            "https://git.example.com:8443/acme/platform"
        );
        assert_eq!(
            web_url("ssh://git@git.example.com:2222/acme/platform.git"),
            "https://git.example.com/acme/platform"
        );
    }

    #[test]
    fn local_repositories_browse_as_file_urls() {
        assert_eq!(web_url("file:///srv/git/platform.git"), "file:///srv/git/platform");
        assert_eq!(web_url("/srv/git/platform.git"), "file:///srv/git/platform");
        assert!(!RemoteUrl::parse("/srv/git/platform.git").is_github());
    }
}
