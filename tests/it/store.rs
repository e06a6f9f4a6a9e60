//! The store against real SQLite and PostgreSQL: per-location transactions, no-op writes,
//! first-claimant conflicts, and deletion only on positive evidence.

use rigger::catalog::{DocumentError, Entity, EntityRef, Ingest, LocationOutcome, OrphanStrategy};
use rigger::store::diff::Walk;
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
    let mut outcome = LocationOutcome::new(key.into(), format!("{key}.yaml"));
    outcome.read = true;
    outcome.unattributed = !errors.is_empty();
    outcome.entities = entities;
    outcome.errors = errors;
    outcome
}

/// Applies one location of a walk of source `s` that reached `walk`.
async fn apply_in(
    store: &Store,
    outcome: &LocationOutcome,
    walk: &[&LocationOutcome],
) -> (rigger::store::Changes, Vec<DocumentError>) {
    let walk = Walk::of("s", &Ingest { locations: walk.iter().map(|l| (*l).clone()).collect() });
    store.apply_location("s", outcome, &walk, OrphanStrategy::Delete).await.unwrap()
}

/// Applies one location as if it were the whole walk of source `s`.
async fn apply(store: &Store, outcome: &LocationOutcome) -> (rigger::store::Changes, Vec<DocumentError>) {
    apply_in(store, outcome, &[outcome]).await
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
    let (changes, conflicts) = apply(&store, &a).await;
    assert_eq!((changes.added, changes.entity_writes(), conflicts.len()), (2, 2, 0));
    let x_uid = store.entity("component:default/x").await.unwrap().unwrap().uid;

    let (changes, _) = apply(&store, &a).await;
    assert_eq!((changes.entity_writes(), changes.unchanged), (0, 2), "unchanged entities cost no write");

    // A second location claiming x: the first claimant keeps it, the newcomer records a conflict.
    let b = location("url:b", vec![entity("X", "two")], vec![]);
    let (changes, conflicts) = apply_in(&store, &b, &[&a, &b]).await;
    assert_eq!((changes.conflicts, changes.entity_writes()), (1, 0));
    assert!(conflicts[0].message.contains("url:a") && conflicts[0].message.contains("url:b"), "{conflicts:?}");
    let x = store.entity("component:default/x").await.unwrap().unwrap();
    assert_eq!((x.location_key.as_str(), x.body["metadata"]["description"].as_str()), ("url:a", Some("one")));

    // A file with an error: good documents update, nothing is deleted.
    let broken = DocumentError { index: Some(1), line: None, message: "malformed YAML".into() };
    let a_broken = location("url:a", vec![entity("x", "edited")], vec![broken]);
    let (changes, _) = apply_in(&store, &a_broken, &[&a_broken, &b]).await;
    assert_eq!((changes.updated, changes.deleted), (1, 0));
    assert!(store.entity("component:default/y").await.unwrap().is_some(), "y survives the broken file");
    assert_eq!(store.locations_in_error("s").await.unwrap(), 2, "a and b are in error");

    // Clean again and without y: positive evidence, y goes; x keeps its uid through every edit.
    let a_clean = location("url:a", vec![entity("x", "edited")], vec![]);
    let (changes, _) = apply_in(&store, &a_clean, &[&a_clean, &b]).await;
    assert_eq!((changes.deleted, changes.unchanged), (1, 1));
    assert_eq!(store.entity("component:default/x").await.unwrap().unwrap().uid, x_uid);

    // A complete walk that no longer reaches a: its entities go with it.
    let pruned = store.prune_locations("s", &["url:b".to_owned()], OrphanStrategy::Delete).await.unwrap();
    assert_eq!(pruned.deleted, 1);
    assert!(store.entities(None).await.unwrap().is_empty());
    store.close().await;
}

#[tokio::test]
async fn sqlite_full_text_uses_the_fts5_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = full_text_semantics(&TestDb::sqlite(dir.path())).await;
    let plan = store.explain(&text_query("gateway")).await.unwrap();
    assert!(plan.contains("VIRTUAL TABLE INDEX"), "FTS5 lookup expected, got:\n{plan}");
    // A term shorter than a trigram cannot use the index; it still matches, by scanning.
    let plan = store.explain(&text_query("ga")).await.unwrap();
    assert!(!plan.contains("VIRTUAL TABLE"), "short terms scan, got:\n{plan}");
}

#[tokio::test]
async fn postgres_full_text_semantics() {
    full_text_semantics(&TestDb::postgres().await).await;
}

