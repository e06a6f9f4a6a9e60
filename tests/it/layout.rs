//! The layout is the architecture: read from the `use` lines of `agent/` (tests aside), no layer
//! imports a later one, in the order the pipeline runs. A new module takes its place in the
//! order below.

use std::path::{Path, PathBuf};

/// Lowest first: each may use those before it, never those after.
const LAYERS: [&str; 15] = [
    "suggest",
    "yaml",
    "config",
    "telemetry",
    "retry",
    "source",
    "catalog",
    "template",
    "lint",
    "store",
    "reconcile",
    "notify",
    "serve",
    "app",
    "testkit",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file outside its `#[cfg(test)]` part (tests may reach anywhere).
fn production_code(text: &str) -> &str {
    text.find("#[cfg(test)]").map_or(text, |at| &text[..at])
}

/// Every `crate::<module>` a piece of code names, with the line it is on.
fn crate_references(code: &str) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    for (number, line) in code.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let module: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !module.is_empty() {
                found.push((module, number + 1));
            } else if rest.starts_with('{') {
                // `crate::{store, serve::x}`
                let items = group_items(rest).into_iter().filter_map(|path| path.into_iter().next());
                found.extend(items.map(|module| (module, number + 1)));
            }
        }
    }
    found
}

#[test]
fn no_layer_imports_a_later_one() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("agent");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let rank = |module: &str| LAYERS.iter().position(|l| *l == module);
    let mut wrong = Vec::new();
    let mut placed = 0;
    for file in &files {
        let relative = file.strip_prefix(&root).unwrap();
        let top = relative.iter().next().unwrap().to_str().unwrap().trim_end_matches(".rs").to_owned();
        // The crate root and the binaries wire everything.
        if matches!(top.as_str(), "lib" | "main" | "bin") {
            continue;
        }
        let own = rank(&top).unwrap_or_else(|| panic!("{top} (in {}) has no place in LAYERS", relative.display()));
        placed += 1;
        let text = std::fs::read_to_string(file).unwrap();
        for (module, line) in crate_references(production_code(&text)) {
            if rank(&module).is_some_and(|used| used > own) {
                wrong.push(format!("{}:{line}: {top} uses {module}", relative.display()));
            }
        }
    }
    assert!(placed > 100, "the walk found the modules ({placed} files)");
    assert!(wrong.is_empty(), "earlier layers import later ones:\n{}", wrong.join("\n"));
}

#[test]
fn the_check_sees_what_it_looks_for() {
    let code = "use crate::store::Store;\nfn f() { crate::serve::x(); }\n#[cfg(test)]\nuse crate::app;\n";
    assert_eq!(
        crate_references(production_code(code)),
        [("store".to_owned(), 1), ("serve".to_owned(), 2)],
        "references found, tests left out"
    );
    assert_eq!(
        crate_references("use crate::{store::Store, serve};\n"),
        [("store".to_owned(), 1), ("serve".to_owned(), 1)],
        "each item of a group"
    );
}

/// The module a file is: `store/diff.rs` → `["store", "diff"]`, `serve/auth/mod.rs` →
/// `["serve", "auth"]`.
fn module_of(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> =
        relative.iter().map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// Every module a piece of code names through `crate::…` or `super::…`, resolved to the longest
/// path that is a file among `modules`.
fn module_references(
    code: &str,
    own: &[String],
    modules: &std::collections::BTreeSet<Vec<String>>,
) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for (at, _) in code.match_indices("::") {
        let start = code[..at]
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let head = &code[start..at];
        if head != "crate" && head != "super" {
            continue;
        }
        // Only the start of a path: `crate::a::b`, `super::super::c`.
        if code[..start].ends_with("::") {
            continue;
        }
        let path: Vec<&str> = code[start..]
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .next()
            .unwrap_or_default()
            .split("::")
            .filter(|s| !s.is_empty())
            .collect();
        let mut base: Vec<String> =
            if head == "crate" { Vec::new() } else { own[..own.len().saturating_sub(1)].to_vec() };
        let mut rest = &path[1..];
        if head == "super" {
            while rest.first() == Some(&"super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        let head_path: Vec<String> = base.into_iter().chain(rest.iter().map(|s| (*s).to_owned())).collect();
        // `super::{a, b::c}` names `super::a` and `super::b::c`.
        let path_text = code[start..].split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).next();
        let after = &code[start + path_text.unwrap_or_default().len()..];
        let tails = if after.starts_with('{') { group_items(after) } else { vec![Vec::new()] };
        for tail in tails {
            let full: Vec<String> = head_path.iter().cloned().chain(tail).collect();
            let module = (1..=full.len()).rev().find(|n| modules.contains(&full[..*n])).map(|n| full[..n].to_vec());
            if let Some(module) = module.filter(|m| found.last() != Some(m)) {
                found.push(module);
            }
        }
    }
    found
}

/// The leading path of each item of a `{…}` group at the start of `text`: `{a, b::c, d::{e}}`
/// → `a`, `b::c`, `d`.
fn group_items(text: &str) -> Vec<Vec<String>> {
    let mut items = vec![String::new()];
    let mut depth = 0;
    for c in text.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 1 => break,
            '}' => depth -= 1,
            ',' if depth == 1 => items.push(String::new()),
            _ => {}
        }
        if depth == 1 && c != '{' && c != ',' {
            items.last_mut().unwrap().push(c);
        }
    }
    items
        .iter()
        .map(|item| {
            let path = item.trim().split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).next();
            path.unwrap_or_default().split("::").filter(|s| !s.is_empty()).map(str::to_owned).collect()
        })
        .collect()
}

