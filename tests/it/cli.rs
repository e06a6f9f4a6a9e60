//! The command-line contract: `validate` output formats, exit codes 0 / 1 / 64, shipped configs.

use std::path::Path;

use rigger::config::{Config, SourceKind};
use serde_json::Value;

use crate::support::rigger::{rigger, stdout};

#[test]
fn shipped_configs_load() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let local = Config::load(&root.join("config/rigger.yaml")).unwrap();
    assert!(local.sources.iter().any(|s| matches!(s.kind, SourceKind::Local(_))));
    assert!(matches!(&local.database, rigger::config::DatabaseConfig::Url(url) if url.starts_with("sqlite://")));
    let production = Config::load(&root.join("config/production.example.yaml")).unwrap();
    assert!(production.sources.iter().any(|s| matches!(s.kind, SourceKind::Github(_))));
    assert!(production.kubernetes.is_some());
    assert!(matches!(production.database, rigger::config::DatabaseConfig::Secret(_)));
}

#[test]
fn validate_prints_one_json_object_per_document() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: { name: Foo }\nspec: { type: service, lifecycle: production, owner: team-a }\n").unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: v1\nkind: Group\nmetadata: { name: ok-team }\n---\nkind: Component\nmetadata: {}\n",
    )
    .unwrap();

    let out = rigger().args(["validate", "--format", "json"]).arg(&good).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["file"], good.display().to_string());
    assert_eq!((lines[0]["index"].as_u64(), lines[0]["ok"].as_bool()), (Some(0), Some(true)));
    assert_eq!(lines[0]["ref"], "component:default/foo");
    assert_eq!(lines[0]["error"], Value::Null);
    assert_eq!(lines[1]["ref"], "group:default/ok-team");
    assert_eq!((lines[2]["index"].as_u64(), lines[2]["ok"].as_bool()), (Some(1), Some(false)));
    assert_eq!(lines[2]["ref"], Value::Null);
    assert_eq!(lines[2]["error"], "Entity envelope failed validation: <root> must have required property 'apiVersion'");

    let out = rigger().args(["validate", "--format", "json"]).arg(&good).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn validate_github_format_annotates_the_failing_document() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("catalog-info.yaml");
    std::fs::write(&bad, "apiVersion: v1\nkind: Group\nmetadata: { name: a }\n---\napiVersion: v1\nkind: Component\nmetadata: { name: -bad- }\n").unwrap();
    let out = rigger().args(["validate", "--format", "github"]).arg(&bad).output().unwrap();
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "::error file={},line=7,col=13::document 1: \"metadata.name\" is not valid",
            bad.display()
        )),
        "{text}"
    );
}

#[test]
fn usage_and_config_errors_exit_64() {
    assert_eq!(rigger().arg("validate").output().unwrap().status.code(), Some(64), "validate needs a path");
    assert_eq!(rigger().arg("frobnicate").output().unwrap().status.code(), Some(64));

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rigger.yaml");
    std::fs::write(&config, "sources:\n  - name: a\n    local: { path: x }\n").unwrap();
    std::fs::write(
        &config,
        "databse: {}\nserver: { listen: nowhere }\nsources:\n  - name: Bad\n    local: { path: x }\n",
    )
    .unwrap();
    let out = rigger().arg("--config").arg(&config).args(["config", "check"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64));
    for problem in ["databse: unknown key", "server.listen:", "sources[0].name:"] {
        assert!(err.contains(problem), "{problem} missing from\n{err}");
    }

    // A webhook secret that does not resolve stops `run` before it starts, with 64 (which
    // systemd's RestartPreventExitStatus keeps from restart-looping).
    std::fs::write(&config, "webhooks:\n  github:\n    secret: { env: RIGGER_TEST_NO_SUCH_SECRET }\n").unwrap();
    let out =
        rigger().arg("--config").arg(&config).arg("run").env_remove("RIGGER_TEST_NO_SUCH_SECRET").output().unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("webhooks.github.secret"));
}

#[test]
fn config_check_resolves_secrets_without_printing_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rigger.yaml");
    std::fs::write(
        &config,
        "sources:\n  - name: a\n    git: { url: 'https://github.com/acme/a.git', token: { env: RIGGER_TEST_TOKEN } }\n",
    )
    .unwrap();
    let out = rigger()
        .env("RIGGER_TEST_TOKEN", "ghp_supersecret")
        .arg("--config")
        .arg(&config)
        .args(["config", "check"])
        .output()
        .unwrap();
    let text = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("sources[0].git.token: env:RIGGER_TEST_TOKEN (set)"), "{text}");
    assert!(!text.contains("ghp_supersecret"));

    let out = rigger()
        .env_remove("RIGGER_TEST_TOKEN")
        .arg("--config")
        .arg(&config)
        .args(["config", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("environment variable RIGGER_TEST_TOKEN is not set"));
}

