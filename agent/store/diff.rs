//! The pure half of a location write: what is stored vs what the file now says, and who may
//! hand an entity over to whom when files move.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::Value;
use sha1::{Digest, Sha1};

use crate::catalog::{Ingest, LocationOutcome};

/// The content hash of an entity body; doubles as its etag. `serde_json`'s map is ordered by key,
/// so the serialisation (and the hash) does not depend on the key order in the YAML file.
pub fn content_hash(body: &Value) -> String {
    hex::encode(Sha1::digest(body.to_string().as_bytes()))
}

/// What the store holds for one entity ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub hash: String,
    pub location_key: String,
    pub source: String,
    /// No location declares it any more; kept because `orphan_strategy: keep`.
    pub orphan: bool,
    /// The error of its failing document, if it currently fails.
    pub errors: Option<String>,
}

/// What one catalog file says, for planning: the hash of every valid entity it declares, the
/// refs of documents that failed (their last good version stays), and whether that list is
/// complete (a document that fails without naming its entity hides what the file declares).
#[derive(Debug, Clone, Default)]
pub struct Declared {
    pub valid: BTreeMap<String, String>,
    pub failing: BTreeSet<String>,
    pub complete: bool,
    /// Every file this one leads to is known (no Location of it failed).
    pub leads_known: bool,
}

impl Declared {
    pub fn of(outcome: &LocationOutcome) -> Self {
        Self {
            valid: outcome.entities.iter().map(|e| (e.entity_ref.to_string(), content_hash(&e.body))).collect(),
            failing: outcome.failing.iter().map(|(r, _)| r.to_string()).collect(),
            complete: outcome.declares_all(),
            leads_known: outcome.leads_are_known(),
        }
    }

    fn declares(&self, entity_ref: &str) -> bool {
        self.valid.contains_key(entity_ref) || self.failing.contains(entity_ref)
    }
}

/// The whole walk of one source, so that a location can take over an entity another location of
/// the same source gave up in the same commit (a renamed or moved file keeps its entities, uid
/// and all, and leaves no stale duplicate).
#[derive(Debug, Clone, Default)]
pub struct Walk {
    pub source: String,
    /// Every file of the source was read and every Location understood.
    pub complete: bool,
    /// Location key → what it declares.
    pub reached: HashMap<String, Declared>,
    /// Stored locations of the source this walk shows are gone (see [`unreached`]); `None`
    /// when not worked out, and then only a complete walk counts as evidence.
    pub gone: Option<BTreeSet<String>>,
}

impl Walk {
    pub fn of(source: &str, ingest: &Ingest) -> Self {
        Self {
            source: source.to_owned(),
            complete: ingest.is_complete(),
            reached: ingest.locations.iter().map(|l| (l.key.clone(), Declared::of(l))).collect(),
            gone: None,
        }
    }

    /// May a location take `entity_ref` from `owner`? Only on positive evidence that the owner
    /// gave it up: it was read in full and no longer declares it, or it is gone from a complete
    /// walk of the same source. An orphan may be taken by anyone.
    pub fn releases(&self, owner: &Stored, entity_ref: &str) -> bool {
        if owner.orphan {
            return true;
        }
        match self.reached.get(&owner.location_key) {
            Some(declared) => declared.complete && !declared.declares(entity_ref),
            None => owner.source == self.source && self.is_gone(&owner.location_key),
        }
    }

    /// A stored location this walk did not reach is gone (not merely hidden behind an error).
    pub fn is_gone(&self, key: &str) -> bool {
        match &self.gone {
            Some(gone) => gone.contains(key),
            None => self.complete,
        }
    }

    /// Is `entity_ref` declared by a reached location other than `key`? Then `key` must not
    /// delete it: it is moving, and the other location adopts it.
    pub fn moving_elsewhere(&self, key: &str, entity_ref: &str) -> bool {
        self.reached.iter().any(|(other, declared)| other != key && declared.declares(entity_ref))
    }
}

/// The stored locations a walk did not reach: those really gone, and those whose deletion is
/// held back, each with the location in error that holds it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Unreached {
    pub gone: BTreeSet<String>,
    pub held: BTreeMap<String, String>,
}

/// Sorts the source's stored locations (key → the locations that led to it, `""` for a root,
/// `None` when not known) that the walk did not reach. One is gone when every location that led
/// to it was read in full and leads there no more; one behind a location in error is held. So a
/// broken file holds back only what it could lead to, and unrelated deletions go ahead.
pub fn unreached(walk: &Walk, stored: &BTreeMap<String, Option<Vec<String>>>) -> Unreached {
    let mut out = Unreached::default();
    for key in stored.keys().filter(|k| !walk.reached.contains_key(*k)) {
        match fate(walk, stored, key, &mut HashSet::new()) {
            None => out.gone.insert(key.clone()),
            Some(holder) => out.held.insert(key.clone(), holder).is_none(),
        };
    }
    out
}