fn text_query(term: &str) -> rigger::store::EntityQuery {
    rigger::store::EntityQuery {
        full_text: Some((term.to_owned(), vec!["metadata.description".to_owned()])),
        ..Default::default()
    }
}

/// Substring semantics of `fullTextFilterTerm`, whichever index serves it: case-insensitive,
/// short terms, quotes and LIKE wildcards taken literally, and updates seen at once.
async fn full_text_semantics(db: &TestDb) -> Store {
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    let a = location(
        "url:a",
        vec![
            entity("pay", "Payment GATEWAY for cards"),
            entity("quote", r#"says "hello" at 50% volume"#),
            entity("plain", "nothing to see"),
        ],
        vec![],
    );
    apply(&store, &a).await;
    let found = |term: &'static str| {
        let store = store.clone();
        async move {
            let (mut refs, total) = store.query_refs(&text_query(term)).await.unwrap();
            refs.sort();
            assert_eq!(refs.len(), total);
            refs
        }
    };
    assert_eq!(found("gateway").await, ["component:default/pay"]);
    assert_eq!(found("ment gate").await, ["component:default/pay"], "spaces are part of the substring");
    assert_eq!(found("ga").await, ["component:default/pay"], "terms shorter than a trigram still match");
    assert_eq!(found("\"hello\"").await, ["component:default/quote"], "quotes are literal");
    assert_eq!(found("50%").await, ["component:default/quote"], "% is literal");
    assert!(found("%").await == ["component:default/quote"]);
    assert!(found("gateways").await.is_empty());

    // The index follows updates in the same transaction: the old text no longer matches.
    let a = location("url:a", vec![entity("pay", "Billing"), entity("plain", "nothing to see")], vec![]);
    apply(&store, &a).await;
    assert!(found("gateway").await.is_empty());
    assert_eq!(found("billing").await, ["component:default/pay"]);
    assert!(found("hello").await.is_empty(), "a removed entity's text is gone");
    store
}

#[tokio::test]
async fn the_postgres_pool_has_room_for_every_pass_and_the_api() {
    // Lazy: nothing connects, so no server is needed to check the sizing.
    let url = "postgres://rigger@127.0.0.1:1/none";
    let four = Store::open_lazy_for(url, 4).unwrap();
    let per_pass = 1 + u32::try_from(rigger::store::MAX_LOCATION_WRITERS).unwrap();
    assert_eq!(four.pool_size(), rigger::store::API_CONNECTIONS + 4 * per_pass);
    assert_eq!(Store::open_lazy_for("sqlite://x.db", 4).unwrap().pool_size(), 4, "SQLite has one writer");
}

#[tokio::test]
async fn sqlite_a_claim_on_an_entity_its_holder_dropped_meanwhile_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    a_claim_on_an_entity_its_holder_dropped_meanwhile_is_taken(&TestDb::sqlite(dir.path())).await;
}

#[tokio::test]
async fn postgres_a_claim_on_an_entity_its_holder_dropped_meanwhile_is_taken() {
    a_claim_on_an_entity_its_holder_dropped_meanwhile_is_taken(&TestDb::postgres().await).await;
}

/// Two sources' passes interleaved: the claimant's file is written while the holder still has
/// the entity, the holder's pass then deletes its location, and only then does the claimant
/// settle. The entity must be the claimant's, not lost until the claimant's next commit.
async fn a_claim_on_an_entity_its_holder_dropped_meanwhile_is_taken(db: &TestDb) {
    use rigger::store::diff::Declared;
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    let held = location("url:holder", vec![entity("pay", "held")], vec![]);
    let holder = Walk::of("holder", &Ingest { locations: vec![held.clone()] });
    store.apply_location("holder", &held, &holder, OrphanStrategy::Delete).await.unwrap();

    let claim = location("url:claimant", vec![entity("pay", "claimed")], vec![]);
    let (_, left) = store.apply_location_streamed("claimant", &claim, &Declared::of(&claim)).await.unwrap();
    assert_eq!(left.claims.len(), 1, "held by the other source while the claimant's file is written");

    let gone = store.delete_locations(&["url:holder".to_owned()], OrphanStrategy::Delete).await.unwrap();
    assert_eq!(gone.deleted, 1);

    let claimant = Walk::of("claimant", &Ingest { locations: vec![claim.clone()] });
    let (changes, conflicts) = store.settle("claimant", &claimant, &left, OrphanStrategy::Delete).await.unwrap();
    assert!(conflicts.is_empty(), "{conflicts:?}");
    assert_eq!(changes.added, 1);
    let pay = store.entity("component:default/pay").await.unwrap().expect("the claimant takes the freed entity");
    assert_eq!(
        (pay.location_key.as_str(), pay.body["metadata"]["description"].as_str()),
        ("url:claimant", Some("claimed"))
    );
}

