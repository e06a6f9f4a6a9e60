use std::sync::Arc;

use super::*;
use crate::source::MemoryTree;

fn snapshot(tree: MemoryTree) -> Snapshot {
    Snapshot {
        source: "test".into(),
        repo: "acme/platform".into(),
        revision: Some("abc".into()),
        origin: Origin::Git { web_url: "https://github.com/acme/platform".into(), branch: "main".into(), github: true },
        catalog_path: "catalog-info.yaml".into(),
        files: Arc::new(tree),
    }
}

const COMPONENT: &str = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: svc\nspec: { type: service, lifecycle: production, owner: team-a }\n";

fn refs(outcome: &LocationOutcome) -> Vec<String> {
    outcome.entities.iter().map(|e| e.entity_ref.to_string()).collect()
}

#[test]
fn location_targets_are_followed_and_annotated() {
    let root = "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: { name: root }\nspec:\n  targets: [./a/catalog-info.yaml, ./b/catalog-info.yaml]\n";
    let tree = MemoryTree::default()
        .with("catalog-info.yaml", root)
        .with("a/catalog-info.yaml", COMPONENT)
        .with("b/catalog-info.yaml", &COMPONENT.replace("svc", "other"));
    let ingest = ingest(&snapshot(tree), Limits::default());
    assert!(ingest.is_complete(), "{:?}", ingest.locations);
    assert_eq!(ingest.locations.len(), 3);
    let a = &ingest.locations[1];
    assert_eq!(refs(a), vec!["component:default/svc"]);
    let annotations = &a.entities[0].body["metadata"]["annotations"];
    assert_eq!(annotations[ANNOTATION_LOCATION], "url:https://github.com/acme/platform/tree/main/a/catalog-info.yaml");
    assert_eq!(
        annotations[ANNOTATION_ORIGIN_LOCATION],
        "url:https://github.com/acme/platform/blob/main/catalog-info.yaml"
    );
    assert_eq!(annotations["backstage.io/source-location"], "url:https://github.com/acme/platform/tree/main/a/");
}

#[test]
fn one_bad_document_does_not_drop_its_siblings() {
    let text = format!("{COMPONENT}---\n- not a mapping\n---\napiVersion: v1\nkind: Component\nmetadata: {{}}\n");
    let ingest = ingest(&snapshot(MemoryTree::default().with("catalog-info.yaml", &text)), Limits::default());
    let root = &ingest.locations[0];
    assert_eq!(refs(root), vec!["component:default/svc"]);
    let indexes: Vec<_> = root.errors.iter().map(|e| e.index).collect();
    assert_eq!(indexes, vec![Some(1), Some(2)]);
    assert!(!ingest.is_complete());
}

#[test]
fn missing_root_file_is_an_unread_location() {
    let ingest = ingest(&snapshot(MemoryTree::default()), Limits::default());
    let root = &ingest.locations[0];
    assert!(!root.read);
    assert_eq!(root.errors[0].message, "not found in acme/platform at this revision");
}

#[test]
fn escaping_targets_are_errors_on_the_location_document() {
    let root = "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: { name: root }\nspec: { targets: [../../etc/passwd, /abs.yaml] }\n";
    let ingest = ingest(&snapshot(MemoryTree::default().with("catalog-info.yaml", root)), Limits::default());
    assert_eq!(ingest.locations.len(), 1);
    assert_eq!(ingest.locations[0].errors.len(), 2);
    assert_eq!(refs(&ingest.locations[0]), vec!["location:default/root"]);
}

#[test]
fn cycles_terminate_and_depth_is_bounded() {
    let loc = |name: &str, target: &str| {
        format!("apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {{ name: {name} }}\nspec: {{ target: {target} }}\n")
    };
    let tree = MemoryTree::default()
        .with("catalog-info.yaml", &loc("root", "./a.yaml"))
        .with("a.yaml", &loc("a", "./b.yaml"))
        .with("b.yaml", &loc("b", "./catalog-info.yaml"));
    let ingest = ingest(&snapshot(tree.clone()), Limits::default());
    assert_eq!(ingest.locations.len(), 3);
    assert!(ingest.is_complete());

    let shallow = Limits { max_depth: 1, ..Limits::default() };
    let ingest = super::ingest(&snapshot(tree), shallow);
    assert_eq!(ingest.locations.len(), 2);
    assert!(ingest.locations[1].errors[0].message.contains("maximum depth of 1"));
}

#[test]
fn duplicate_ref_in_one_file_is_an_error() {
    let text = format!("{COMPONENT}---\n{}", COMPONENT.replace("svc", "SVC"));
    let ingest = ingest(&snapshot(MemoryTree::default().with("catalog-info.yaml", &text)), Limits::default());
    assert_eq!(ingest.locations[0].entities.len(), 1);
    assert!(ingest.locations[0].errors[0].message.contains("duplicate entity component:default/svc"));
}

