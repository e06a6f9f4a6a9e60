//! Backstage's placeholders — `$text`, `$json`, `$yaml` — resolved against files of the same
//! repository at the same commit. Stricter than Backstage about leaving the repository: `..`
//! escapes, absolute paths, links out and other hosts are refused; reads are size-bounded.

use serde_json::{Map, Value};

use super::location::normalise;
use super::parse;
use crate::source::FileTree;

/// Where placeholder targets may be read from.
pub enum Reads<'a> {
    /// Read files of the snapshot, up to `max_bytes` each, and remote URLs on allowed hosts;
    /// `budget` is what all placeholders of one catalog file may still read together.
    Files { tree: &'a dyn FileTree, max_bytes: usize, remote: Option<Remote<'a>>, budget: &'a Budget },
    /// Check the form only; substitute a stand-in (`rigger validate --no-follow`).
    FormOnly,
}

/// Bytes the placeholders of one catalog file may read in all: each target is bounded by
/// `catalog.max_file_bytes`, and so are their sum (times [`Budget::FACTOR`]), so a file of many
/// placeholders cannot multiply memory.
#[derive(Debug)]
pub struct Budget(std::cell::Cell<usize>);

impl Budget {
    pub const FACTOR: usize = 4;

    pub fn for_file(max_file_bytes: usize) -> Self {
        Self(std::cell::Cell::new(max_file_bytes.saturating_mul(Self::FACTOR)))
    }

    fn spend(&self, bytes: usize, kind: &str, target: &str) -> Result<(), String> {
        let left = self.0.get();
        if bytes > left {
            return Err(format!(
                "Placeholder {kind} target {target} would take this file's placeholders past {} times catalog.max_file_bytes in all",
                Self::FACTOR
            ));
        }
        self.0.set(left - bytes);
        Ok(())
    }
}

/// Reads a remote placeholder target: I/O, so it lives with the sources; the catalog only
/// decides whether a URL may be read at all.
pub use crate::source::remote::RemoteReader;

/// What placeholders may do with `http(s)` URLs (without one, URLs are refused).
#[derive(Clone, Copy)]
pub enum Remote<'a> {
    /// Read URLs on the hosts `catalog.placeholder_hosts` allows.
    Read { allowed_hosts: &'a [String], reader: &'a dyn RemoteReader },
    /// Accept any http(s) URL without reading it (`rigger validate`, which has no config).
    FormOnly,
}

/// A placeholder target: a file of the snapshot, or an allowed remote URL.
enum Source {
    Path(String),
    Url(url::Url),
}

const RESOLVERS: [&str; 3] = ["$text", "$json", "$yaml"];

/// Replaces every placeholder object in `value`. `file` is the repository path of the catalog
/// file the entity came from; relative targets resolve against its folder. Resolved content is
/// not scanned again, as in Backstage.
pub fn resolve(value: &mut Value, file: &str, reads: &Reads<'_>) -> Result<(), String> {
    match value {
        Value::Object(map) => {
            if let Some((kind, target)) = placeholder(map) {
                *value = substitute(kind, &target, file, reads)?;
                return Ok(());
            }
            map.values_mut().try_for_each(|child| resolve(child, file, reads))
        }
        Value::Array(items) => items.iter_mut().try_for_each(|child| resolve(child, file, reads)),
        _ => Ok(()),
    }
}

/// An object with exactly one key, which names a known resolver. Other `$` keys are left alone.
fn placeholder(map: &Map<String, Value>) -> Option<(&'static str, Value)> {
    if map.len() != 1 {
        return None;
    }
    let (key, target) = map.iter().next()?;
    RESOLVERS.iter().find(|r| **r == key).map(|r| (*r, target.clone()))
}

fn substitute(kind: &str, target: &Value, file: &str, reads: &Reads<'_>) -> Result<Value, String> {
    let Value::String(target) = target else {
        return Err(format!("Placeholder {kind} expected a string value, got {}", short_type(target)));
    };
    let remote_policy = match reads {
        Reads::Files { remote, .. } => *remote,
        Reads::FormOnly => None,
    };
    let source = locate(kind, target, file, remote_policy)?;
    let (tree, max_bytes, remote, budget) = match reads {
        Reads::FormOnly => return Ok(stand_in(kind, target)),
        Reads::Files { tree, max_bytes, remote, budget } => (*tree, *max_bytes, *remote, *budget),
    };
    let bytes = match (source, remote) {
        (Source::Path(path), _) => tree
            .read(&path, max_bytes)
            .map_err(|e| format!("Placeholder {kind} could not read {target}: {e}"))?
            .ok_or_else(|| format!("Placeholder {kind} could not read {target}: {path} not found in the repository"))?,
        (Source::Url(_), Some(Remote::FormOnly)) => return Ok(stand_in(kind, target)),
        (Source::Url(url), Some(Remote::Read { reader, .. })) => {
            reader.read(&url, max_bytes).map_err(|e| format!("Placeholder {kind} could not read {target}: {e}"))?
        }
        (Source::Url(_), None) => {
            return Err(format!("Placeholder {kind} target {target} is remote and remote reads are off"))
        }
    };
    if bytes.len() > max_bytes {
        return Err(format!(
            "Placeholder {kind} target {target} is {} bytes, larger than the limit of {max_bytes}",
            bytes.len()
        ));
    }
    budget.spend(bytes.len(), kind, target)?;
    let text =
        String::from_utf8(bytes).map_err(|_| format!("Placeholder {kind} target {target} is not valid UTF-8"))?;
    match kind {
        "$text" => Ok(Value::String(text)),
        "$json" => serde_json::from_str(&text)
            .map_err(|e| format!("Placeholder $json failed to parse JSON data at {target}: {e}")),
        _ => one_yaml_document(&text, target),
    }
}

