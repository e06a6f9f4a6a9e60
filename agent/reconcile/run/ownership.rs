//! Ownership across sources. Every object an entity declares is claimed in the store before
//! anything is applied; an object another entity holds — in this source or any other — is
//! refused, and nothing changes hands until its holder has let go (stopped declaring it, left
//! the catalog) or, within one source, declares it no more in this very pass.

use crate::reconcile::plan::{Identity, ObjectKey};
use crate::store::{Holder, Store, StoreError};

use super::desired::SourceView;

/// How a pass treats claims: an apply takes them, `rigger plan` only reads them.
pub struct Claims<'a> {
    pub store: &'a Store,
    pub source: &'a str,
    pub take: bool,
}

/// What came of asking for an entity's objects.
#[derive(Debug, Default)]
pub struct Claimed {
    /// One message per refused object, naming its holder.
    pub refusals: Vec<String>,
    pub refused: Vec<Identity>,
}

impl Claims<'_> {
    /// Asks for every object in `keys` for `entity_ref`. All or nothing: if any is refused,
    /// no claim is taken, so a refused entity holds nothing it did not hold before.
    pub async fn ask(&self, entity_ref: &str, keys: &[ObjectKey], view: &SourceView) -> Result<Claimed, StoreError> {
        let identities: Vec<Identity> = keys.iter().map(ObjectKey::identity).collect();
        let holders = self.store.claim_holders(&identities).await?;
        let mut claimed = Claimed::default();
        let mut wanted = Vec::new();
        for ((key, identity), holder) in keys.iter().zip(&identities).zip(holders) {
            match holder {
                // Already this entity's, from this source: nothing to write.
                Some(holder) if holder.entity_ref == entity_ref && holder.source == self.source => {}
                Some(holder) if holder.entity_ref != entity_ref => {
                    if self.released(&holder, identity, view).await? {
                        wanted.push((identity, Some(holder.entity_ref), key));
                    } else {
                        claimed.refusals.push(refusal(key, &holder));
                        claimed.refused.push(identity.clone());
                    }
                }
                _ => wanted.push((identity, None, key)),
            }
        }
        if !claimed.refusals.is_empty() || !self.take {
            return Ok(claimed);
        }
        let me = Holder { entity_ref: entity_ref.to_owned(), source: self.source.to_owned() };
        for (identity, from, key) in wanted {
            let holder = self.store.claim(identity, &me, from.as_deref()).await?;
            if holder.entity_ref != entity_ref {
                // Another pass claimed it first.
                claimed.refusals.push(refusal(key, &holder));
                claimed.refused.push(identity.clone());
            }
        }
        Ok(claimed)
    }

    /// Whether `holder` has let go of `identity`: it left the catalog, or it belongs to this
    /// source, which no longer declares it there (and could plan it).
    async fn released(&self, holder: &Holder, identity: &Identity, view: &SourceView) -> Result<bool, StoreError> {
        if holder.source == self.source {
            let declaring = view.declared_by.get(identity).is_some_and(|refs| refs.contains(&holder.entity_ref));
            if !declaring && !view.held.contains(&holder.entity_ref) {
                return Ok(true);
            }
        }
        Ok(self.store.entity(&holder.entity_ref).await?.is_none())
    }
}

fn refusal(key: &ObjectKey, holder: &Holder) -> String {
    format!(
        "{key}: not taking it over: {} (source {}) declares it and holds it; it changes hands only when that entity stops declaring it",
        holder.entity_ref, holder.source
    )
}