#[test]
fn config_that_would_start_broken_stops_check_and_run_alike() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rigger.yaml");
    let git = |extra: &str| format!("sources:\n  - name: a\n{extra}");
    let cases = [
        (git("    git: { url: 'https://exa mple.com/x.git' }\n"), "sources[0].git.url"),
        (
            git("    git: { url: 'https://github.com/acme/a.git', token: { env: RIGGER_TEST_SURELY_UNSET } }\n"),
            "sources[0].git.token",
        ),
        (git("    interval: 1ms\n    git: { url: 'https://github.com/acme/a.git' }\n"), "sources[0].interval"),
        ("catalog:\n  placeholder_hosts: ['docs.example.com:99999']\n".to_owned(), "catalog.placeholder_hosts[0]"),
    ];
    for (text, key) in cases {
        std::fs::write(&config, &text).unwrap();
        for command in [&["config", "check"][..], &["run"][..]] {
            let out = rigger()
                .env_remove("RIGGER_TEST_SURELY_UNSET")
                .arg("--config")
                .arg(&config)
                .args(command)
                .output()
                .unwrap();
            let printed = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
            assert_eq!(out.status.code(), Some(64), "{command:?} with {text}: {printed}");
            assert!(printed.contains(key), "{command:?} names {key}: {printed}");
        }
    }
    std::fs::write(&config, "catalog:\n  placeholder_hosts: ['docs.example.com:8443', 'docs.example.com']\n").unwrap();
    let out = rigger().arg("--config").arg(&config).args(["config", "check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn an_inline_secret_is_refused_without_being_printed() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rigger.yaml");
    let forms =
        ["token: \"ghp_inline0123456789\"", "token: ghp_inline0123456789", "token: { value: ghp_inline0123456789 }"];
    // A database URL with a password inline, or in a scheme Rigger does not know.
    for url in ["postgres://rigger:ghp_inline0123456789@db/rigger", "mysql://rigger:ghp_inline0123456789@db/rigger"] {
        std::fs::write(&config, format!("database:\n  url: '{url}'\n")).unwrap();
        let out = rigger().arg("--config").arg(&config).args(["config", "check"]).output().unwrap();
        let printed = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(64), "{url}: {printed}");
        assert!(printed.contains("database.url") && !printed.contains("ghp_inline"), "{url}: {printed}");
    }
    for form in forms {
        let text =
            format!("sources:\n  - name: a\n    git:\n      url: 'https://github.com/acme/a.git'\n      {form}\n");
        std::fs::write(&config, text).unwrap();
        for command in [&["config", "check"][..], &["run"][..]] {
            let out = rigger().arg("--config").arg(&config).args(command).output().unwrap();
            let printed = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
            assert_eq!(out.status.code(), Some(64), "{form}: {printed}");
            assert!(printed.contains("sources[0].git.token"), "{form}: the error names the key: {printed}");
            assert!(!printed.contains("ghp_inline"), "{form}: the value is printed back: {printed}");
        }
    }
}

#[test]
fn validate_follows_targets_and_placeholders_unless_told_not_to() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    let root = dir.path().join("catalog-info.yaml");
    std::fs::write(&root, "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: { name: root }\nspec:\n  targets: [./api.yaml, ./missing.yaml]\n").unwrap();
    let api = "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata: { name: a }\nspec:\n  type: openapi\n  lifecycle: production\n  owner: team\n  definition: { $text: ./nope.yaml }\n";
    std::fs::write(dir.path().join("api.yaml"), api).unwrap();

    let out = rigger().args(["validate", "--format", "json"]).arg(&root).output().unwrap();
    let lines: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(out.status.code(), Some(1));
    let failing: Vec<String> =
        lines.iter().filter(|l| l["ok"] == false).map(|l| l["error"].as_str().unwrap().to_owned()).collect();
    assert!(failing.iter().any(|e| e.contains("Placeholder $text could not read ./nope.yaml")), "{failing:?}");
    assert!(failing.iter().any(|e| e.contains("not found")), "the missing target is reported: {failing:?}");
    assert!(lines.iter().any(|l| l["file"].as_str().unwrap().ends_with("missing.yaml")), "{lines:?}");

    let out = rigger().args(["validate", "--no-follow", "--format", "json"]).arg(&root).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(stdout(&out).lines().count(), 1, "only the named file's documents");
}

