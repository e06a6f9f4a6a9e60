#![allow(clippy::format_collect, clippy::format_push_string)] // test inputs, built for readability
use serde_json::json;

use super::*;

fn values(text: &str) -> Vec<(usize, Result<Option<Value>, String>)> {
    read(text, ReadLimits::default()).into_iter().map(|d| (d.index, d.parsed)).collect()
}

fn ok(text: &str) -> Value {
    let docs = values(text);
    assert_eq!(docs.len(), 1, "{docs:?}");
    docs[0].1.clone().unwrap().unwrap()
}

fn error(text: &str, index: usize) -> String {
    let docs = values(text);
    let found = docs.iter().find(|(i, _)| *i == index).unwrap_or_else(|| panic!("no document {index}: {docs:?}"));
    found.1.clone().unwrap_err()
}

#[test]
fn documents_are_counted_with_empty_ones_and_typed_by_the_core_schema() {
    let docs = values("a: 1\n---\n---\nb: 0123\nc: yes\n");
    assert_eq!(docs.len(), 3, "{docs:?}");
    assert_eq!(docs[1].1, Ok(None));
    assert_eq!(docs[2].1, Ok(Some(json!({"b": 123, "c": "yes"}))));
}

#[test]
fn a_yaml_1_1_directive_switches_typing_and_carries_on() {
    let docs = values("%YAML 1.1\n---\na: yes\n---\nb: on\n");
    assert_eq!(docs[0].1, Ok(Some(json!({"a": true}))));
    assert_eq!(docs[1].1, Ok(Some(json!({"b": true}))));
}

#[test]
fn keys_are_javascript_object_keys() {
    assert_eq!(ok("~: 1\ntrue: 2\n1.0: 3\n0x10: 4\n"), json!({"": 1, "true": 2, "1": 3, "16": 4}));
    assert_eq!(ok("? [a, b]\n: 1\n"), json!({"[ a, b ]": 1}));
    assert_eq!(ok("1: a\n\"1\": b\n"), json!({"1": "b"}), "a number and a string key are different keys");
}

#[test]
fn duplicate_keys_fail_their_document_only() {
    let docs = values("a: 1\na: 2\n---\nc: 3\n");
    assert!(docs[0].1.as_ref().unwrap_err().contains("unique"), "{docs:?}");
    assert_eq!(docs[1].1, Ok(Some(json!({"c": 3}))));
}

#[test]
fn tags_resolve_as_the_yaml_package_does() {
    let value = ok("a: !foo 123\nb: !!int abc\nc: !!str 12\nd: !!float 3\ne: !!int '7'\n<<: {x: 1}\n");
    assert_eq!(value, json!({"a": "123", "b": "abc", "c": "12", "d": "3", "e": 7, "<<": {"x": 1}}));
}

#[test]
fn reading_resumes_after_a_syntax_error_at_the_next_document() {
    let docs = values("a: 1\n---\nb: [unclosed\n---\nc: 3\n");
    assert_eq!(docs.len(), 3, "{docs:?}");
    let message = docs[1].1.as_ref().unwrap_err();
    assert!(message.starts_with("malformed YAML at line "), "{message}");
    assert_eq!((docs[2].0, docs[2].1.clone()), (2, Ok(Some(json!({"c": 3})))));
}

#[test]
fn an_unclosed_quote_swallows_the_rest_of_the_file() {
    let docs = values("a: \"unclosed\n---\nc: 3\n");
    assert_eq!(docs.len(), 1, "{docs:?}");
    assert!(docs[0].1.is_err());
}

#[test]
fn aliases_resolve_within_their_document_only() {
    assert_eq!(ok("a: &x {k: 1}\nb: *x\n"), json!({"a": {"k": 1}, "b": {"k": 1}}));
    let docs = values("a: &s {x: 1}\n---\nspec: *s\n---\nc: 1\n");
    assert!(docs[0].1.is_ok());
    assert!(docs[1].1.is_err(), "{docs:?}");
    assert_eq!(docs[2].1, Ok(Some(json!({"c": 1}))));
    assert!(error("a: *nope\n", 0).contains("alias") || error("a: *nope\n", 0).contains("anchor"));
    assert!(error("a: &a [*a]\n", 0).contains("alias"), "{}", error("a: &a [*a]\n", 0));
}

#[test]
fn the_alias_budget_is_backstages() {
    // The anchor counts as the first use: 99 aliases pass; the 100th stops the file.
    let uses: String = (0..99).map(|i| format!("  k{i}: *x\n")).collect();
    let text = format!("a: &x [1, 2, 3]\nb:\n{uses}---\nc: 1\n");
    let docs = values(&text);
    assert!(docs[0].1.is_ok(), "{docs:?}");
    let text = format!("a: &x [1, 2, 3]\nb:\n{uses}  k99: *x\n---\nc: 1\n");
    let docs = values(&text);
    assert_eq!(docs.len(), 1, "the rest of the file is not read: {docs:?}");
    assert!(docs[0].1.as_ref().unwrap_err().contains("resource exhaustion"));
    // Nested aliases weigh by their target's uses: y weighs 11 (x's ten aliases and itself),
    // so its 8th alias (9 × 11 = 99) passes and its 9th (10 × 11) does not, as in Backstage.
    let nested = |uses: usize| {
        let inner: String = (0..10).map(|_| "*x, ").collect();
        let outer: String = (0..uses).map(|_| "*y, ").collect();
        values(&format!("a: &x [1]\nb: &y [{inner}]\nc: [{outer}]\n"))[0].1.clone()
    };
    assert!(nested(8).is_ok());
    assert!(nested(9).unwrap_err().contains("resource exhaustion"));
}