#[tokio::test]
async fn sqlite_a_batch_of_files_is_written_as_each_file_would_be_alone() {
    let dir = tempfile::tempdir().unwrap();
    a_batch_of_files_is_written_as_each_file_would_be_alone(&TestDb::sqlite(dir.path())).await;
}

#[tokio::test]
async fn postgres_a_batch_of_files_is_written_as_each_file_would_be_alone() {
    a_batch_of_files_is_written_as_each_file_would_be_alone(&TestDb::postgres().await).await;
}

/// Small files share one transaction and one statement per step; the outcome must be what
/// writing them one after another gives: a ref two files of the batch declare goes to the
/// first, the second is left a claim to settle, and each file's state is recorded.
async fn a_batch_of_files_is_written_as_each_file_would_be_alone(db: &TestDb) {
    use rigger::store::diff::Declared;
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    let broken = DocumentError { index: Some(1), line: None, message: "malformed YAML".into() };
    let files = [
        location("url:one", vec![entity("a", "one"), entity("shared", "one")], vec![]),
        location("url:two", vec![entity("b", "two"), entity("shared", "two")], vec![]),
        location("url:three", vec![entity("c", "three")], vec![broken]),
    ];
    let declared: Vec<Declared> = files.iter().map(Declared::of).collect();
    let batch: Vec<_> = files.iter().zip(&declared).collect();
    let written = store.apply_locations_streamed("s", &batch).await.unwrap();
    let added: Vec<u64> = written.iter().map(|(c, _)| c.added).collect();
    assert_eq!(added, [2, 1, 1]);
    let claims: Vec<Vec<String>> =
        written.iter().map(|(_, d)| d.claims.iter().map(|(e, _)| e.entity_ref.to_string()).collect()).collect();
    assert_eq!(claims, [vec![], vec!["component:default/shared".to_owned()], vec![]]);
    let shared = store.entity("component:default/shared").await.unwrap().unwrap();
    assert_eq!(
        (shared.location_key.as_str(), shared.body["metadata"]["description"].as_str()),
        ("url:one", Some("one"))
    );
    let states = store.locations().await.unwrap();
    let states: Vec<(&str, &str)> = states.iter().map(|l| (l.location_key.as_str(), l.state.as_str())).collect();
    assert_eq!(states, [("url:one", "ok"), ("url:three", "error"), ("url:two", "ok")]);

    // Written again, unchanged: no entity written.
    let again = store.apply_locations_streamed("s", &batch).await.unwrap();
    let unchanged: Vec<(u64, u64)> = again.iter().map(|(c, _)| (c.entity_writes(), c.unchanged)).collect();
    assert_eq!(unchanged, [(0, 2), (0, 1), (0, 1)]);
}

#[tokio::test]
async fn sqlite_commit_status_claims_post_each_change_of_state_once() {
    let dir = tempfile::tempdir().unwrap();
    commit_status_claims(&TestDb::sqlite(dir.path())).await;
}

#[tokio::test]
async fn postgres_commit_status_claims_post_each_change_of_state_once() {
    commit_status_claims(&TestDb::postgres().await).await;
}

async fn commit_status_claims(db: &TestDb) {
    use rigger::store::StatusClaim::{Claimed, Held, Posted};
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    let claim = |state: &'static str| {
        let store = store.clone();
        async move { store.claim_commit_status("api/acme/pay", "abc", "rigger/catalog", state).await.unwrap() }
    };
    assert_eq!(claim("pending").await, Claimed);
    assert_eq!(claim("pending").await, Held, "claimed by someone else, not posted yet");
    store.mark_commit_status_posted("api/acme/pay", "abc", "rigger/catalog").await.unwrap();
    assert_eq!(claim("pending").await, Posted);
    assert_eq!(claim("failure").await, Claimed, "a change of state is posted");
    store.release_commit_status("api/acme/pay", "abc", "rigger/catalog").await.unwrap();
    assert_eq!(claim("failure").await, Claimed, "a claim given back is taken again");
    store.mark_commit_status_posted("api/acme/pay", "abc", "rigger/catalog").await.unwrap();
    assert_eq!(claim("failure").await, Posted);
    assert_eq!(claim("pending").await, Held, "a final verdict is never followed by pending");
    assert_eq!(claim("success").await, Claimed, "the errors cleared without a new commit");
}