/// `None` when `key` is gone, else the location holding it.
fn fate(
    walk: &Walk,
    stored: &BTreeMap<String, Option<Vec<String>>>,
    key: &str,
    seen: &mut HashSet<String>,
) -> Option<String> {
    // A cycle of unreached locations: only a complete walk is evidence.
    if !seen.insert(key.to_owned()) {
        return whole_walk(walk);
    }
    // A location recorded before parents were, or once a root: only a complete walk is evidence.
    let Some(parents) = stored.get(key).cloned().flatten() else { return whole_walk(walk) };
    for parent in &parents {
        let held = match walk.reached.get(parent) {
            _ if parent.is_empty() => whole_walk(walk),
            Some(declared) if declared.leads_known => None,
            Some(_) => Some(parent.clone()),
            None if stored.contains_key(parent) => fate(walk, stored, parent, seen),
            None => whole_walk(walk),
        };
        if held.is_some() {
            return held;
        }
    }
    None
}

/// Without a parent to judge by, only a complete walk is evidence; the holder is named.
fn whole_walk(walk: &Walk) -> Option<String> {
    if walk.complete {
        return None;
    }
    let mut held: Vec<&String> = walk.reached.iter().filter(|(_, d)| !d.leads_known).map(|(k, _)| k).collect();
    held.sort();
    Some(held.first().map_or_else(|| "an incomplete walk".to_owned(), |k| (*k).clone()))
}

/// What one location write must do.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    pub insert: Vec<String>,
    /// Content changed, or an orphan is declared again.
    pub update: Vec<String>,
    /// Taken over from the location that gave it up (uid kept).
    pub adopt: Vec<String>,
    /// Moved here with a failing document: ownership moves, the last good body stays.
    pub adopt_failing: Vec<String>,
    /// No longer declared (deleted, or marked orphan with `orphan_strategy: keep`).
    pub remove: Vec<String>,
    pub unchanged: usize,
    /// Refs another location still owns, with that location's key. The first claimant keeps it.
    pub conflicts: Vec<(String, String)>,
}

