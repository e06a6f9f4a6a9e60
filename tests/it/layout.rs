//! The layout is the architecture: read from the `use` lines of `agent/` (tests aside), no layer
//! imports a later one, in the order the pipeline runs. A new module takes its place in the
//! order below.

use std::path::{Path, PathBuf};

/// Lowest first: each may use those before it, never those after.
const LAYERS: [&str; 12] = [
    "suggest",
    "yaml",
    "config",
    "telemetry",
    "source",
    "catalog",
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
}
