//! The store against real SQLite and PostgreSQL: per-location transactions, no-op writes,
//! first-claimant conflicts, and deletion only on positive evidence.

use rigger::catalog::{DocumentError, Entity, EntityRef, LocationOutcome};
use rigger::store::Store;
use serde_json::json;

use crate::support::db::TestDb;

fn entity(name: &str, description: &str) -> Entity {
    Entity {
        entity_ref: EntityRef::new("Component", "default", name),
        relations: vec![],
        body: json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                     "metadata": {"name": name, "namespace": "default", "description": description}}),
    }
}

fn location(key: &str, entities: Vec<Entity>, errors: Vec<DocumentError>) -> LocationOutcome {
    LocationOutcome { key: key.into(), path: format!("{key}.yaml"), entities, errors, read: true }
}

#[tokio::test]
async fn sqlite_store_semantics() {
    let dir = tempfile::tempdir().unwrap();
    store_semantics(&TestDb::sqlite(dir.path())).await;
}

#[tokio::test]
async fn postgres_store_semantics() {
    store_semantics(&TestDb::postgres().await).await;
}

async fn store_semantics(db: &TestDb) {
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.unwrap(); // idempotent

    let a = location("url:a", vec![entity("x", "one"), entity("y", "one")], vec![]);
    let (changes, conflicts) = store.apply_location("s", &a).await.unwrap();
    assert_eq!((changes.added, changes.entity_writes(), conflicts.len()), (2, 2, 0));
    let x_uid = store.entity("component:default/x").await.unwrap().unwrap().uid;

    let (changes, _) = store.apply_location("s", &a).await.unwrap();
    assert_eq!((changes.entity_writes(), changes.unchanged), (0, 2), "unchanged entities cost no write");

    // A second location claiming x: the first claimant keeps it, the newcomer records a conflict.
    let b = location("url:b", vec![entity("X", "two")], vec![]);
    let (changes, conflicts) = store.apply_location("s", &b).await.unwrap();
    assert_eq!((changes.conflicts, changes.entity_writes()), (1, 0));
    assert!(conflicts[0].message.contains("url:a") && conflicts[0].message.contains("url:b"), "{conflicts:?}");
    let x = store.entity("component:default/x").await.unwrap().unwrap();
    assert_eq!((x.location_key.as_str(), x.body["metadata"]["description"].as_str()), ("url:a", Some("one")));

    // A file with an error: good documents update, nothing is deleted.
    let broken = DocumentError { index: Some(1), message: "malformed YAML".into() };
    let a_broken = location("url:a", vec![entity("x", "edited")], vec![broken]);
    let (changes, _) = store.apply_location("s", &a_broken).await.unwrap();
    assert_eq!((changes.updated, changes.deleted), (1, 0));
    assert!(store.entity("component:default/y").await.unwrap().is_some(), "y survives the broken file");
    assert_eq!(store.locations_in_error("s").await.unwrap(), 2, "a and b are in error");

    // Clean again and without y: positive evidence, y goes; x keeps its uid through every edit.
    let a_clean = location("url:a", vec![entity("x", "edited")], vec![]);
    let (changes, _) = store.apply_location("s", &a_clean).await.unwrap();
    assert_eq!((changes.deleted, changes.unchanged), (1, 1));
    assert_eq!(store.entity("component:default/x").await.unwrap().unwrap().uid, x_uid);

    // A complete walk that no longer reaches a: its entities go with it.
    let pruned = store.prune_locations("s", &["url:b".to_owned()]).await.unwrap();
    assert_eq!(pruned.deleted, 1);
    assert!(store.entities(None).await.unwrap().is_empty());
    store.close().await;
}
