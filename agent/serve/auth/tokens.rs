//! Backstage's tokens, verified as its own backend verifies them: a plugin token (`typ`
//! `vnd.backstage.plugin`) against the calling plugin's published keys, with Rigger's plugin id
//! as its audience; a user token (`vnd.backstage.user`, or the limited form a plugin forwards in
//! `obo`) against the auth plugin's keys.

use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::Deserialize;

use super::jwks::KeySets;
use crate::config::BackstageConfig;

pub const PLUGIN_TYP: &str = "vnd.backstage.plugin";
pub const USER_TYP: &str = "vnd.backstage.user";
pub const LIMITED_USER_TYP: &str = "vnd.backstage.limited-user";

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// A plugin on its own behalf (`plugin:{id}`).
    Plugin(String),
    /// A user (`user:default/jane`), with the limited user token that proves it (what Rigger
    /// forwards when it asks the permission backend on the user's behalf; `None` for a user
    /// token without an identity proof), and the plugin the call came through, if any.
    User { user_ref: String, limited_token: Option<String>, expires_at: u64, via: Option<String> },
}

/// Why a token was refused: the client's message, and the detail for the log.
#[derive(Debug)]
pub struct Refused {
    pub message: &'static str,
    pub detail: String,
}

fn refused(message: &'static str, detail: impl Into<String>) -> Refused {
    Refused { message, detail: detail.into() }
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    exp: u64,
    #[serde(default)]
    iat: u64,
    /// A user token's identity proof: the signature of its limited form.
    #[serde(default)]
    uip: Option<String>,
    /// A plugin token's user, as a limited user token.
    #[serde(default)]
    obo: Option<String>,
}

/// Whether `token` looks like a JWT at all (three dot-separated parts and a readable header):
/// anything else is checked against the static tokens only.
pub fn is_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && jsonwebtoken::decode_header(token).is_ok()
}

pub async fn verify(token: &str, backstage: &BackstageConfig, keys: &KeySets) -> Result<Verified, Refused> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| refused("Invalid token", e.to_string()))?;
    match header.typ.as_deref() {
        Some(PLUGIN_TYP) => plugin(token, &header, backstage, keys).await,
        Some(USER_TYP) => user(token, &header, backstage, keys).await,
        // Only ever valid inside a plugin token's `obo`, as Backstage rules.
        Some(LIMITED_USER_TYP) => Err(refused("Illegal limited user token", "a limited user token sent on its own")),
        other => Err(refused("Invalid token", format!("a token of type {other:?}, neither a user's nor a plugin's"))),
    }
}

async fn plugin(
    token: &str,
    header: &Header,
    backstage: &BackstageConfig,
    keys: &KeySets,
) -> Result<Verified, Refused> {
    // The subject names whose keys to check against, so it is read before the signature is.
    let unverified: Claims = jsonwebtoken::dangerous::insecure_decode(token)
        .map_err(|e| refused("Invalid plugin token", e.to_string()))?
        .claims;
    let plugin = unverified.sub;
    if plugin.is_empty() || !plugin.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(refused("Invalid plugin token: forbidden subject format", format!("subject {plugin:?}")));
    }
    let url = format!("{}/.backstage/auth/v1/jwks.json", backstage.plugin_url(&plugin));
    let mut validation = validation(header)?;
    validation.set_audience(&[&backstage.plugin_id]);
    validation.set_required_spec_claims(&["exp", "sub", "aud"]);
    let claims = checked(token, header, &url, &validation, keys, "Failed plugin token verification").await?;
    if claims.iat == 0 {
        return Err(refused("Failed plugin token verification", "no iat"));
    }
    let Some(limited) = claims.obo else { return Ok(Verified::Plugin(format!("plugin:{plugin}"))) };
    let obo_refused = |detail: String| refused("Invalid user token in plugin token obo claim", detail);
    let limited_header = jsonwebtoken::decode_header(&limited).map_err(|e| obo_refused(e.to_string()))?;
    if limited_header.typ.as_deref() != Some(LIMITED_USER_TYP) {
        return Err(obo_refused(format!("a token of type {:?}", limited_header.typ)));
    }
    match user(&limited, &limited_header, backstage, keys).await {
        Ok(Verified::User { user_ref, limited_token, expires_at, .. }) => {
            Ok(Verified::User { user_ref, limited_token, expires_at, via: Some(plugin) })
        }
        Ok(Verified::Plugin(_)) => Err(obo_refused("not a user".to_owned())),
        Err(e) => Err(obo_refused(e.detail)),
    }
}

async fn user(token: &str, header: &Header, backstage: &BackstageConfig, keys: &KeySets) -> Result<Verified, Refused> {
    let url = format!("{}/.well-known/jwks.json", backstage.plugin_url("auth"));
    let mut validation = validation(header)?;
    // Backstage checks a user token's type, not its audience.
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "sub"]);
    let claims = checked(token, header, &url, &validation, keys, "Failed user token verification").await?;
    if claims.iat == 0 || claims.sub.is_empty() {
        return Err(refused("Failed user token verification", "no iat or sub"));
    }
    let limited_token = match header.typ.as_deref() {
        Some(LIMITED_USER_TYP) => Some(token.to_owned()),
        _ => limited_form(header, &claims),
    };
    Ok(Verified::User { user_ref: claims.sub, limited_token, expires_at: claims.exp, via: None })
}

/// A full user token's limited form, as Backstage builds it for `obo`: the same key, a header
/// and payload of its own, and the identity proof (`uip`) as its signature.
fn limited_form(header: &Header, claims: &Claims) -> Option<String> {
    use base64::Engine;
    let uip = claims.uip.as_deref()?;
    // The signature covers these exact bytes: keys in Backstage's order, as `JSON.stringify`
    // writes them.
    let head = format!(
        r#"{{"typ":{},"alg":{},"kid":{}}}"#,
        json(&LIMITED_USER_TYP),
        json(&header.alg),
        json(&header.kid.clone().unwrap_or_default())
    );
    let body = format!(r#"{{"sub":{},"iat":{},"exp":{}}}"#, json(&claims.sub), claims.iat, claims.exp);
    let encode = |text: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
    Some(format!("{}.{}.{uip}", encode(head), encode(body)))
}

/// Signatures Backstage's keys make; never `none` or a shared secret.
fn validation(header: &Header) -> Result<Validation, Refused> {
    match header.alg {
        Algorithm::ES256
        | Algorithm::ES384
        | Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512
        | Algorithm::EdDSA => {
            let mut validation = Validation::new(header.alg);
            // No grace past `exp`, as Backstage's verifier allows none.
            validation.leeway = 0;
            Ok(validation)
        }
        other => Err(refused("Invalid token", format!("signature algorithm {other:?} is not taken"))),
    }
}

async fn checked(
    token: &str,
    header: &Header,
    url: &str,
    validation: &Validation,
    keys: &KeySets,
    message: &'static str,
) -> Result<Claims, Refused> {
    let kid = header.kid.as_deref().ok_or_else(|| refused(message, "no key id (kid)"))?;
    let jwk = keys.key(url, kid).await.map_err(|e| refused(message, e))?;
    // A key published for one algorithm signs with no other.
    if jwk.common.key_algorithm.is_some_and(|alg| format!("{alg:?}") != format!("{:?}", header.alg)) {
        return Err(refused(message, format!("key {kid} is not for {:?}", header.alg)));
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| refused(message, format!("key {kid} from {url}: {e}")))?;
    jsonwebtoken::decode::<Claims>(token, &key, validation)
        .map(|data| data.claims)
        .map_err(|e| refused(message, e.to_string()))
}

/// A value as JSON text.
fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