/// An allowed-host entry: `host` allows the scheme's default port only, `host:port` that port:
/// a host's other ports are other services, not the documentation site that was allowed.
fn host_allows(entry: &str, url: &url::Url, host: &str) -> bool {
    match entry.rsplit_once(':').map(|(name, port)| (name, port.parse::<u16>())) {
        Some((name, Ok(port))) => name.eq_ignore_ascii_case(host) && url.port_or_known_default() == Some(port),
        // The url crate leaves out a port that is the scheme's default.
        _ => entry.eq_ignore_ascii_case(host) && url.port().is_none(),
    }
}

/// Where the target is, or why it is refused: a relative path inside the repository, or an
/// http(s) URL on an allowed host.
fn locate(kind: &str, target: &str, file: &str, remote: Option<Remote<'_>>) -> Result<Source, String> {
    if target.contains("://") || target.starts_with("url:") {
        let url = url::Url::parse(target.trim_start_matches("url:")).ok();
        let host = url.as_ref().filter(|u| matches!(u.scheme(), "http" | "https")).and_then(url::Url::host_str);
        if let (Some(url), Some(host)) = (&url, host) {
            let allowed = match remote {
                Some(Remote::FormOnly) => true,
                Some(Remote::Read { allowed_hosts, .. }) => allowed_hosts.iter().any(|a| host_allows(a, url, host)),
                None => false,
            };
            if allowed {
                return Ok(Source::Url(url.clone()));
            }
        }
        return Err(format!(
            "Placeholder {kind} target {target} points outside this repository; only relative paths and hosts listed in catalog.placeholder_hosts are read"
        ));
    }
    if target.starts_with('/') {
        return Err(format!(
            "Placeholder {kind} target {target} is an absolute path; targets must be relative to {file}"
        ));
    }
    let dir = file.rsplit_once('/').map_or("", |(dir, _)| dir);
    normalise(&format!("{dir}/{target}"))
        .map(Source::Path)
        .ok_or_else(|| format!("Placeholder {kind} target {target} escapes the repository"))
}

fn one_yaml_document(text: &str, target: &str) -> Result<Value, String> {
    let mut docs = parse::documents(text).into_iter();
    match (docs.next(), docs.next()) {
        (Some(doc), None) => {
            doc.parsed.map_err(|e| format!("Placeholder $yaml failed to parse YAML data at {target}: {e}"))
        }
        (None, _) => Err(format!("Placeholder $yaml found no YAML document at {target}")),
        (Some(_), Some(_)) => {
            Err(format!("Placeholder $yaml found multiple YAML documents at {target}; expected exactly one"))
        }
    }
}

/// What `--no-follow` puts in place of an unread target, so the entity can still be validated.
fn stand_in(kind: &str, target: &str) -> Value {
    match kind {
        "$text" => Value::String(format!("<{kind} {target}>")),
        _ => Value::Object(Map::new()),
    }
}

