//! Secrets are never written inline: the config names an environment variable or a file, and the
//! value is read only when it is needed. The resolved value never prints itself.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// Where a secret lives: `{ env: NAME }` or `{ file: PATH }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    Env(String),
    File(PathBuf),
    /// A credential Rigger obtained at run time (a GitHub App installation token for cloning);
    /// never written in a config file.
    Issued(Secret),
}

/// The mapping as written; exactly one key must be present.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecretRef {
    env: Option<String>,
    file: Option<PathBuf>,
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecretRefVisitor)
    }
}

/// Reads the `{ env }` / `{ file }` mapping. Anything else is refused without repeating it: a
/// token written inline is exactly what an error message must not print back.
struct SecretRefVisitor;

const SECRET_FORM: &str = "expected { env: NAME } or { file: PATH }; secret values are never written inline";

impl<'de> serde::de::Visitor<'de> for SecretRefVisitor {
    type Value = SecretRef;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SECRET_FORM)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<SecretRef, A::Error> {
        let raw = RawSecretRef::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        SecretRef::try_from(raw).map_err(serde::de::Error::custom)
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<SecretRef, E> {
        Err(E::custom(format!("an inline value is not allowed here; {SECRET_FORM}")))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<SecretRef, E> {
        self.visit_str("")
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<SecretRef, E> {
        self.visit_str("")
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<SecretRef, E> {
        self.visit_str("")
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<SecretRef, E> {
        self.visit_str("")
    }

    fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<SecretRef, E> {
        self.visit_str("")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<SecretRef, A::Error> {
        Err(serde::de::Error::custom(SECRET_FORM))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<SecretRef, E> {
        Err(E::custom(SECRET_FORM))
    }
}

impl TryFrom<RawSecretRef> for SecretRef {
    type Error = String;

    fn try_from(raw: RawSecretRef) -> Result<Self, Self::Error> {
        match (raw.env, raw.file) {
            (Some(name), None) if !name.is_empty() => Ok(Self::Env(name)),
            (None, Some(path)) => Ok(Self::File(path)),
            _ => Err("expected exactly one of { env: NAME } or { file: PATH }".to_owned()),
        }
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => write!(f, "env:{name}"),
            Self::File(path) => write!(f, "file:{}", path.display()),
            Self::Issued(_) => f.write_str("issued token"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {0} is not set")]
    MissingEnv(String),
    #[error("cannot read secret file {path}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("secret {0} is empty")]
    Empty(SecretRef),
}

impl SecretRef {
    /// Reads the secret. Trailing newlines of secret files are dropped, as Kubernetes secret mounts
    /// and `echo` both add them.
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        let value = match self {
            Self::Env(name) => std::env::var(name).map_err(|_| SecretError::MissingEnv(name.clone()))?,
            Self::File(path) => std::fs::read_to_string(path)
                .map_err(|source| SecretError::ReadFile { path: path.clone(), source })?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
            Self::Issued(secret) => return Ok(secret.clone()),
        };
        if value.is_empty() {
            return Err(SecretError::Empty(self.clone()));
        }
        Ok(Secret(value))
    }
}

/// A resolved secret value. `Debug` and `Display` redact it so it cannot leak through logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value the config held inline (e.g. a password-less database URL), or one a
    /// caller obtained elsewhere.
    pub fn from_config(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_refs_parse_from_mappings_only() {
        let env: SecretRef = serde_yaml::from_str("{ env: TOKEN }").unwrap();
        assert_eq!(env, SecretRef::Env("TOKEN".into()));
        let file: SecretRef = serde_yaml::from_str("file: /run/secrets/token").unwrap();
        assert_eq!(file, SecretRef::File("/run/secrets/token".into()));
        assert!(serde_yaml::from_str::<SecretRef>("hunter2").is_err(), "inline literals are refused");
        assert!(serde_yaml::from_str::<SecretRef>("{ env: A, file: b }").is_err());
    }

    #[test]
    fn an_inline_secret_is_refused_without_being_repeated() {
        for text in [
            "ghp_abcdef0123456789",
            "\"ghp_abcdef0123456789\"",
            "[ghp_abcdef0123456789]",
            "{ env: X, value: ghp_abcdef0123456789 }",
        ] {
            let err = serde_yaml::from_str::<SecretRef>(text).unwrap_err().to_string();
            assert!(!err.contains("ghp_"), "{text}: {err}");
        }
    }

    #[test]
    fn secret_debug_output_is_redacted() {
        let secret = Secret("hunter2".into());
        assert!(!format!("{secret:?}").contains("hunter2"));
    }

    #[test]
    fn missing_env_secret_names_the_variable() {
        let err = SecretRef::Env("RIGGER_TEST_SURELY_UNSET".into()).resolve().unwrap_err();
        assert_eq!(err.to_string(), "environment variable RIGGER_TEST_SURELY_UNSET is not set");
    }

    #[test]
    fn file_secret_drops_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "abc\n").unwrap();
        assert_eq!(SecretRef::File(path).resolve().unwrap().expose(), "abc");
    }
}
