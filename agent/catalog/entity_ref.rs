//! Entity references: `[kind:][namespace/]name`, canonically `kind:namespace/name` in lower case.

use std::fmt;

/// The namespace an entity lands in when it names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// A canonical entity reference. All three parts are lower-cased, because Backstage treats names
/// as case-insensitive and uses the lower-cased string as the key everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl EntityRef {
    pub fn new(kind: &str, namespace: &str, name: &str) -> Self {
        Self { kind: kind.to_lowercase(), namespace: namespace.to_lowercase(), name: name.to_lowercase() }
    }

    /// Parses `[kind:][namespace/]name` with Backstage's rules: the first `:` separates the kind
    /// only when it comes before the first `/`; empty parts are errors.
    pub fn parse(text: &str, default_kind: Option<&str>, default_namespace: &str) -> Result<Self, String> {
        let form_error = || format!("Entity reference \"{text}\" was not on the form [<kind>:][<namespace>/]<name>");
        let colon = text.find(':');
        let slash = text.find('/');
        let (kind, rest) = match (colon, slash) {
            (Some(c), Some(s)) if s < c => (None, text),
            (Some(c), _) => (Some(&text[..c]), &text[c + 1..]),
            (None, _) => (None, text),
        };
        let (namespace, name) = match rest.find('/') {
            Some(s) => (Some(&rest[..s]), &rest[s + 1..]),
            None => (None, rest),
        };
        if kind == Some("") || namespace == Some("") || name.is_empty() {
            return Err(form_error());
        }
        let kind = kind
            .or(default_kind)
            .ok_or_else(|| format!("Entity reference \"{text}\" had missing or empty kind (e.g. did not start with \"component:\" or similar)"))?;
        Ok(Self::new(kind, namespace.unwrap_or(default_namespace), name))
    }
}

impl EntityRef {
    /// The ref a document means, even when it fails validation: `kind` and `metadata.name` are
    /// non-empty strings (namespace `default` unless a non-empty string says otherwise). Lets an
    /// error land on the right entity.
    pub fn lenient(document: &serde_json::Value) -> Option<Self> {
        let kind = document.get("kind")?.as_str().filter(|k| !k.is_empty())?;
        let metadata = document.get("metadata")?;
        let name = metadata.get("name")?.as_str().filter(|n| !n.is_empty())?;
        let namespace = metadata.get("namespace").and_then(serde_json::Value::as_str).filter(|n| !n.is_empty());
        Some(Self::new(kind, namespace.unwrap_or(DEFAULT_NAMESPACE), name))
    }
}

impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.kind, self.namespace, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_is_lower_case() {
        assert_eq!(EntityRef::new("Component", "Default", "Foo").to_string(), "component:default/foo");
    }

    #[test]
    fn parse_applies_defaults() {
        let r = EntityRef::parse("team-a", Some("Group"), "ns").unwrap();
        assert_eq!(r.to_string(), "group:ns/team-a");
        let r = EntityRef::parse("user:other/Jane", Some("Group"), "ns").unwrap();
        assert_eq!(r.to_string(), "user:other/jane");
    }

    #[test]
    fn slash_before_colon_is_not_a_kind_separator() {
        let r = EntityRef::parse("ns/name:with-colon", Some("component"), "default").unwrap();
        assert_eq!((r.kind.as_str(), r.namespace.as_str(), r.name.as_str()), ("component", "ns", "name:with-colon"));
    }

    #[test]
    fn missing_kind_without_default_is_an_error() {
        assert!(EntityRef::parse("foo", None, "default").unwrap_err().contains("missing or empty kind"));
        assert!(EntityRef::parse("component:", None, "default").unwrap_err().contains("was not on the form"));
    }
}
