//! Issue 7: Software Templates' skeleton sources recorded with the catalog — per template the
//! files it scaffolds from, which changed at which commit — and served over the API.

use crate::support::db::TestDb;
use crate::support::git::TestRepo;
use crate::support::rigger::{free_port, run, stdout, write_config, Daemon};

fn template(name: &str, url: &str) -> String {
    format!(
        r"apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: {name}
  title: The {name} service
spec:
  owner: team-a
  type: service
  parameters:
    - title: Basics
      required: [name]
      properties:
        name: {{ type: string, title: Name }}
  steps:
    - id: fetch
      name: Fetch the skeleton
      action: fetch:template
      input:
        url: {url}
        values:
          name: ${{{{ parameters.name }}}}
    - id: publish
      action: publish:github
      input:
        repoUrl: github.com?owner=acme&repo=${{{{ parameters.name }}}}
"
    )
}

const CATALOG: &str = r"apiVersion: backstage.io/v1alpha1
kind: Location
metadata:
  name: templates
spec:
  targets: [./templates/alpha/template.yaml, ./templates/beta/template.yaml, ./templates/gamma/template.yaml]
";

/// Every template row's `updated_at` and the number of versions: what a write would change.
async fn template_rows(db: &str) -> (Vec<i64>, i64) {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(db).await.unwrap();
    let updated =
        sqlx::query("SELECT updated_at FROM templates ORDER BY entity_ref").fetch_all(&mut conn).await.unwrap();
    let versions = sqlx::query("SELECT COUNT(*) FROM template_versions").fetch_one(&mut conn).await.unwrap();
    (updated.iter().map(|r| r.get::<i64, _>(0)).collect(), versions.get::<i64, _>(0))
}

async fn get(daemon: &Daemon, path: &str) -> (u16, serde_json::Value) {
    daemon.get_json(path).await
}

#[tokio::test(flavor = "multi_thread")]
async fn template_sources_are_recorded_per_template_with_the_files_each_commit_changed_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = TestDb::sqlite(dir.path());
    template_sources_are_recorded(&db.url, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn template_sources_are_recorded_per_template_with_the_files_each_commit_changed_on_postgres() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = TestDb::postgres().await;
    template_sources_are_recorded(&db.url, dir.path()).await;
}

