//! Property tests: generated and mutated catalog files through the whole pure path (bytes →
//! YAML → entities) never panic, and what they produce stays bounded by what the file may
//! expand to. CI runs a bounded number of cases; for a longer local run:
//!
//! ```sh
//! PROPTEST_CASES=20000 cargo test --lib catalog::yaml::fuzz
//! ```

#![allow(clippy::format_collect)] // generated inputs, built for readability

use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use crate::catalog::{ingest, parse, Limits};
use crate::source::{MemoryTree, Origin, Snapshot};

/// Pieces hostile and ordinary files are made of: anchors and aliases (also across documents),
/// directives, tags, flow and block nesting, quotes, escapes, merge keys, BOMs, long scalars.
const PIECES: &[&str] = &[
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "%YAML 1.2\n",
    "%TAG ! tag:example.com,2000:\n",
    "a: &x [1, 2, 3]\n",
    "b: *x\n",
    "c: *y\n",
    "- *x\n",
    "&y ",
    "*x ",
    "spec: &spec {type: service, lifecycle: production, owner: team-a}\n",
    "spec: *spec\n",
    "<<: *x\n",
    "? [a, b]\n: c\n",
    "? {k: v}\n: c\n",
    "k: !!int abc\n",
    "k: !!float 3\n",
    "k: !foo 12\n",
    "!!map\n",
    "k: !!binary aGVsbG8=\n",
    "k: \"\\u0000\\x41\\q\"\n",
    "k: 'it''s'\n",
    "k: |\n  line\n  line\n",
    "k: >-\n  folded\n",
    "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: svc\nspec: {type: service, lifecycle: production, owner: team-a}\n",
    "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: loc\nspec:\n  targets: [./a.yaml, ./*.yaml, ../x.yaml]\n",
    "metadata:\n  name: x\n  annotations:\n    a: b\n",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "\u{feff}",
    "é",
    "# comment\n",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "- ",
    "\"",
    "'",
    "0123",
    "yes",
    ".inf",
    "0x1F",
    "2001-12-14t21:59:43.10-05:00",
    "1e400",
];

fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => proptest::sample::select(PIECES).prop_map(str::to_owned),
        1 => "[a-z:{}\\[\\]&*!|>'\"#%@`, \n-]{0,12}",
        1 => (1usize..600).prop_map(|depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth))),
        1 => (1usize..700).prop_map(|depth| (0..depth).map(|i| format!("{}k:\n", " ".repeat(i))).collect()),
        1 => (1usize..20_000).prop_map(|n| format!("k: {}\n", "x".repeat(n))),
        1 => (1usize..200).prop_map(|n| format!("l: &l [{}]\nm: [{}]\n", "1,".repeat(n), "*l,".repeat(n))),
    ]
}

fn file() -> impl Strategy<Value = Vec<u8>> {
    let text = proptest::collection::vec(piece(), 0..40).prop_map(|pieces| pieces.concat().into_bytes());
    // Mutations: bytes flipped anywhere (invalid UTF-8 included), as a fuzzer would.
    (text, proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4)).prop_map(
        |(mut bytes, flips)| {
            for (at, byte) in flips {
                if !bytes.is_empty() {
                    let i = at.index(bytes.len());
                    bytes[i] = byte;
                }
            }
            bytes
        },
    )
}

fn snapshot(content: Vec<u8>) -> Snapshot {
    let mut tree = MemoryTree::default().with("a.yaml", "kind: [");
    tree.0.insert("catalog-info.yaml".into(), content);
    Snapshot {
        source: "fuzz".into(),
        repo: "acme/fuzz".into(),
        revision: Some("abc".into()),
        origin: Origin::Git { web_url: "https://github.com/acme/fuzz".into(), branch: "main".into(), github: true },
        catalog_path: "catalog-info.yaml".into(),
        files: Arc::new(tree),
    }
}

/// 256 cases in CI (a second or two); `PROPTEST_CASES` for more.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256)
}

/// Far above any case's need; only a hang or a runaway would reach it.
const CASE_DEADLINE: Duration = Duration::from_secs(20);

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_file_reads_without_panic_in_bounded_time_and_size(content in file()) {
        let started = Instant::now();
        let text = String::from_utf8_lossy(&content).into_owned();
        let produced: usize = parse::documents(&text)
            .iter()
            .filter_map(|d| d.parsed.as_ref().ok())
            .map(|v| v.to_string().len())
            .sum();
        // Aliases may add at most four times the file, or 4 MiB; JSON text of what is there
        // is within a small factor of that.
        let bound = 8 * (4 * text.len()).max(4 * 1024 * 1024) + 8 * text.len();
        prop_assert!(produced <= bound, "{produced} bytes of JSON from {} bytes", text.len());

        let walked = ingest(&snapshot(content), Limits::default());
        prop_assert!(!walked.locations.is_empty());
        prop_assert!(walked.locations.iter().all(|l| !l.panicked), "{:?}", walked.locations);
        prop_assert!(started.elapsed() < CASE_DEADLINE, "took {:?}", started.elapsed());
    }
}