#[test]
fn an_alias_bomb_is_refused_in_bounded_memory() {
    let list: String = (0..25_000).map(|i| format!("{i},")).collect();
    let uses: String = (0..25_000).map(|i| format!("  k{i}: *a\n")).collect();
    let text = format!("a: &a [{list}]\nb:\n{uses}");
    let docs = values(&text);
    assert_eq!(docs.len(), 1);
    let message = docs[0].1.as_ref().unwrap_err();
    assert!(message.contains("resource exhaustion") || message.contains("expand"), "{message}");
}

#[test]
fn copies_are_bounded_by_the_files_size() {
    // Within the alias count, but each copy is large: the expansion bound stops it.
    let list: String = (0..200_000).map(|_| "1,").collect();
    let uses: String = (0..60).map(|i| format!("  k{i}: *a\n")).collect();
    let text = format!("a: &a [{list}]\nb:\n{uses}");
    assert!(error(&text, 0).contains("expand"), "{}", error(&text, 0));
}

fn block_nesting(levels: usize) -> String {
    (0..levels).map(|i| format!("{}k:\n", " ".repeat(i))).collect::<String>() + &" ".repeat(levels) + "v\n"
}

#[test]
fn nesting_is_bounded() {
    let message = error(&block_nesting(MAX_DEPTH + 1), 0);
    assert!(message.contains("nesting"), "{message}");
    assert!(values(&block_nesting(500))[0].1.is_ok(), "Backstage reads 500 levels");
}

#[test]
fn documents_past_the_limit_are_refused_once() {
    let text = "a: 1\n---\nb: 2\n---\nc: 3\n";
    let docs: Vec<_> = read(text, ReadLimits { max_documents: 2 }).into_iter().map(|d| d.parsed).collect();
    assert_eq!(docs.len(), 3);
    assert!(docs[2].as_ref().unwrap_err().contains("max_documents_per_file"));
}

#[test]
fn errors_carry_a_line_and_column() {
    let message = error("a: 1\nb: \"\\x\"\n", 0);
    assert!(message.contains("line 2"), "{message}");
    let message = error("a: 1\n---\nb: 1\nb: 2\n", 1);
    assert!(message.contains("unique") && message.contains("line 4, column 4"), "{message}");
    let message = error("a: 1\n---\nb: *nope\n", 1);
    assert!(message.contains("line 3"), "{message}");
}

#[test]
fn aliases_of_empty_collections_are_not_free() {
    // Each level copies the previous ten times; empty collections weigh 0 for the alias count,
    // so only the copy bound stops this.
    let mut text = "a0: &e0 []\n".to_owned();
    for level in 1..10 {
        let uses = (0..10).map(|_| format!("*e{}", level - 1)).collect::<Vec<_>>().join(", ");
        text.push_str(&format!("a{level}: &e{level} [{uses}]\n"));
    }
    let message = error(&text, 0);
    assert!(message.contains("expand"), "{message}");
}

#[test]
fn nested_anchors_are_charged_for_their_copies() {
    let depth = 200;
    let text = format!("a: {}\"{}\"{}\n", "&x [".repeat(depth), "y".repeat(100_000), "]".repeat(depth));
    let message = error(&text, 0);
    assert!(message.contains("expand"), "{message}");
}

#[test]
fn aliases_cannot_nest_past_the_bound() {
    // Each anchor is 100 levels deep and holds the previous one: six of them pass 512.
    let mut text = String::new();
    let mut previous = "1".to_owned();
    for i in 0..6 {
        text.push_str(&format!("a{i}: &a{i} {}{previous}{}\n", "[".repeat(100), "]".repeat(100)));
        previous = format!("*a{i}");
    }
    let message = error(&text, 0);
    assert!(message.contains("nesting"), "{message}");
}

#[test]
fn merge_keys_apply_under_yaml_1_1_only() {
    let text = "a: &x {b: 1, d: 0}\nc:\n  d: 2\n  <<: *x\n  e: 3\n";
    assert_eq!(ok(text)["c"], json!({"d": 2, "<<": {"b": 1, "d": 0}, "e": 3}));
    let docs = values(&format!("%YAML 1.1\n---\n{text}"));
    assert_eq!(docs[0].1.clone().unwrap().unwrap()["c"], json!({"d": 2, "b": 1, "e": 3}));
    let list = "%YAML 1.1\n---\na: &x {b: 1}\nz: &y {b: 2, c: 2}\nc:\n  <<: [*x, *y]\n";
    assert_eq!(values(list)[0].1.clone().unwrap().unwrap()["c"], json!({"b": 1, "c": 2}));
}