#[test]
fn the_readmes_cargo_run_picks_the_agent() {
    // `cargo run -- run --config …` (the README's first command) needs one default binary once
    // the package has several (`fake-apiserver` is one).
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(readme.contains("cargo run -- run --config config/rigger.yaml"));
    if manifest.matches("[[bin]]").count() > 1 {
        assert!(manifest.contains("default-run = \"rigger\""), "Cargo.toml needs default-run = \"rigger\"");
    }
}

/// A developer's repository: catalog files beside CI workflows, manifests and a compose file,
/// with near-miss mistakes and a Location target that does not exist.
fn developer_repository(root: &Path) {
    let files = [
        (
            "catalog-info.yaml",
            "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: root\nspec:\n  targets:\n    - ./services/payments.yaml\n    - ./services/missing.yaml\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: portal\nspec:\n  type: website\n  lifecycle: production\n  owner: team-web\n",
        ),
        (
            "services/payments.yaml",
            "apiVersion: backstage.io/v1alpha1\nkind: Compnent\nmetadata:\n  name: payments\nspec:\n  type: service\n  lifecycle: production\n  owner: team-pay\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: ledger\nspec:\n  type: service\n  lifecyle: production\n  owner: team-pay\n",
        ),
        (
            "docs/api.yaml",
            "apiVersion: backstage.io/v1alpa1\nkind: API\nmetadata:\n  name: payments-api\nspec:\n  type: openapi\n  lifecycle: production\n  owner: team-pay\n  definition: 'openapi: 3.0.0'\n",
        ),
        ("deploy/k8s.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: payments\nspec:\n  replicas: 2\n"),
        (".github/workflows/ci.yml", "name: CI\non: [push]\njobs:\n  test:\n    runs-on: ubuntu-latest\n"),
        ("docker-compose.yml", "services:\n  web:\n    image: nginx\n"),
    ];
    std::fs::create_dir_all(root.join(".git")).unwrap();
    for (path, text) in files {
        let file = root.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }
}

#[test]
fn validate_of_a_repository_judges_its_catalog_files_once_each_at_the_field() {
    let dir = tempfile::tempdir().unwrap();
    developer_repository(dir.path());
    let out = rigger().current_dir(dir.path()).args(["validate", "."]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let expected = [
        "ok    catalog-info.yaml:1:1 location:default/root",
        "ok    catalog-info.yaml:10:1 component:default/portal",
        "error services/payments.yaml:2:1 compnent:default/payments: No processor recognized the entity compnent:default/payments as valid, possibly caused by a foreign kind or apiVersion (did you mean kind `Component`?)",
        "error services/payments.yaml:16:3 component:default/ledger: /spec must have required property 'lifecycle' (did you mean `lifecycle`?)",
        "error services/missing.yaml:1:1 document 0: not found in",
        "error docs/api.yaml:1:1 api:default/payments-api: No processor recognized the entity api:default/payments-api as valid, possibly caused by a foreign kind or apiVersion (did you mean `backstage.io/v1alpha1`?)",
    ];
    let printed = stdout(&out);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), expected.len(), "each document once, nothing else judged:\n{printed}");
    for (line, expected) in lines.iter().zip(expected) {
        assert!(line.starts_with(expected), "expected {expected:?}\n   found {line:?}");
    }
    assert!(lines[4].ends_with("(named by the Location at catalog-info.yaml:8:7)"), "{}", lines[4]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for skipped in [".github/workflows/ci.yml", "deploy/k8s.yaml", "docker-compose.yml"] {
        assert!(stderr.contains(&format!("skipped {skipped}: ")), "{skipped} is named as skipped:\n{stderr}");
    }

    let out = rigger().current_dir(dir.path()).args(["validate", "--format", "github", "."]).output().unwrap();
    let annotations = stdout(&out);
    assert!(
        annotations.contains("::error file=services/payments.yaml,line=16,col=3::document 1: /spec must have required property 'lifecycle' (did you mean `lifecycle`?)"),
        "{annotations}"
    );
    let out = rigger().current_dir(dir.path()).args(["validate", "--format", "json", "."]).output().unwrap();
    let ledger: Value = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["ref"] == "component:default/ledger")
        .unwrap();
    assert_eq!((ledger["line"].as_u64(), ledger["column"].as_u64()), (Some(16), Some(3)));
    assert_eq!(ledger["hint"], "did you mean `lifecycle`?");
}
