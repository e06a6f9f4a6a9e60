//! A stand-in Backstage backend: the auth plugin's and a `scaffolder` plugin's published keys,
//! tokens signed with them as Backstage signs its own, and a permission backend whose policy
//! lets a user read (and refresh) only what they own. The permission backend verifies Rigger's
//! token as Backstage's would: its signature against the keys Rigger publishes, its audience,
//! and the user's limited token in `obo` against the auth plugin's key.

use std::sync::{Arc, Mutex};

use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use serde_json::{json, Value};

/// An ES256 key pair with its public half as a JSON Web Key.
pub struct TestKey {
    pub kid: String,
    encoding: EncodingKey,
    pub jwk: Value,
}

impl TestKey {
    pub fn new(kid: &str) -> Self {
        let pkcs8 = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap().to_pkcs8v1().unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = &pair.public_key().as_ref()[1..];
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(&point[..32]), "y": b64(&point[32..]), "kid": kid, "alg": "ES256"});
        Self { kid: kid.to_owned(), encoding: EncodingKey::from_ec_der(pkcs8.as_ref()), jwk }
    }

    pub fn sign(&self, typ: &str, claims: &impl Serialize) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some(typ.to_owned());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// The limited form of a user token, field order as Backstage's auth backend writes it.
#[derive(Serialize)]
struct Limited<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
}

pub struct FakeBackstage {
    pub base: String,
    pub auth_key: TestKey,
    pub plugin_key: TestKey,
    /// Where Rigger publishes its keys: set once Rigger's address is known.
    pub rigger: Arc<Mutex<String>>,
    /// `(user, permission)` for each decision asked, once Rigger's token verified.
    pub asked: Arc<Mutex<Vec<(String, String)>>>,
}

#[derive(Clone)]
struct Policy {
    auth_jwk: Value,
    rigger: Arc<Mutex<String>>,
    asked: Arc<Mutex<Vec<(String, String)>>>,
}

impl FakeBackstage {
    pub async fn start() -> Self {
        let (auth_key, plugin_key) = (TestKey::new("auth-1"), TestKey::new("scaffolder-1"));
        let rigger = Arc::new(Mutex::new(String::new()));
        let asked = Arc::new(Mutex::new(Vec::new()));
        let policy = Policy { auth_jwk: auth_key.jwk.clone(), rigger: rigger.clone(), asked: asked.clone() };
        let (auth_set, plugin_set) = (json!({"keys": [auth_key.jwk]}), json!({"keys": [plugin_key.jwk]}));
        let app = Router::new()
            .route("/api/auth/.well-known/jwks.json", get(move || async move { Json(auth_set) }))
            .route("/api/scaffolder/.backstage/auth/v1/jwks.json", get(move || async move { Json(plugin_set) }))
            .route("/api/permission/authorize", post(authorize))
            .with_state(policy);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base, auth_key, plugin_key, rigger, asked }
    }

    /// A user token as Backstage's auth backend issues it, its identity proof included.
    pub fn user_token(&self, user: &str, ownership: &[&str]) -> String {
        let (iat, exp) = (now(), now() + 3600);
        let limited = self.auth_key.sign("vnd.backstage.limited-user", &Limited { sub: user, iat, exp });
        let uip = limited.rsplit('.').next().unwrap().to_owned();
        let claims = json!({"iss": format!("{}/api/auth", self.base), "sub": user, "ent": ownership, "aud": "backstage", "iat": iat, "exp": exp, "uip": uip});
        self.auth_key.sign("vnd.backstage.user", &claims)
    }

    /// A plugin token from `scaffolder` to `audience`, on a user's behalf when `obo` is given.
    pub fn plugin_token(&self, audience: &str, obo: Option<&str>) -> String {
        let mut claims = json!({"sub": "scaffolder", "aud": audience, "iat": now(), "exp": now() + 3600});
        if let Some(user) = obo {
            let limited =
                self.auth_key.sign("vnd.backstage.limited-user", &Limited { sub: user, iat: now(), exp: now() + 3600 });
            claims["obo"] = json!(limited);
        }
        self.plugin_key.sign("vnd.backstage.plugin", &claims)
    }

    pub fn asked(&self) -> Vec<(String, String)> {
        self.asked.lock().unwrap().clone()
    }
}

/// `POST /api/permission/authorize`: checks Rigger's token, then decides.
async fn authorize(
    State(policy): State<Policy>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let token = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let Some(user) = verify_rigger(&policy, token.unwrap_or_default()).await else {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": {"name": "AuthenticationError"}})));
    };
    let items: Vec<Value> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            let name = item["permission"]["name"].as_str().unwrap().to_owned();
            policy.asked.lock().unwrap().push((user.clone(), name.clone()));
            let mut decision = decide(&user, &name);
            decision["id"] = item["id"].clone();
            decision
        })
        .collect();
    (StatusCode::OK, Json(json!({ "items": items })))
}

/// Jane reads and refreshes what she (or team-a) owns; nobody deletes; the guest reads nothing.
fn decide(user: &str, permission: &str) -> Value {
    let owner = json!({"result": "CONDITIONAL", "pluginId": "catalog", "resourceType": "catalog-entity",
        "conditions": {"rule": "IS_ENTITY_OWNER", "resourceType": "catalog-entity",
            "params": {"claims": [user, "group:default/team-a"]}}});
    match (user, permission) {
        ("user:default/jane", "catalog.entity.read" | "catalog.entity.refresh") => owner,
        (_, "catalog.entity.delete") | ("user:default/guest", "catalog.entity.read") => json!({"result": "DENY"}),
        _ => json!({"result": "ALLOW"}),
    }
}

/// The user Rigger asks about, if its token is one Backstage's permission backend would take.
async fn verify_rigger(policy: &Policy, token: &str) -> Option<String> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    if header.typ.as_deref() != Some("vnd.backstage.plugin") {
        return None;
    }
    let rigger = policy.rigger.lock().unwrap().clone();
    let keys: jsonwebtoken::jwk::JwkSet =
        reqwest::get(format!("{rigger}/api/catalog/.backstage/auth/v1/jwks.json")).await.ok()?.json().await.ok()?;
    let key = DecodingKey::from_jwk(keys.find(header.kid.as_deref()?)?).ok()?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&["permission"]);
    let claims: Value = jsonwebtoken::decode(token, &key, &validation).ok()?.claims;
    if claims["sub"] != "catalog" {
        return None;
    }
    // The user's limited token, signed by the auth plugin's key.
    let limited = claims["obo"].as_str()?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.validate_aud = false;
    let user_key = DecodingKey::from_jwk(&serde_json::from_value(policy.auth_jwk.clone()).ok()?).ok()?;
    let user: Value = jsonwebtoken::decode(limited, &user_key, &validation).ok()?.claims;
    user["sub"].as_str().map(str::to_owned)
}