fn short_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::MemoryTree;
    use serde_json::json;

    fn tree() -> MemoryTree {
        MemoryTree::default()
            .with("apis/openapi.yaml", "openapi: 3.0.0\n")
            .with("apis/data.json", "{\"a\": [1, 2]}")
            .with("apis/two.yaml", "a: 1\n---\nb: 2\n")
            .with("big.txt", &"x".repeat(100))
    }

    fn run(value: Value, file: &str) -> Result<Value, String> {
        let tree = tree();
        let mut value = value;
        resolve(
            &mut value,
            file,
            &Reads::Files { tree: &tree, max_bytes: 64, remote: None, budget: &Budget::for_file(64) },
        )?;
        Ok(value)
    }

    #[test]
    fn text_json_and_yaml_resolve_relative_to_the_file() {
        let spec = json!({"definition": {"$text": "../apis/openapi.yaml"}, "data": {"$json": "../apis/data.json"},
                          "doc": {"$yaml": "../apis/openapi.yaml"}});
        let out = run(spec, "services/catalog-info.yaml").unwrap();
        assert_eq!(out["definition"], "openapi: 3.0.0\n");
        assert_eq!(out["data"], json!({"a": [1, 2]}));
        assert_eq!(out["doc"], json!({"openapi": "3.0.0"}));
    }

    #[test]
    fn leaving_the_repository_is_refused() {
        for target in ["../../../etc/passwd", "/etc/passwd", "https://evil.example/x"] {
            let err = run(json!({"$text": target}), "a/catalog-info.yaml").unwrap_err();
            assert!(err.starts_with("Placeholder $text target"), "{target}: {err}");
        }
    }

    #[test]
    fn yaml_must_hold_exactly_one_document_and_size_is_bounded() {
        assert!(run(json!({"$yaml": "apis/two.yaml"}), "c.yaml").unwrap_err().contains("multiple YAML documents"));
        assert!(run(json!({"$text": "big.txt"}), "c.yaml").unwrap_err().contains("larger than the limit of 64"));
        assert!(run(json!({"$text": "missing.txt"}), "c.yaml").unwrap_err().contains("not found"));
    }

    #[test]
    fn other_objects_are_left_alone() {
        let spec = json!({"x": {"$text": "a", "other": 1}, "y": {"$unknown": "a"}});
        assert_eq!(run(spec.clone(), "c.yaml").unwrap(), spec);
    }

    struct Echo;

    impl RemoteReader for Echo {
        fn read(&self, url: &url::Url, _: usize) -> Result<Vec<u8>, String> {
            Ok(url.path().as_bytes().to_vec())
        }
    }

    #[test]
    fn remote_targets_only_on_allowed_hosts() {
        let tree = tree();
        let hosts = ["docs.example.com".to_owned()];
        let reads = Reads::Files {
            tree: &tree,
            max_bytes: 64,
            remote: Some(Remote::Read { allowed_hosts: &hosts, reader: &Echo }),
            budget: &Budget::for_file(64),
        };
        let mut ok = json!({"$text": "https://docs.example.com/api.yaml"});
        resolve(&mut ok, "c.yaml", &reads).unwrap();
        assert_eq!(ok, "/api.yaml");
        let mut refused = json!({"$text": "https://evil.example.com/api.yaml"});
        assert!(resolve(&mut refused, "c.yaml", &reads).unwrap_err().contains("catalog.placeholder_hosts"));
        let mut other_port = json!({"$text": "https://docs.example.com:8443/api.yaml"});
        assert!(resolve(&mut other_port, "c.yaml", &reads).is_err(), "another port is another service");
        let mut explicit_default = json!({"$text": "https://docs.example.com:443/api.yaml"});
        assert!(resolve(&mut explicit_default, "c.yaml", &reads).is_ok());
    }

    #[test]
    fn a_files_placeholders_share_one_budget() {
        let tree = MemoryTree::default().with("sixty.txt", &"x".repeat(60));
        let budget = Budget::for_file(64);
        let reads = Reads::Files { tree: &tree, max_bytes: 64, remote: None, budget: &budget };
        for _ in 0..Budget::FACTOR {
            resolve(&mut json!({"$text": "./sixty.txt"}), "c.yaml", &reads).unwrap();
        }
        let err = resolve(&mut json!({"$text": "./sixty.txt"}), "c.yaml", &reads).unwrap_err();
        assert!(err.contains("in all"), "{err}");
    }

    #[test]
    fn a_host_with_a_port_allows_that_port_only() {
        let tree = tree();
        let hosts = ["docs.example.com:8443".to_owned()];
        let reads = Reads::Files {
            tree: &tree,
            max_bytes: 64,
            remote: Some(Remote::Read { allowed_hosts: &hosts, reader: &Echo }),
            budget: &Budget::for_file(64),
        };
        let mut ok = json!({"$text": "https://docs.example.com:8443/api.yaml"});
        assert!(resolve(&mut ok, "c.yaml", &reads).is_ok());
        let mut default_port = json!({"$text": "https://docs.example.com/api.yaml"});
        assert!(resolve(&mut default_port, "c.yaml", &reads).is_err());
    }

    #[test]
    fn form_only_checks_without_reading() {
        let mut value = json!({"definition": {"$text": "./missing.yaml"}});
        resolve(&mut value, "c.yaml", &Reads::FormOnly).unwrap();
        assert_eq!(value["definition"], "<$text ./missing.yaml>");
        let mut bad = json!({"$json": "../../x"});
        assert!(resolve(&mut bad, "c.yaml", &Reads::FormOnly).is_err());
    }
}
