//! Stored objects, the one global resourceVersion counter (etcd's revision), and the change
//! history watches replay from. History is bounded like etcd's compaction window: a watch from a
//! revision older than what is kept gets `410 Gone`, which makes clients relist.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

/// Changes kept for watches to resume from; older resumes get 410 Gone, as after compaction.
const HISTORY: usize = 10_000;
/// Buffered changes per watch before a slow watch is ended (it then resumes from its last RV).
const CHANNEL: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub group: String,
    pub plural: String,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeType {
    Added,
    Modified,
    Deleted,
}

/// One committed change, as watches see it.
#[derive(Debug)]
pub struct Change {
    pub revision: u64,
    pub key: Key,
    pub kind: ChangeType,
    /// The object before the change (selectors decide whether a watch sees ADDED or DELETED).
    pub old: Option<Value>,
    pub object: Value,
}

pub struct Store {
    objects: BTreeMap<Key, Value>,
    revision: u64,
    history: VecDeque<Arc<Change>>,
    /// Changes at or below this revision are no longer in `history`.
    compacted: u64,
    changes: broadcast::Sender<Arc<Change>>,
}

/// Where a watch picks up: the changes it missed, then the live feed.
pub struct Resume {
    pub replay: Vec<Arc<Change>>,
    pub receiver: broadcast::Receiver<Arc<Change>>,
}

/// A watch asked to resume from a revision the history no longer holds.
#[derive(Debug)]
pub struct TooOld {
    pub oldest: u64,
}

impl Store {
    pub fn new() -> Self {
        Self {
            objects: BTreeMap::new(),
            revision: 0,
            history: VecDeque::new(),
            compacted: 0,
            changes: broadcast::channel(CHANNEL).0,
        }
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn get(&self, key: &Key) -> Option<&Value> {
        self.objects.get(key)
    }

    /// Objects of one resource, in one namespace or (with `None`) all, ordered by namespace/name.
    pub fn list<'a>(
        &'a self,
        group: &'a str,
        plural: &'a str,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a Key, &'a Value)> {
        self.objects.iter().filter(move |(key, _)| {
            key.group == group && key.plural == plural && namespace.is_none_or(|ns| key.namespace == ns)
        })
    }

    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        self.objects.keys()
    }

    /// Stores `object` under a new revision and returns it as stored.
    pub fn put(&mut self, key: Key, mut object: Value) -> Value {
        self.revision += 1;
        set_resource_version(&mut object, self.revision);
        let old = self.objects.insert(key.clone(), object.clone());
        let change = if old.is_some() { ChangeType::Modified } else { ChangeType::Added };
        self.record(key, change, old, object.clone());
        object
    }

    /// Removes an object; its last state carries the deletion's revision, as in DELETED events.
    pub fn remove(&mut self, key: &Key) -> Option<Value> {
        let old = self.objects.remove(key)?;
        self.revision += 1;
        let mut object = old.clone();
        set_resource_version(&mut object, self.revision);
        self.record(key.clone(), ChangeType::Deleted, Some(old), object.clone());
        Some(object)
    }

    fn record(&mut self, key: Key, change: ChangeType, old: Option<Value>, object: Value) {
        let change = Arc::new(Change { revision: self.revision, key, kind: change, old, object });
        if self.history.len() == HISTORY {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted = dropped.revision;
            }
        }
        self.history.push_back(Arc::clone(&change));
        // No receivers is fine: nobody is watching.
        let _ = self.changes.send(change);
    }

    /// The changes after `revision`, and a receiver for those still to come, taken together so
    /// that none falls between them.
    pub fn watch_from(&self, revision: u64) -> Result<Resume, TooOld> {
        if revision < self.compacted {
            return Err(TooOld { oldest: self.compacted });
        }
        let replay = self.history.iter().filter(|c| c.revision > revision).cloned().collect();
        Ok(Resume { replay, receiver: self.changes.subscribe() })
    }

    /// Forgets all history, as an etcd compaction would: every older revision now gets 410.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.revision;
    }
}

fn set_resource_version(object: &mut Value, revision: u64) {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert("resourceVersion".into(), Value::String(revision.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key(name: &str) -> Key {
        Key { group: String::new(), plural: "configmaps".into(), namespace: "default".into(), name: name.into() }
    }

    #[test]
    fn every_write_takes_the_next_global_revision() {
        let mut store = Store::new();
        let a = store.put(key("a"), json!({"metadata": {"name": "a"}}));
        let b = store.put(key("b"), json!({"metadata": {"name": "b"}}));
        let gone = store.remove(&key("a")).unwrap();
        assert_eq!(a["metadata"]["resourceVersion"], "1");
        assert_eq!(b["metadata"]["resourceVersion"], "2");
        assert_eq!(gone["metadata"]["resourceVersion"], "3");
    }

    #[test]
    fn a_watch_from_before_compaction_is_too_old() {
        let mut store = Store::new();
        store.put(key("a"), json!({"metadata": {}}));
        store.put(key("a"), json!({"metadata": {}}));
        let replay = store.watch_from(1).unwrap().replay;
        assert_eq!(replay.iter().map(|c| c.kind).collect::<Vec<_>>(), vec![ChangeType::Modified]);
        store.compact();
        assert!(store.watch_from(1).is_err());
        assert!(store.watch_from(2).unwrap().replay.is_empty());
    }
}
