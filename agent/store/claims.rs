//! Who owns each cluster object across every source. A claim is one row per object identity, so
//! two entities — of one source or of two — can never both hold an object: the database's key
//! decides, whichever replica or pass asks first. Refused claims are kept too, so the entity
//! that holds the object can say who else wants it.

use serde_json::{json, Value};
use sqlx::Row;

use super::Identity;
use super::{now_millis, query_err, Store, StoreError};

/// The entity holding a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub entity_ref: String,
    pub source: String,
}

const WHERE_IDENTITY: &str = "api_group = $1 AND kind = $2 AND namespace = $3 AND name = $4";

/// Binds an identity as `$1..$4` (group, kind, namespace or '', name).
fn bind_identity<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    identity: &'q Identity,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let (group, kind, namespace, name) = identity;
    query.bind(group).bind(kind).bind(namespace.as_deref().unwrap_or_default()).bind(name)
}

impl Store {
    /// Who holds each of `identities` now (absent: nobody).
    pub async fn claim_holders(&self, identities: &[Identity]) -> Result<Vec<Option<Holder>>, StoreError> {
        let mut holders = Vec::with_capacity(identities.len());
        for identity in identities {
            let sql = format!("SELECT entity_ref, source FROM cluster_claims WHERE {WHERE_IDENTITY}");
            let row = bind_identity(sqlx::query(&sql), identity)
                .fetch_optional(&self.pool)
                .await
                .map_err(query_err("read claim"))?;
            holders.push(row.map(|row| Holder { entity_ref: row.get(0), source: row.get(1) }));
        }
        Ok(holders)
    }

    /// Claims `identity` for the entity: taken if nobody holds it, or moved from `from` if that
    /// entity still holds it (compare and set). Returns who holds it afterwards.
    pub async fn claim(&self, identity: &Identity, holder: &Holder, from: Option<&str>) -> Result<Holder, StoreError> {
        let now = now_millis();
        if let Some(from) = from {
            let sql = format!(
                "UPDATE cluster_claims SET entity_ref = $5, source = $6, claimed_at = $7 WHERE {WHERE_IDENTITY} AND entity_ref = $8"
            );
            bind_identity(sqlx::query(&sql), identity)
                .bind(&holder.entity_ref)
                .bind(&holder.source)
                .bind(now)
                .bind(from)
                .execute(&self.pool)
                .await
                .map_err(query_err("move claim"))?;
        } else {
            let sql = "INSERT INTO cluster_claims (api_group, kind, namespace, name, entity_ref, source, claimed_at) \
                       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING";
            bind_identity(sqlx::query(sql), identity)
                .bind(&holder.entity_ref)
                .bind(&holder.source)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(query_err("take claim"))?;
        }
        // The entity itself moved to another source: its claims go with it.
        let sql = format!(
            "UPDATE cluster_claims SET source = $5 WHERE {WHERE_IDENTITY} AND entity_ref = $6 AND source <> $5"
        );
        bind_identity(sqlx::query(&sql), identity)
            .bind(&holder.source)
            .bind(&holder.entity_ref)
            .execute(&self.pool)
            .await
            .map_err(query_err("move claim"))?;
        let held = self.claim_holders(std::slice::from_ref(identity)).await?;
        Ok(held.into_iter().flatten().next().unwrap_or_else(|| holder.clone()))
    }

