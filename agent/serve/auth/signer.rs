//! Rigger's own signing key, for the tokens it sends a Backstage permission backend: a plugin
//! token from Rigger's plugin id to `permission`, on behalf of the caller (`obo`), exactly as
//! Backstage's catalog would send. The backend verifies it against the keys Rigger publishes at
//! `/api/{plugin}/.backstage/auth/v1/jwks.json`, which every replica serves from the store.

use std::sync::Mutex;
use std::time::Duration;

use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::store::{now_millis, Store, StoreError};

/// Longest a token Rigger signs is valid (Backstage's own plugin tokens last an hour).
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// A published key stays listed this long after its last renewal: past the life of any token
/// signed before the next renewal.
const PUBLICATION: Duration = Duration::from_secs(3 * 3600);
/// How often a key in use is renewed in the store: often, so that a replica whose clock runs
/// ahead (and so forgets others' keys early) costs little.
const RENEWAL: Duration = Duration::from_secs(600);

pub struct Signer {
    plugin_id: String,
    kid: String,
    key: EncodingKey,
    jwk: String,
    store: Store,
    /// When the key was last published (milliseconds since the epoch).
    published_at: Mutex<i64>,
}

impl Signer {
    /// A fresh key pair for this process, published in the store with the first token it signs
    /// (the store may not be migrated yet at start-up).
    pub fn new(plugin_id: &str, store: Store) -> Result<Self, String> {
        let pkcs8 = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .and_then(|pair| pair.to_pkcs8v1())
            .map_err(|e| format!("cannot generate a signing key: {e}"))?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .map_err(|e| format!("cannot read the signing key: {e}"))?;
        let kid = uuid::Uuid::new_v4().to_string();
        let jwk = public_jwk(&kid, pair.public_key().as_ref())?.to_string();
        Ok(Self {
            plugin_id: plugin_id.to_owned(),
            kid,
            key: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk,
            store,
            published_at: Mutex::new(0),
        })
    }

    /// Publishes the key now (also when the permission backend did not know it).
    pub async fn publish(&self) -> Result<(), StoreError> {
        let now = now_millis();
        let until = now.saturating_add(i64::try_from(PUBLICATION.as_millis()).unwrap_or(i64::MAX));
        self.store.publish_signing_key(&self.kid, &self.jwk, until).await?;
        *self.published_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = now;
        Ok(())
    }

    /// A token to `target` on behalf of a user (their limited token, valid until `expires_at`
    /// in seconds since the epoch).
    pub async fn token(&self, target: &str, on_behalf_of: &str, expires_at: u64) -> Result<String, String> {
        let published = *self.published_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if now_millis().saturating_sub(published) > i64::try_from(RENEWAL.as_millis()).unwrap_or(i64::MAX) {
            self.publish().await.map_err(|e| format!("cannot publish the signing key: {e}"))?;
        }
        let iat = u64::try_from(now_millis() / 1000).unwrap_or_default();
        let exp = (iat + TOKEN_LIFETIME.as_secs()).min(expires_at);
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some(super::tokens::PLUGIN_TYP.to_owned());
        header.kid = Some(self.kid.clone());
        let claims = json!({"sub": self.plugin_id, "aud": target, "iat": iat, "exp": exp, "obo": on_behalf_of});
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| format!("cannot sign a token: {e}"))
    }
}

/// A P-256 public key (SEC 1 uncompressed point: `04 ‖ x ‖ y`) as a JSON Web Key.
fn public_jwk(kid: &str, point: &[u8]) -> Result<Value, String> {
    let (x, y) = match point {
        [4, rest @ ..] if rest.len() == 64 => rest.split_at(32),
        _ => return Err("unexpected public key encoding".to_owned()),
    };
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    Ok(json!({"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y), "kid": kid, "alg": "ES256", "use": "sig"}))
}

/// `{keys: […]}` of every replica's published keys.
pub async fn key_set(store: &Store) -> Result<Value, StoreError> {
    let keys: Vec<Value> =
        store.signing_keys().await?.iter().filter_map(|jwk| serde_json::from_str(jwk).ok()).collect();
    Ok(json!({ "keys": keys }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_signed_token_verifies_against_the_published_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}/rigger.db?mode=rwc", dir.path().display())).await.unwrap();
        store.migrate().await.unwrap();
        let signer = Signer::new("catalog", store.clone()).unwrap();
        let token = signer.token("permission", "limited.user.token", u64::MAX).await.unwrap();
        let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(key_set(&store).await.unwrap()).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("vnd.backstage.plugin"));
        let jwk = set.find(header.kid.as_deref().unwrap()).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::ES256);
        validation.set_audience(&["permission"]);
        let claims: Value =
            jsonwebtoken::decode(&token, &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(), &validation)
                .unwrap()
                .claims;
        assert_eq!((claims["sub"].as_str(), claims["obo"].as_str()), (Some("catalog"), Some("limited.user.token")));
    }
}
