//! Who is calling the catalog API, and what they may do. Callers present a static token from
//! `server.api_tokens` (the platform's automation), or a token their Backstage backend issued: a
//! user's, or a plugin's (on its own behalf or a user's). Backstage tokens are verified against
//! the keys the backend publishes. With `server.backstage.permissions`, every user's request is
//! decided by the portal's permission policy, and a conditional read decision becomes a filter
//! in the store query.

mod jwks;
mod permissions;
mod signer;
mod tokens;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use subtle::ConstantTimeEq;

pub use permissions::{Decision, Permission};

use super::api_error::ApiError;
use crate::catalog::search::Filter;
use crate::config::{BackstageConfig, Secret};
use crate::store::Store;

/// A caller, once its token is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No credentials.
    Anonymous,
    /// A bearer token Rigger cannot verify (no Backstage backend is configured, and it is not
    /// one of `server.api_tokens`): reads treat it as no credentials, changes refuse it.
    Unverified,
    /// A static API token, or a Backstage plugin on its own behalf (`plugin:{id}`): trusted with
    /// everything, as Backstage trusts its service principals.
    Service(String),
    /// A Backstage user, calling directly or through a plugin (`via`), with the limited token
    /// that proves who they are (none from a user token without an identity proof).
    User { user_ref: String, limited_token: Option<String>, expires_at: u64, via: Option<String> },
}

pub struct Auth {
    tokens: Vec<Secret>,
    backstage: Option<Backstage>,
}

struct Backstage {
    config: BackstageConfig,
    keys: jwks::KeySets,
    /// Set when the portal's permission policy decides (`permissions: true`).
    permissions: Option<(signer::Signer, permissions::PermissionBackend)>,
}

impl Auth {
    /// Static tokens only.
    pub fn with_tokens(tokens: Vec<Secret>) -> Self {
        Self { tokens, backstage: None }
    }

    /// Static tokens and a Backstage backend; with permissions on, a signing key is made, to be
    /// published in the store.
    pub fn new(tokens: Vec<Secret>, backstage: Option<&BackstageConfig>, store: &Store) -> Result<Self, String> {
        let Some(config) = backstage else { return Ok(Self::with_tokens(tokens)) };
        // Only the configured backend is called: never followed elsewhere by a redirect.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        let permissions = if config.permissions {
            let signer = signer::Signer::new(&config.plugin_id, store.clone())?;
            let backend = permissions::PermissionBackend { url: config.plugin_url("permission"), http: http.clone() };
            Some((signer, backend))
        } else {
            None
        };
        let keys = jwks::KeySets::new(http);
        Ok(Self { tokens, backstage: Some(Backstage { config: config.clone(), keys, permissions }) })
    }

    /// The caller of a request; a Backstage token that fails verification is Backstage's `401`.
    pub(in crate::serve) async fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let token = match bearer(headers) {
            Presented::Nothing => return Ok(Caller::Anonymous),
            Presented::Other => return Ok(Caller::Unverified),
            Presented::Bearer(token) => token,
        };
        if self.is_static(token) {
            return Ok(Caller::Service("api token".to_owned()));
        }
        let Some(backstage) = self.backstage.as_ref().filter(|_| tokens::is_jwt(token)) else {
            return Ok(Caller::Unverified);
        };
        match tokens::verify(token, &backstage.config, &backstage.keys).await {
            Ok(tokens::Verified::Plugin(plugin)) => Ok(Caller::Service(plugin)),
            Ok(tokens::Verified::User { user_ref, limited_token, expires_at, via }) => {
                Ok(Caller::User { user_ref, limited_token, expires_at, via })
            }
            Err(refused) => {
                tracing::info!(reason = %refused.detail, "a Backstage token was refused");
                Err(ApiError::unauthenticated(refused.message))
            }
        }
    }

    /// A caller that may change state: anyone verified, nobody anonymous.
    pub(in crate::serve) async fn verified_caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let refuse = ApiError::unauthenticated;
        if self.tokens.iter().all(|t| t.expose().trim().is_empty()) && self.backstage.is_none() {
            return Err(refuse(
                "This agent takes no changes through its API: neither server.api_tokens nor server.backstage is configured",
            ));
        }
        match self.caller(headers).await? {
            Caller::Anonymous => Err(refuse("Missing credentials: send Authorization: Bearer <token>")),
            Caller::Unverified => Err(refuse("Invalid token")),
            caller => Ok(caller),
        }
    }

    /// What `caller` may do about `permission`. Without a permission policy everyone may read
    /// and every verified caller may change; with one, each user's request is the policy's to
    /// decide and a request without credentials is refused, as Backstage's default policy does.
    pub(in crate::serve) async fn decide(&self, caller: &Caller, permission: Permission) -> Result<Decision, ApiError> {
        let policy = self.backstage.as_ref().and_then(|b| b.permissions.as_ref());
        match (caller, policy) {
            (Caller::Service(_), _) | (_, None) => Ok(Decision::Allow),
            (Caller::Anonymous | Caller::Unverified, Some(_)) => Err(ApiError::unauthenticated(
                "Missing credentials: this catalog enforces the portal's permissions; send a Backstage token",
            )),
            (Caller::User { limited_token: None, .. }, Some(_)) => Err(ApiError::unauthenticated(
                "This user token carries no identity proof (uip), so the portal's permissions cannot be asked about it",
            )),
            (Caller::User { user_ref, limited_token: Some(limited_token), expires_at, .. }, Some((signer, backend))) => {
                backend.decide(signer, permission, limited_token, *expires_at).await.map_err(|detail| {
                    tracing::warn!(user = %user_ref, permission = permission.name(), error = %detail, "the permission backend could not decide");
                    ApiError::permission_unavailable()
                })
            }
        }
    }

    /// Whether the portal's permission policy decides (`server.backstage.permissions`).
    pub(in crate::serve) fn enforces_permissions(&self) -> bool {
        self.backstage.as_ref().is_some_and(|b| b.permissions.is_some())
    }

    /// `GET /api/{plugin}/.backstage/auth/v1/jwks.json`'s path, when Rigger signs tokens.
    pub fn key_set_path(&self) -> Option<String> {
        let backstage = self.backstage.as_ref().filter(|b| b.permissions.is_some())?;
        Some(format!("/api/{}/.backstage/auth/v1/jwks.json", backstage.config.plugin_id))
    }

    fn is_static(&self, presented: &str) -> bool {
        // An empty secret (a variable set to nothing) must not let an empty bearer in.
        !presented.is_empty()
            && self
                .tokens
                .iter()
                .map(|t| t.expose().trim())
                .filter(|t| !t.is_empty())
                .any(|t| bool::from(t.as_bytes().ct_eq(presented.as_bytes())))
    }
}