#[test]
fn no_files_import_each_other_in_a_circle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("agent");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut code = std::collections::BTreeMap::new();
    for file in &files {
        let module = module_of(file.strip_prefix(&root).unwrap());
        // The crate root, the binaries and the test kit aside.
        if matches!(module[0].as_str(), "lib" | "main" | "bin" | "testkit") {
            continue;
        }
        code.insert(module, std::fs::read_to_string(file).unwrap());
    }
    let modules: std::collections::BTreeSet<Vec<String>> = code.keys().cloned().collect();
    let mut edges: std::collections::BTreeMap<Vec<String>, std::collections::BTreeSet<Vec<String>>> =
        std::collections::BTreeMap::new();
    for (module, text) in &code {
        for target in module_references(production_code(text), module, &modules) {
            // A module and its own parent or child (re-exports, `super::` items) are one unit.
            let related = target.starts_with(module) || module.starts_with(&target);
            if !related {
                edges.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    let mut circles = Vec::new();
    for start in edges.keys() {
        // A path from `start` back to itself, found breadth first.
        let mut previous: std::collections::BTreeMap<Vec<String>, Vec<String>> = std::collections::BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.clone()]);
        while let Some(at) = queue.pop_front() {
            for next in edges.get(&at).into_iter().flatten() {
                if next == start {
                    let mut circle = vec![at.join("/")];
                    let mut back = &at;
                    while let Some(p) = previous.get(back) {
                        circle.push(p.join("/"));
                        back = p;
                    }
                    circles.push(circle.join(" ← "));
                    queue.clear();
                    break;
                }
                if !previous.contains_key(next) && next != start {
                    previous.insert(next.clone(), at.clone());
                    queue.push_back(next.clone());
                }
            }
        }
    }
    assert!(modules.len() > 100, "the walk found the modules ({})", modules.len());
    assert!(circles.is_empty(), "files import each other in a circle:\n{}", circles.join("\n"));
}

#[test]
fn the_circle_check_resolves_paths_to_files() {
    let modules: std::collections::BTreeSet<Vec<String>> = [
        vec!["app".to_owned(), "sync".to_owned()],
        vec!["app".to_owned(), "pass".to_owned()],
        vec!["store".to_owned()],
    ]
    .into_iter()
    .collect();
    let own = vec!["app".to_owned(), "sync".to_owned()];
    let code = "use super::pass::{Context, Pass};\nuse crate::store::Store;\nfn f() { crate::serve::x(); }\n";
    assert_eq!(
        module_references(code, &own, &modules),
        [vec!["app".to_owned(), "pass".to_owned()], vec!["store".to_owned()]]
    );
    let grouped = "use super::{pass::{Context, Pass}, Thing};\nuse crate::{store, app::sync::x};\n";
    let app = |name: &str| vec!["app".to_owned(), name.to_owned()];
    assert_eq!(
        module_references(grouped, &own, &modules),
        [app("pass"), vec!["store".to_owned()], app("sync")],
        "items of a group are followed one by one"
    );
}