#[test]
fn authors_derived_annotations_win_but_managed_by_is_ours() {
    let text = "apiVersion: backstage.io/v1alpha1\nkind: Component\nspec: { type: service, lifecycle: production, owner: team-a }\nmetadata:\n  name: x\n  annotations:\n    backstage.io/view-url: https://docs.example/x\n    backstage.io/managed-by-location: url:https://spoof\n";
    let ingest = ingest(&snapshot(MemoryTree::default().with("catalog-info.yaml", text)), Limits::default());
    let annotations = &ingest.locations[0].entities[0].body["metadata"]["annotations"];
    assert_eq!(annotations["backstage.io/view-url"], "https://docs.example/x");
    assert_eq!(annotations[ANNOTATION_LOCATION], "url:https://github.com/acme/platform/blob/main/catalog-info.yaml");
}

fn location(targets: &str, presence: &str) -> String {
    format!("apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {{ name: root }}\nspec:\n  presence: {presence}\n  targets: {targets}\n")
}

#[test]
fn glob_targets_match_files_one_level_deep() {
    let tree = MemoryTree::default()
        .with("catalog-info.yaml", &location("[./services/*/catalog-info.yaml]", "required"))
        .with("services/a/catalog-info.yaml", &COMPONENT.replace("svc", "a"))
        .with("services/b/catalog-info.yaml", &COMPONENT.replace("svc", "b"))
        .with("services/b/deep/catalog-info.yaml", &COMPONENT.replace("svc", "deep"));
    let ingest = ingest(&snapshot(tree), Limits::default());
    let paths: Vec<&str> = ingest.locations.iter().map(|l| l.path.as_str()).collect();
    assert_eq!(paths, ["catalog-info.yaml", "services/a/catalog-info.yaml", "services/b/catalog-info.yaml"]);
    assert!(ingest.is_complete());
}

#[test]
fn optional_targets_may_be_missing_and_required_ones_may_not() {
    let optional = MemoryTree::default().with("catalog-info.yaml", &location("[./gone.yaml]", "optional"));
    let ingest = super::ingest(&snapshot(optional), Limits::default());
    assert_eq!(ingest.locations.len(), 1);
    assert!(ingest.is_complete());

    let required = MemoryTree::default().with("catalog-info.yaml", &location("[./gone.yaml]", "required"));
    let ingest = super::ingest(&snapshot(required), Limits::default());
    assert_eq!(ingest.locations.len(), 2);
    assert!(!ingest.locations[1].read);
}

#[test]
fn placeholders_are_resolved_from_the_same_snapshot() {
    let api = "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata: { name: pay }\nspec:\n  type: openapi\n  lifecycle: production\n  owner: team-a\n  definition:\n    $text: ./openapi.yaml\n";
    let tree = MemoryTree::default().with("catalog-info.yaml", api).with("openapi.yaml", "openapi: 3.0.0\n");
    let ingest = ingest(&snapshot(tree), Limits::default());
    assert_eq!(ingest.locations[0].entities[0].body["spec"]["definition"], "openapi: 3.0.0\n");

    let escaping = api.replace("./openapi.yaml", "../../../etc/passwd");
    let ingest =
        super::ingest(&snapshot(MemoryTree::default().with("catalog-info.yaml", &escaping)), Limits::default());
    assert!(ingest.locations[0].entities.is_empty());
    assert!(ingest.locations[0].errors[0].message.contains("escapes the repository"));
}

/// A tree whose reads of one path panic, standing in for a bug met while reading a file.
struct PanicsOn(MemoryTree, &'static str);

impl crate::source::FileTree for PanicsOn {
    fn read(&self, path: &str, max_bytes: usize) -> Result<Option<Vec<u8>>, crate::source::TreeError> {
        assert_ne!(path, self.1, "a bug while reading {path}");
        self.0.read(path, max_bytes)
    }

    fn list(&self) -> Result<Vec<String>, crate::source::TreeError> {
        self.0.list()
    }
}

#[test]
fn a_panic_while_reading_a_file_fails_that_file_alone() {
    let root = "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: { name: root }\nspec:\n  targets: [./a/catalog-info.yaml, ./b/catalog-info.yaml]\n";
    let tree = MemoryTree::default()
        .with("catalog-info.yaml", root)
        .with("a/catalog-info.yaml", COMPONENT)
        .with("b/catalog-info.yaml", &COMPONENT.replace("svc", "other"));
    let mut snap = snapshot(MemoryTree::default());
    snap.files = Arc::new(PanicsOn(tree, "a/catalog-info.yaml"));
    let ingest = ingest(&snap, Limits::default());
    let a = &ingest.locations[1];
    assert!(a.panicked && !a.declares_all(), "{a:?}");
    assert!(a.errors[0].message.contains("a bug while reading a/catalog-info.yaml"), "{:?}", a.errors);
    assert_eq!(refs(&ingest.locations[2]), vec!["component:default/other"], "the sibling is read");
}