    /// Keeps exactly `keep` of the entity's claims and releases the rest; the entity's
    /// ownership status is refreshed when anything was released.
    pub async fn settle_claims(&self, entity_ref: &str, keep: &[Identity]) -> Result<(), StoreError> {
        let rows = sqlx::query("SELECT api_group, kind, namespace, name FROM cluster_claims WHERE entity_ref = $1")
            .bind(entity_ref)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("read claims"))?;
        let mut released = false;
        for row in rows {
            let identity = identity_of(&row);
            if keep.contains(&identity) {
                continue;
            }
            let sql = format!("DELETE FROM cluster_claims WHERE {WHERE_IDENTITY} AND entity_ref = $5");
            bind_identity(sqlx::query(&sql), &identity)
                .bind(entity_ref)
                .execute(&self.pool)
                .await
                .map_err(query_err("release claim"))?;
            released = true;
        }
        if released {
            self.refresh_ownership_status(entity_ref).await?;
        }
        Ok(())
    }

    /// Records the claims `claimant` was refused in this pass, replacing those of earlier passes,
    /// and refreshes what every entity holding one of them (before or now) shows.
    pub async fn record_refusals(&self, claimant: &Holder, refused: &[Identity]) -> Result<(), StoreError> {
        let mut holders = self.refused_holders(&claimant.entity_ref).await?;
        // One transaction: a holder's pass running beside this one must never see the refusal
        // gone for a moment (it would prune what is waited for instead of handing it over).
        let (mut tx, turn) = self.begin_write().await?;
        sqlx::query("DELETE FROM cluster_claim_refusals WHERE claimant_ref = $1")
            .bind(&claimant.entity_ref)
            .execute(&mut *tx)
            .await
            .map_err(query_err("clear refusals"))?;
        for identity in refused {
            let sql =
                "INSERT INTO cluster_claim_refusals (api_group, kind, namespace, name, claimant_ref, claimant_source) \
                       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING";
            bind_identity(sqlx::query(sql), identity)
                .bind(&claimant.entity_ref)
                .bind(&claimant.source)
                .execute(&mut *tx)
                .await
                .map_err(query_err("record refusal"))?;
        }
        tx.commit().await.map_err(query_err("commit refusals"))?;
        drop(turn);
        holders.extend(self.refused_holders(&claimant.entity_ref).await?);
        holders.sort();
        holders.dedup();
        for holder in holders {
            self.refresh_ownership_status(&holder).await?;
        }
        Ok(())
    }

    /// Objects an entity of another source asked for and was refused: when their holder lets
    /// go of one, it is handed over as it stands instead of deleted. (Kept until the claimant
    /// takes it or stops asking, whoever holds the claim meanwhile: the two sources' passes may
    /// run side by side.)
    pub async fn wanted_elsewhere(&self, source: &str) -> Result<Vec<Identity>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT api_group, kind, namespace, name FROM cluster_claim_refusals WHERE claimant_source <> $1",
        )
        .bind(source)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("read refusals"))?;
        Ok(rows.iter().map(identity_of).collect())
    }

    /// Entities of `source` with refused claims on record.
    pub async fn refused_claimants(&self, source: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT DISTINCT claimant_ref FROM cluster_claim_refusals WHERE claimant_source = $1")
            .bind(source)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("read refusals"))?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// The entities holding what `claimant` was refused.
    async fn refused_holders(&self, claimant: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT c.entity_ref FROM cluster_claim_refusals r JOIN cluster_claims c \
             ON c.api_group = r.api_group AND c.kind = r.kind AND c.namespace = r.namespace AND c.name = r.name \
             WHERE r.claimant_ref = $1",
        )
        .bind(claimant)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("read refusals"))?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// Writes the status item telling an entity which of its objects others were refused.
    async fn refresh_ownership_status(&self, holder: &str) -> Result<(), StoreError> {
        let rows = sqlx::query(
            "SELECT r.api_group, r.kind, r.namespace, r.name, r.claimant_ref, r.claimant_source \
             FROM cluster_claim_refusals r JOIN cluster_claims c \
             ON c.api_group = r.api_group AND c.kind = r.kind AND c.namespace = r.namespace AND c.name = r.name \
             WHERE c.entity_ref = $1 ORDER BY r.kind, r.namespace, r.name, r.claimant_ref",
        )
        .bind(holder)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("read refusals"))?;
        let contests: Vec<String> = rows
            .iter()
            .map(|row| {
                let (group, kind, namespace, name) = identity_of(row);
                let (claimant, source): (String, String) = (row.get(4), row.get(5));
                let object = describe(&group, &kind, namespace.as_deref(), &name);
                format!(
                    "{object}: {claimant} (source {source}) declares it too and was refused; it stays with this entity"
                )
            })
            .collect();
        let status = ownership_item(&contests).map(|item| item.to_string());
        sqlx::query(
            "UPDATE entities SET ownership_status = $1 WHERE entity_ref = $2 AND ownership_status IS DISTINCT FROM $1",
        )
        .bind(status)
        .bind(holder)
        .execute(&self.pool)
        .await
        .map_err(query_err("set ownership status"))?;
        Ok(())
    }
}

fn identity_of(row: &sqlx::any::AnyRow) -> Identity {
    let namespace: String = row.get(2);
    (row.get(0), row.get(1), (!namespace.is_empty()).then_some(namespace), row.get(3))
}

fn describe(group: &str, kind: &str, namespace: Option<&str>, name: &str) -> String {
    let kind = if group.is_empty() { kind.to_owned() } else { format!("{kind}.{group}") };
    match namespace {
        Some(namespace) => format!("{kind} {namespace}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// The `status.items` entry for contested objects, in Backstage's status item shape.
fn ownership_item(contests: &[String]) -> Option<Value> {
    if contests.is_empty() {
        return None;
    }
    let message = contests.join("; ");
    Some(json!({
        "type": "rigger.dev/ownership",
        "level": "warning",
        "message": message,
        "error": {"name": "OwnershipConflict", "message": message},
    }))
}