/// Plans the write of location `key`. `stored` holds the rows for every desired ref plus every
/// row this location owns.
pub fn plan(key: &str, declared: &Declared, stored: &BTreeMap<String, Stored>, walk: &Walk) -> Plan {
    let mut out = Plan::default();
    for (entity_ref, hash) in &declared.valid {
        match stored.get(entity_ref) {
            None => out.insert.push(entity_ref.clone()),
            Some(row) if row.location_key != key => {
                if walk.releases(row, entity_ref) {
                    out.adopt.push(entity_ref.clone());
                } else {
                    out.conflicts.push((entity_ref.clone(), row.location_key.clone()));
                }
            }
            Some(row) if row.orphan || &row.hash != hash => out.update.push(entity_ref.clone()),
            Some(_) => out.unchanged += 1,
        }
    }
    for entity_ref in &declared.failing {
        if let Some(row) = stored.get(entity_ref) {
            if row.location_key != key && walk.releases(row, entity_ref) {
                out.adopt_failing.push(entity_ref.clone());
            }
        }
    }
    if declared.complete {
        out.remove = stored
            .iter()
            .filter(|(r, row)| row.location_key == key && !row.orphan && !declared.declares(r))
            .filter(|(r, _)| !walk.moving_elsewhere(key, r))
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
            .map(|(r, h, l)| {
                let row = Stored {
                    hash: (*h).into(),
                    location_key: (*l).into(),
                    source: "s".into(),
                    orphan: false,
                    errors: None,
                };
                ((*r).to_owned(), row)
            })
            .collect()
    }

    fn declared(rows: &[(&str, &str)]) -> Declared {
        Declared {
            valid: rows.iter().map(|(r, h)| ((*r).into(), (*h).into())).collect(),
            failing: BTreeSet::new(),
            complete: true,
            leads_known: true,
        }
    }

    fn walk(reached: &[(&str, Declared)], complete: bool) -> Walk {
        let reached = reached.iter().map(|(k, d)| ((*k).into(), d.clone())).collect();
        Walk { source: "s".into(), complete, reached, gone: None }
    }

    #[test]
    fn a_broken_file_holds_back_only_what_it_leads_to() {
        let ok = declared(&[]);
        let broken = Declared { leads_known: false, complete: false, ..declared(&[]) };
        let w = walk(&[("ROOT", ok), ("TEAMS", broken)], false);
        let stored: BTreeMap<String, Option<Vec<String>>> = [
            ("ROOT", Some(vec![""])),
            ("TEAMS", Some(vec!["ROOT"])),
            ("DELETED", Some(vec!["ROOT"])),
            ("UNDER-TEAMS", Some(vec!["TEAMS"])),
            ("DEEPER", Some(vec!["UNDER-TEAMS"])),
            ("BOTH", Some(vec!["ROOT", "TEAMS"])),
            ("LEGACY", None),
        ]
        .into_iter()
        .map(|(k, p)| (k.to_owned(), p.map(|p| p.into_iter().map(str::to_owned).collect())))
        .collect();
        let found = unreached(&w, &stored);
        assert_eq!(found.gone, ["DELETED".to_owned()].into());
        assert_eq!(found.held["UNDER-TEAMS"], "TEAMS");
        assert_eq!(found.held["DEEPER"], "TEAMS");
        assert_eq!(found.held["BOTH"], "TEAMS", "a second Location in error may still lead there");
        assert_eq!(found.held["LEGACY"], "TEAMS", "no parent known: only a complete walk is evidence");
        assert_eq!(unreached(&walk(&[("ROOT", declared(&[]))], true), &stored).held.len(), 0);
    }

    #[test]
    fn unchanged_entities_plan_no_write() {
        let d = declared(&[("a", "1")]);
        let p = plan("L", &d, &stored(&[("a", "1", "L")]), &walk(&[("L", d.clone())], true));
        assert_eq!(p, Plan { unchanged: 1, ..Plan::default() });
    }

    #[test]
    fn new_changed_and_removed_entities() {
        let d = declared(&[("a", "2"), ("b", "1")]);
        let p = plan("L", &d, &stored(&[("a", "1", "L"), ("c", "1", "L")]), &walk(&[("L", d.clone())], true));
        assert_eq!((p.insert, p.update, p.remove), (vec!["b".into()], vec!["a".into()], vec!["c".into()]));
    }

    #[test]
    fn a_file_that_hides_its_entities_removes_nothing() {
        let d = Declared { complete: false, ..declared(&[]) };
        let p = plan("L", &d, &stored(&[("c", "1", "L")]), &walk(&[("L", d.clone())], false));
        assert!(p.remove.is_empty());
    }

    #[test]
    fn a_failing_document_keeps_its_last_good_version() {
        let mut d = declared(&[("a", "1")]);
        d.failing.insert("b".into());
        let p = plan("L", &d, &stored(&[("a", "1", "L"), ("b", "1", "L")]), &walk(&[("L", d.clone())], true));
        assert!(p.remove.is_empty());
    }

    #[test]
    fn the_first_claimant_keeps_a_contested_ref() {
        let l1 = declared(&[("a", "1")]);
        let l2 = declared(&[("a", "9")]);
        let w = walk(&[("L1", l1), ("L2", l2.clone())], true);
        let p = plan("L2", &l2, &stored(&[("a", "1", "L1")]), &w);
        assert_eq!(p.conflicts, vec![("a".to_owned(), "L1".to_owned())]);
    }

    #[test]
    fn a_renamed_file_adopts_its_entities() {
        let new = declared(&[("a", "1")]);
        let w = walk(&[("NEW", new.clone())], true);
        let p = plan("NEW", &new, &stored(&[("a", "1", "OLD")]), &w);
        assert_eq!(p.adopt, vec!["a".to_owned()]);
        let incomplete = walk(&[("NEW", new.clone())], false);
        assert_eq!(plan("NEW", &new, &stored(&[("a", "1", "OLD")]), &incomplete).conflicts.len(), 1);
    }

    #[test]
    fn a_moved_entity_whose_document_fails_keeps_its_last_good_version_and_moves() {
        let mut to = declared(&[]);
        to.failing.insert("a".into());
        let from = declared(&[]);
        let w = walk(&[("FROM", from.clone()), ("TO", to.clone())], true);
        assert!(
            plan("FROM", &from, &stored(&[("a", "1", "FROM")]), &w).remove.is_empty(),
            "not deleted by the file it left"
        );
        assert_eq!(plan("TO", &to, &stored(&[("a", "1", "FROM")]), &w).adopt_failing, vec!["a".to_owned()]);
    }

    #[test]
    fn an_entity_moving_between_files_is_not_deleted_by_the_file_it_left() {
        let from = declared(&[]);
        let to = declared(&[("a", "1")]);
        let w = walk(&[("FROM", from.clone()), ("TO", to)], true);
        assert!(plan("FROM", &from, &stored(&[("a", "1", "FROM")]), &w).remove.is_empty());
    }
}
