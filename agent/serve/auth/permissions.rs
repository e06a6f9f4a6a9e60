//! Asking a Backstage permission backend about a user, as Backstage's catalog does: one
//! `POST /api/permission/authorize` per request, sent with a token Rigger signs on the user's
//! behalf; a conditional answer for a catalog entity permission becomes a store filter.

use std::time::Duration;

use serde_json::{json, Value};

use super::signer::Signer;
use crate::catalog::permission::RESOURCE_TYPE;
use crate::catalog::search::Filter;

/// Longest the permission backend may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The catalog's permissions (`@backstage/plugin-catalog-common`) that Rigger's API checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    EntityRead,
    EntityRefresh,
    EntityDelete,
    EntityValidate,
    LocationRead,
    LocationCreate,
    LocationDelete,
    LocationAnalyze,
}

impl Permission {
    pub const ALL: [Self; 8] = [
        Self::EntityRead,
        Self::EntityRefresh,
        Self::EntityDelete,
        Self::EntityValidate,
        Self::LocationRead,
        Self::LocationCreate,
        Self::LocationDelete,
        Self::LocationAnalyze,
    ];

    /// Backstage's permission object: name, attributes and, for entity permissions, the
    /// resource type.
    pub fn to_json(self) -> Value {
        let (name, action, resource) = match self {
            Self::EntityRead => ("catalog.entity.read", Some("read"), true),
            Self::EntityRefresh => ("catalog.entity.refresh", Some("update"), true),
            Self::EntityDelete => ("catalog.entity.delete", Some("delete"), true),
            Self::EntityValidate => ("catalog.entity.validate", None, false),
            Self::LocationRead => ("catalog.location.read", Some("read"), false),
            Self::LocationCreate => ("catalog.location.create", Some("create"), false),
            Self::LocationDelete => ("catalog.location.delete", Some("delete"), false),
            Self::LocationAnalyze => ("catalog.location.analyze", None, false),
        };
        let attributes = action.map_or_else(|| json!({}), |action| json!({ "action": action }));
        if resource {
            json!({"type": "resource", "name": name, "attributes": attributes, "resourceType": RESOURCE_TYPE})
        } else {
            json!({"type": "basic", "name": name, "attributes": attributes})
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::EntityRead => "catalog.entity.read",
            Self::EntityRefresh => "catalog.entity.refresh",
            Self::EntityDelete => "catalog.entity.delete",
            Self::EntityValidate => "catalog.entity.validate",
            Self::LocationRead => "catalog.location.read",
            Self::LocationCreate => "catalog.location.create",
            Self::LocationDelete => "catalog.location.delete",
            Self::LocationAnalyze => "catalog.location.analyze",
        }
    }
}

/// A decision: everything, nothing, or the entities a filter matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    Conditional(Filter),
}

impl Decision {
    /// What the decision lets the caller see, as a filter.
    pub fn filter(&self) -> Filter {
        match self {
            Self::Allow => Filter::default(),
            Self::Deny => Filter::nothing(),
            Self::Conditional(filter) => filter.clone(),
        }
    }
}

pub struct PermissionBackend {
    pub url: String,
    pub http: reqwest::Client,
}

impl PermissionBackend {
    /// The backend's decision about `permission` for the user whose limited token is
    /// `on_behalf_of`. Any failure is an error (the request is then refused, never allowed).
    pub async fn decide(
        &self,
        signer: &Signer,
        permission: Permission,
        on_behalf_of: &str,
        expires_at: u64,
    ) -> Result<Decision, String> {
        let id = uuid::Uuid::new_v4().to_string();
        let body = json!({"items": [{"id": id, "permission": permission.to_json()}]});
        let url = format!("{}/authorize", self.url);
        let mut response = self.ask(signer, &url, &body, on_behalf_of, expires_at).await?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            // Our key may have dropped out of the store (another replica's clock ran ahead):
            // publish it again and ask once more.
            signer.publish().await.map_err(|e| format!("cannot publish the signing key: {e}"))?;
            response = self.ask(signer, &url, &body, on_behalf_of, expires_at).await?;
        }
        let status = response.status();
        let answer = response.bytes().await.map_err(|e| format!("{url}: {e}"))?;
        if !status.is_success() {
            return Err(format!("{url} answered {status}: {}", String::from_utf8_lossy(&answer)));
        }
        let answer: Value = serde_json::from_slice(&answer).map_err(|e| format!("{url}: not JSON: {e}"))?;
        let item = answer["items"]
            .as_array()
            .and_then(|items| items.iter().find(|item| item["id"] == id.as_str()))
            .ok_or_else(|| format!("{url}: no decision for the request in {answer}"))?;
        decision(permission, item)
    }
}

impl PermissionBackend {
    async fn ask(
        &self,
        signer: &Signer,
        url: &str,
        body: &Value,
        on_behalf_of: &str,
        expires_at: u64,
    ) -> Result<reqwest::Response, String> {
        let token = signer.token("permission", on_behalf_of, expires_at).await?;
        self.http
            .post(url)
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .timeout(TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))
    }
}

fn decision(permission: Permission, item: &Value) -> Result<Decision, String> {
    match item["result"].as_str() {
        Some("ALLOW") => Ok(Decision::Allow),
        Some("DENY") => Ok(Decision::Deny),
        Some("CONDITIONAL") => {
            if item["resourceType"].as_str().is_some_and(|t| t != RESOURCE_TYPE) {
                return Err(format!("a conditional decision about {} for {}", permission.name(), item["resourceType"]));
            }
            crate::catalog::permission::filter(&item["conditions"])
                .map(Decision::Conditional)
                .map_err(|e| format!("the conditional decision about {}: {e}", permission.name()))
        }
        _ => Err(format!("an unknown decision about {}: {item}", permission.name())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_are_backstage_s_own() {
        assert_eq!(
            Permission::EntityRead.to_json(),
            json!({"type": "resource", "name": "catalog.entity.read", "attributes": {"action": "read"}, "resourceType": "catalog-entity"})
        );
        assert_eq!(
            Permission::EntityValidate.to_json(),
            json!({"type": "basic", "name": "catalog.entity.validate", "attributes": {}})
        );
    }

    #[test]
    fn decisions_are_read_and_anything_else_refused() {
        let read = Permission::EntityRead;
        assert_eq!(decision(read, &json!({"result": "ALLOW"})).unwrap(), Decision::Allow);
        assert_eq!(decision(read, &json!({"result": "DENY"})).unwrap().filter(), Filter::nothing());
        let owner = json!({"result": "CONDITIONAL", "pluginId": "catalog", "resourceType": "catalog-entity",
            "conditions": {"rule": "IS_ENTITY_OWNER", "resourceType": "catalog-entity", "params": {"claims": ["user:default/jane"]}}});
        assert!(matches!(decision(read, &owner).unwrap(), Decision::Conditional(_)));
        assert!(decision(read, &json!({"result": "MAYBE"})).is_err());
        let bad = json!({"result": "CONDITIONAL", "conditions": {"rule": "IS_ENTITY_FRIEND"}});
        assert!(decision(read, &bad).is_err());
    }
}
