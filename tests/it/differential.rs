//! Rigger's verdicts against Backstage's own published validators (`tests/backstage`, installed
//! by `scripts/install-test-deps`) on a generated corpus probing every rule at its boundaries.
//! Agreement on `ok` and `ref` per document is required, except for the differences listed in
//! `KNOWN_DIFFERENCES` (each explained in docs/backstage-differences.md and still checked to differ,
//! so the list cannot go stale).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::rigger::rigger;

/// `(file, document index, why)`.
const KNOWN_DIFFERENCES: [(&str, usize, &str); 0] = [];

type Verdicts = BTreeMap<(String, u64), (bool, Option<String>)>;

fn harness() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/backstage");
    assert!(dir.join("node_modules/@backstage/catalog-model").exists(), "run scripts/install-test-deps first");
    dir
}

fn verdicts(stdout: &[u8]) -> Verdicts {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            let file = Path::new(v["file"].as_str().unwrap()).file_name().unwrap().to_string_lossy().into_owned();
            ((file, v["index"].as_u64().unwrap()), (v["ok"].as_bool().unwrap(), v["ref"].as_str().map(str::to_owned)))
        })
        .collect()
}

#[test]
fn rigger_agrees_with_backstage_on_the_corpus() {
    let harness = harness();
    let corpus = tempfile::tempdir().unwrap();
    let made = Command::new("node").arg(harness.join("make-corpus.mjs")).arg(corpus.path()).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus.path()).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();

    let backstage = Command::new("node").arg(harness.join("validate.mjs")).args(&files).output().unwrap();
    assert!(
        backstage.status.success() || backstage.status.code() == Some(1),
        "{}",
        String::from_utf8_lossy(&backstage.stderr)
    );
    let backstage = verdicts(&backstage.stdout);
    let ours = rigger().args(["validate", "--no-follow", "--format", "json"]).args(&files).output().unwrap();
    let ours = verdicts(&ours.stdout);

    assert!(backstage.len() >= 300, "the corpus must hold at least 300 documents, has {}", backstage.len());
    for kind in ["component", "api", "resource", "system", "domain", "group", "user", "location", "template"] {
        let valid = backstage
            .values()
            .filter(|(ok, r)| *ok && r.as_deref().is_some_and(|r| r.starts_with(&format!("{kind}:"))))
            .count();
        assert!(valid >= 3, "the corpus needs valid {kind} documents, has {valid}");
    }

    let mut mismatches = Vec::new();
    let keys: std::collections::BTreeSet<_> = backstage.keys().chain(ours.keys()).cloned().collect();
    for key in keys {
        let known = KNOWN_DIFFERENCES.iter().find(|(f, i, _)| *f == key.0 && *i as u64 == key.1);
        let (theirs, mine) = (backstage.get(&key), ours.get(&key));
        match known {
            Some((_, _, why)) => {
                assert_ne!(theirs, mine, "known difference {key:?} ({why}) no longer differs; remove it");
            }
            None if theirs != mine => mismatches.push(format!("{key:?}: backstage {theirs:?}, rigger {mine:?}")),
            None => {}
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} documents disagree:\n{}",
        mismatches.len(),
        backstage.len(),
        mismatches.join("\n")
    );
}