/// What a request's `Authorization` header holds.
enum Presented<'a> {
    Nothing,
    Bearer(&'a str),
    /// Another scheme, such as a proxy's basic credentials: nothing Rigger can verify.
    Other,
}

fn bearer(headers: &HeaderMap) -> Presented<'_> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Presented::Nothing };
    value
        .to_str()
        .ok()
        .and_then(|value| value.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")))
        .map_or(Presented::Other, |(_, token)| Presented::Bearer(token.trim()))
}

/// The entities a request's caller may read, as a filter (everything without a permission
/// policy): an extractor for every handler that reads entities.
pub struct Readable(pub Filter);

impl FromRequestParts<super::State> for Readable {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &super::State) -> Result<Self, Response> {
        let decided = async {
            let caller = state.auth.caller(&parts.headers).await?;
            state.auth.decide(&caller, Permission::EntityRead).await
        };
        decided.await.map(|d| Self(d.filter())).map_err(|e| e.into_response(&parts.method, &parts.uri))
    }
}

/// Refuses a request unless its caller may do `permission` (a basic permission: allowed or
/// not), in Backstage's shape (`401` without credentials, `403` when the policy says no).
pub(super) async fn require(state: &super::State, headers: &HeaderMap, permission: Permission) -> Result<(), ApiError> {
    let caller = state.auth.caller(headers).await?;
    match state.auth.decide(&caller, permission).await? {
        Decision::Allow => Ok(()),
        Decision::Deny | Decision::Conditional(_) => Err(ApiError::denied(permission.name())),
    }
}

/// Rigger's own endpoints (`/api/rigger/…`: sync status, file errors, template sources) name
/// entities and files outside the catalog's permissions: where the portal's policy decides, only
/// the platform's tokens and plugins on their own behalf may read them.
pub async fn operators_only(
    axum::extract::State(state): axum::extract::State<super::State>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !state.auth.enforces_permissions() {
        return next.run(request).await;
    }
    let (method, uri) = (request.method().clone(), request.uri().clone());
    match state.auth.verified_caller(request.headers()).await {
        Ok(Caller::Service(_)) => next.run(request).await,
        Ok(_) => ApiError::not_allowed("Rigger's own endpoints are for the platform's tokens and plugins, not users")
            .into_response(&method, &uri),
        Err(refused) => refused.into_response(&method, &uri),
    }
}

/// `GET /api/{plugin}/.backstage/auth/v1/jwks.json`: the public keys of the tokens Rigger signs.
pub async fn key_set(
    axum::extract::State(state): axum::extract::State<super::State>,
    uri: axum::http::Uri,
) -> Response {
    use axum::response::IntoResponse;
    match signer::key_set(&state.store).await {
        Ok(keys) => axum::Json(keys).into_response(),
        Err(err) => ApiError::unavailable(err).into_response(&axum::http::Method::GET, &uri),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer_of(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
        headers
    }

    #[tokio::test]
    async fn only_a_configured_non_empty_token_is_let_in() {
        let auth = Auth::with_tokens(vec![Secret::from_config("s3cret"), Secret::from_config(String::new())]);
        assert!(matches!(auth.verified_caller(&bearer_of("s3cret")).await, Ok(Caller::Service(_))));
        assert!(auth.verified_caller(&bearer_of("guess")).await.is_err());
        assert!(auth.verified_caller(&bearer_of("")).await.is_err(), "an empty secret lets no empty bearer in");
        assert!(auth.verified_caller(&HeaderMap::new()).await.is_err());
        let nobody = Auth::with_tokens(Vec::new());
        assert!(nobody.verified_caller(&bearer_of("s3cret")).await.is_err(), "no tokens configured: nobody");
    }

    #[tokio::test]
    async fn reads_without_a_policy_ignore_credentials_rigger_cannot_check() {
        let auth = Auth::with_tokens(vec![Secret::from_config("s3cret")]);
        let mut basic = HeaderMap::new();
        basic.insert(header::AUTHORIZATION, "Basic dXNlcjpwYXNz".parse().unwrap());
        for headers in [bearer_of("a.portal.token"), basic] {
            let caller = auth.caller(&headers).await.unwrap();
            assert_eq!(caller, Caller::Unverified);
            assert_eq!(auth.decide(&caller, Permission::EntityRead).await.ok(), Some(Decision::Allow));
            assert!(auth.verified_caller(&headers).await.is_err(), "but they change nothing");
        }
    }
}
