//! What reconcile keeps in the store: the entities of a source that declare cluster objects, the
//! inventory of what was applied for each, and the cluster status served on the entity.

use std::collections::BTreeMap;

use serde_json::Value;
use sqlx::Row;

use super::{now_millis, query_err, Store, StoreError};
use super::{ObjectKey, MANIFESTS_ANNOTATION};

/// An entity that declares cluster objects, with the catalog file it came from.
#[derive(Debug, Clone)]
pub struct ManagedEntity {
    pub entity_ref: String,
    /// The catalog namespace (`metadata.namespace`, default `default`).
    pub namespace: String,
    /// Repository-relative path of its catalog file.
    pub file: String,
    pub body: Value,
    /// Kept by `orphan_strategy: keep` though nothing declares it: neither applied nor pruned.
    pub orphan: bool,
}

impl ManagedEntity {
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.body["metadata"]["annotations"][key].as_str()
    }
}

impl Store {
    /// The source's entities that carry `rigger.dev/manifests`, in ref order.
    pub async fn managed_entities(&self, source: &str) -> Result<Vec<ManagedEntity>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.entity_ref, e.namespace, COALESCE(l.path, ''), e.body, e.orphan FROM entities e \
             LEFT JOIN locations l ON l.location_key = e.location_key \
             WHERE e.source = $1 AND e.body LIKE $2 ORDER BY e.entity_ref",
        )
        .bind(source)
        .bind(format!("%{MANIFESTS_ANNOTATION}%"))
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list managed entities"))?;
        let mut out = Vec::new();
        for row in rows {
            let entity_ref: String = row.get(0);
            let body: String = row.get(3);
            let body: Value = super::rows::parse_body(&body)
                .map_err(|source| StoreError::Corrupt { entity_ref: entity_ref.clone(), source })?;
            let orphan = row.get::<i64, _>(4) != 0;
            let entity = ManagedEntity { entity_ref, namespace: row.get(1), file: row.get(2), body, orphan };
            if entity.annotation(MANIFESTS_ANNOTATION).is_some() {
                out.push(entity);
            }
        }
        Ok(out)
    }

    /// What was applied for each entity of the source, by entity ref.
    pub async fn inventory(&self, source: &str) -> Result<BTreeMap<String, Vec<ObjectKey>>, StoreError> {
        let rows = sqlx::query(
            "SELECT entity_ref, api_version, kind, namespace, name FROM cluster_inventory \
             WHERE source = $1 ORDER BY entity_ref, api_version, kind, namespace, name",
        )
        .bind(source)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("read inventory"))?;
        let mut out: BTreeMap<String, Vec<ObjectKey>> = BTreeMap::new();
        for row in rows {
            let namespace: String = row.get(3);
            out.entry(row.get(0)).or_default().push(ObjectKey {
                api_version: row.get(1),
                kind: row.get(2),
                namespace: (!namespace.is_empty()).then_some(namespace),
                name: row.get(4),
            });
        }
        Ok(out)
    }

    /// Replaces an entity's inventory (one transaction), writing nothing when it is unchanged.
    pub async fn record_inventory(
        &self,
        source: &str,
        entity_ref: &str,
        before: &[ObjectKey],
        keys: &[ObjectKey],
    ) -> Result<(), StoreError> {
        let mut sorted = keys.to_vec();
        sorted.sort();
        sorted.dedup();
        let mut before = before.to_vec();
        before.sort();
        if sorted == before {
            return Ok(());
        }
        let (mut tx, _turn) = self.begin_write().await?;
        sqlx::query("DELETE FROM cluster_inventory WHERE source = $1 AND entity_ref = $2")
            .bind(source)
            .bind(entity_ref)
            .execute(&mut *tx)
            .await
            .map_err(query_err("clear inventory"))?;
        let now = now_millis();
        for key in &sorted {
            sqlx::query(
                "INSERT INTO cluster_inventory (entity_ref, source, api_version, kind, namespace, name, applied_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(entity_ref)
            .bind(source)
            .bind(&key.api_version)
            .bind(&key.kind)
            .bind(key.namespace.as_deref().unwrap_or_default())
            .bind(&key.name)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(query_err("record inventory"))?;
        }
        tx.commit().await.map_err(query_err("commit inventory"))?;
        Ok(())
    }

    /// Drops what this source applied for an entity, without touching the cluster: the entity
    /// (and its objects) belongs to another source now.
    pub async fn forget_inventory(&self, source: &str, entity_ref: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM cluster_inventory WHERE source = $1 AND entity_ref = $2")
            .bind(source)
            .bind(entity_ref)
            .execute(&self.pool)
            .await
            .map_err(query_err("forget inventory"))?;
        Ok(())
    }

    /// Sets the cluster status item served on an entity; writes only when it changed.
    pub async fn set_cluster_status(&self, entity_ref: &str, status: Option<&Value>) -> Result<(), StoreError> {
        let text = status.map(Value::to_string);
        sqlx::query(
            "UPDATE entities SET cluster_status = $1 WHERE entity_ref = $2 AND cluster_status IS DISTINCT FROM $1",
        )
        .bind(text)
        .bind(entity_ref)
        .execute(&self.pool)
        .await
        .map_err(query_err("set cluster status"))?;
        Ok(())
    }
}
