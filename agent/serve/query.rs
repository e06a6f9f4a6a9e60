//! The request side of Backstage's list queries: order parameters and opaque cursors that carry
//! a whole query, turned into the store's [`EntityQuery`].

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::catalog::search::Filter;
use crate::store::EntityQuery;

/// One order: a dotted field and a direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub field: String,
    pub descending: bool,
}

impl Order {
    /// `asc:metadata.name` (`GET /entities`) or `metadata.name,desc` (`by-query`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (field, descending) = match (text.split_once(':'), text.split_once(',')) {
            (Some(("asc", f)), _) | (_, Some((f, "asc"))) => (f, false),
            (Some(("desc", f)), _) | (_, Some((f, "desc"))) => (f, true),
            (None, None) => (text, false),
            _ => return Err(format!("Invalid order field {text:?}")),
        };
        Ok(Self { field: field.trim().to_lowercase(), descending })
    }
}

/// The largest `limit` or `offset` taken: far beyond any catalog, and safe in every database's
/// integer arithmetic.
pub const MAX_NUMBER: usize = 1_000_000_000;

/// What a `by-query` cursor carries: the whole query, so a page can be resumed from it alone.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct QueryState {
    pub filters: Vec<String>,
    pub order: Option<Order>,
    pub full_text_term: Option<String>,
    pub full_text_fields: Vec<String>,
    pub offset: usize,
    /// A filter predicate (`POST /entities/by-query`), which must hold as well as `filters`.
    /// Named `query` in the cursor, as Backstage's client looks for it there to send the next
    /// page's request as a predicate query too.
    #[serde(default, rename = "query", skip_serializing_if = "Option::is_none")]
    pub predicate: Option<serde_json::Value>,
}

impl QueryState {
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn decode(cursor: &str) -> Result<Self, String> {
        let bytes =
            base64::engine::general_purpose::STANDARD.decode(cursor).map_err(|_| "Malformed cursor".to_owned())?;
        serde_json::from_slice(&bytes).map_err(|_| "Malformed cursor".to_owned())
    }

    /// The store query for one page of this query, within what the caller may read (never part
    /// of the cursor: a cursor is the client's to change).
    pub fn to_store(&self, limit: Option<usize>, visible: &Filter) -> Result<EntityQuery, String> {
        // A cursor is client input too.
        if self.offset > MAX_NUMBER {
            return Err(format!("offset must be a non-negative integer no larger than {MAX_NUMBER}"));
        }
        let mut filter = Filter::parse(&self.filters)?;
        if let Some(predicate) = &self.predicate {
            filter = filter.and(&crate::catalog::predicate::filter(predicate)?);
        }
        let filter = filter.and(visible);
        let order = self.order.as_ref().map(|o| (o.field.clone(), o.descending));
        let full_text = self.full_text_term.as_deref().map(str::to_lowercase).filter(|t| !t.is_empty()).map(|term| {
            let default = self.order.as_ref().map_or_else(|| "metadata.uid".to_owned(), |o| o.field.clone());
            let fields = if self.full_text_fields.is_empty() { vec![default] } else { self.full_text_fields.clone() };
            (term, fields.iter().map(|f| f.to_lowercase()).collect())
        });
        Ok(EntityQuery { filter, order, full_text, offset: self.offset, limit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_forms() {
        assert_eq!(
            Order::parse("asc:metadata.name").unwrap(),
            Order { field: "metadata.name".into(), descending: false }
        );
        assert_eq!(Order::parse("spec.type,desc").unwrap(), Order { field: "spec.type".into(), descending: true });
        assert!(Order::parse("sideways:x").is_err());
    }

    #[test]
    fn cursors_round_trip() {
        let state = QueryState { filters: vec!["kind=component".into()], offset: 20, ..QueryState::default() };
        let back = QueryState::decode(&state.encode()).unwrap();
        assert_eq!((back.filters, back.offset), (vec!["kind=component".to_owned()], 20));
        assert!(QueryState::decode("not base64!").is_err());
    }
}
