//! The pure half of a location write: what is stored vs what the file now says.

use std::collections::{BTreeMap, BTreeSet};

/// What the store holds for one entity ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub hash: String,
    pub location_key: String,
}

/// What one location write must do.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    pub insert: Vec<String>,
    pub update: Vec<String>,
    pub delete: Vec<String>,
    pub unchanged: usize,
    /// Refs another location already owns, with that location's key. The first claimant keeps it.
    pub conflicts: Vec<(String, String)>,
}

/// Plans the write of one location. `stored` holds the rows for every desired ref plus every
/// row this location owns. Deletion only happens when `may_delete` (the file was read cleanly,
/// so a missing entity is positive evidence of removal).
pub fn plan(
    location_key: &str,
    desired: &BTreeMap<String, String>,
    stored: &BTreeMap<String, Stored>,
    may_delete: bool,
) -> Plan {
    let mut out = Plan::default();
    for (entity_ref, hash) in desired {
        match stored.get(entity_ref) {
            None => out.insert.push(entity_ref.clone()),
            Some(row) if row.location_key != location_key => {
                out.conflicts.push((entity_ref.clone(), row.location_key.clone()));
            }
            Some(row) if &row.hash == hash => out.unchanged += 1,
            Some(_) => out.update.push(entity_ref.clone()),
        }
    }
    if may_delete {
        let wanted: BTreeSet<&String> = desired.keys().collect();
        out.delete = stored
            .iter()
            .filter(|(r, row)| row.location_key == location_key && !wanted.contains(r))
            .map(|(r, _)| r.clone())
            .collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(rows: &[(&str, &str, &str)]) -> BTreeMap<String, Stored> {
        rows.iter()
            .map(|(r, h, l)| ((*r).to_owned(), Stored { hash: (*h).to_owned(), location_key: (*l).to_owned() }))
            .collect()
    }

    fn desired(rows: &[(&str, &str)]) -> BTreeMap<String, String> {
        rows.iter().map(|(r, h)| ((*r).to_owned(), (*h).to_owned())).collect()
    }

    #[test]
    fn unchanged_entities_plan_no_write() {
        let p = plan("L", &desired(&[("a", "1")]), &stored(&[("a", "1", "L")]), true);
        assert_eq!(p, Plan { unchanged: 1, ..Plan::default() });
    }

    #[test]
    fn new_changed_and_removed_entities() {
        let p = plan("L", &desired(&[("a", "2"), ("b", "1")]), &stored(&[("a", "1", "L"), ("c", "1", "L")]), true);
        assert_eq!(p.insert, vec!["b"]);
        assert_eq!(p.update, vec!["a"]);
        assert_eq!(p.delete, vec!["c"]);
    }

    #[test]
    fn a_location_with_errors_deletes_nothing() {
        let p = plan("L", &desired(&[]), &stored(&[("c", "1", "L")]), false);
        assert!(p.delete.is_empty());
    }

    #[test]
    fn the_first_claimant_keeps_a_contested_ref() {
        let p = plan("L2", &desired(&[("a", "9")]), &stored(&[("a", "1", "L1")]), true);
        assert_eq!(p.conflicts, vec![("a".to_owned(), "L1".to_owned())]);
        assert!(p.update.is_empty() && p.delete.is_empty());
    }
}