async fn template_sources_are_recorded(db: &str, dir: &std::path::Path) {
    let repo = TestRepo::new(dir, "templates");
    let first = repo.commit(
        "two templates",
        &[
            ("catalog-info.yaml", Some(CATALOG)),
            ("templates/alpha/template.yaml", Some(&template("alpha", "./skeleton"))),
            ("templates/alpha/skeleton/README.md", Some("# ${{ values.name }}\n")),
            ("templates/alpha/skeleton/src/index.js", Some("console.log('${{ values.name }}');\n")),
            ("templates/beta/template.yaml", Some(&template("beta", "./skeleton"))),
            ("templates/beta/skeleton/app.py", Some("print('${{ values.name }}')\n")),
            ("templates/gamma/template.yaml", Some(&template("gamma", "../../../../outside"))),
        ],
    );
    let port = free_port();
    let sources = format!("  - name: tpl\n    interval: 1h\n    git: {{ url: '{}' }}\n", repo.file_url());
    let config = write_config(dir, db, &format!("127.0.0.1:{port}"), &sources);
    let output = run(&config, &["sync", "--once"]);
    assert!(output.status.success(), "{}", stdout(&output));

    let second = repo.commit(
        "edit one skeleton file",
        &[("templates/alpha/skeleton/README.md", Some("# ${{ values.name }}\n\nNow with docs.\n"))],
    );
    assert!(run(&config, &["sync", "--once"]).status.success());
    let writes_before = template_rows(db).await;
    let third = repo.commit("touch something else", &[("NOTES.md", Some("unrelated\n"))]);
    assert!(run(&config, &["sync", "--once"]).status.success());
    assert_eq!(template_rows(db).await, writes_before, "a commit that leaves the skeletons alone writes nothing");

    let mut daemon = Daemon::start(&config, port);
    daemon.wait_for("/readyz", 200).await;

    let (code, alpha) = get(&daemon, "/api/rigger/templates/default/alpha/versions").await;
    assert_eq!(code, 200, "{alpha}");
    let versions = alpha["items"].as_array().expect("items");
    assert_eq!(versions.len(), 2, "the first record, then the one edit; the unrelated commit wrote nothing: {alpha}");
    assert_eq!(versions[0]["revision"], second.as_str());
    assert_eq!(
        versions[0]["changes"],
        serde_json::json!([{"path": "templates/alpha/skeleton/README.md", "change": "modified"}]),
        "exactly the one file"
    );
    assert_eq!(versions[1]["revision"], first.as_str());
    assert_eq!(versions[1]["changes"].as_array().expect("changes").len(), 2, "both files added at first");

    let (_, beta) = get(&daemon, "/api/rigger/templates/default/beta/versions").await;
    assert_eq!(beta["items"].as_array().expect("items").len(), 1, "the other template saw no change: {beta}");

    let (code, files) = get(&daemon, "/api/rigger/templates/default/alpha/files").await;
    assert_eq!(code, 200);
    let paths: Vec<&str> =
        files["files"].as_array().expect("files").iter().filter_map(|f| f["path"].as_str()).collect();
    assert_eq!(paths, ["templates/alpha/skeleton/README.md", "templates/alpha/skeleton/src/index.js"]);
    assert_eq!(files["revision"], second.as_str(), "the commit the set last changed at");
    assert_eq!(files["currentRevision"], third.as_str(), "and the commit the listing is at");
    assert_eq!(files["files"][0]["mode"], "100644");
    assert_eq!(files["files"][0]["size"], "# ${{ values.name }}\n\nNow with docs.\n".len());

    let content = daemon.get_text("/api/rigger/templates/default/alpha/files/templates/alpha/skeleton/README.md").await;
    assert_eq!(content, "# ${{ values.name }}\n\nNow with docs.\n");
    let (missing, _) = get(&daemon, "/api/rigger/templates/default/alpha/files/templates/alpha/skeleton/nope.md").await;
    assert_eq!(missing, 404);

    let (_, gamma) = get(&daemon, "/api/rigger/templates/default/gamma/files").await;
    let error = gamma["error"].as_str().expect("an escaping skeleton is an error on the template");
    assert!(error.contains("escapes the repository"), "{error}");
    assert_eq!(gamma["files"], serde_json::json!([]));

    let metrics = daemon.get_text("/metrics").await;
    assert!(metrics.contains("rigger_templates_synced_total"), "{metrics}");
    let changes: Vec<&str> =
        metrics.lines().filter(|l| l.starts_with("rigger_template_source_changes_total{")).collect();
    assert!(changes.iter().all(|l| l.ends_with(" 0")), "this daemon's passes found the recorded sets: {changes:?}");

    // The same template rendered by ref, from the catalog's synced commit.
    std::fs::write(dir.join("values.yaml"), "name: payments\n").unwrap();
    let out = dir.join("rendered");
    let values = dir.join("values.yaml");
    let rendered = run(
        &config,
        &[
            "template",
            "render",
            "template:default/alpha",
            "--values",
            values.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(rendered.status.success(), "{}{}", stdout(&rendered), String::from_utf8_lossy(&rendered.stderr));
    assert_eq!(std::fs::read_to_string(out.join("README.md")).unwrap(), "# payments\n\nNow with docs.\n");
    assert_eq!(std::fs::read_to_string(out.join("src/index.js")).unwrap(), "console.log('payments');\n");
    assert!(daemon.terminate().success());
}

#[test]
fn validate_checks_the_form_schema_and_that_every_skeleton_exists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join(".git")).expect("repository marker");
    let write = |path: &str, text: &str| {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("dirs");
        std::fs::write(full, text).expect("write");
    };
    write("good/template.yaml", &template("good", "../shared/skeleton"));
    write("shared/skeleton/README.md", "# ${{ values.name }}\n");
    write("missing/template.yaml", &template("missing", "./skeleton"));
    write("bad-form/template.yaml", &template("bad-form", "./skeleton").replace("type: string", "type: strin"));
    write("bad-form/skeleton/x", "x");
    let validate = |path: &str| {
        let output = crate::support::rigger::rigger()
            .args(["validate", "--format", "json"])
            .arg(root.join(path))
            .output()
            .expect("rigger runs");
        let line: serde_json::Value =
            serde_json::from_str(stdout(&output).lines().next().expect("a verdict")).expect("json");
        (output.status.code(), line)
    };
    let (code, good) = validate("good/template.yaml");
    assert_eq!((code, &good["ok"]), (Some(0), &serde_json::json!(true)), "{good}");
    let (code, missing) = validate("missing/template.yaml");
    assert_eq!(code, Some(1));
    let error = missing["error"].as_str().expect("error");
    assert!(error.contains("step fetch") && error.contains("missing/skeleton does not exist"), "{error}");
    let (code, bad) = validate("bad-form/template.yaml");
    assert_eq!(code, Some(1));
    assert!(bad["error"].as_str().expect("error").starts_with("spec.parameters[0]: not a valid JSON Schema"), "{bad}");
}
