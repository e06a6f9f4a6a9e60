//! `rigger template render` as a template author runs it: the binary renders a Template's fetch
//! steps into a directory, and the result is compared with trees written by hand.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::rigger::{rigger, stdout};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/templates")
}

/// Bytes no UTF-8 decoder accepts, with a NUL and something that would look like an expression
/// to a renderer that ignored binaries.
const LOGO: &[u8] =
    &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0xff, 0xfe, b'$', b'{', b'{', b' ', b'x', b'}', b'}'];

/// Every file under `dir` by relative path.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(relative, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A throwaway repository (`.git` marks its root) holding a copy of a fixture template.
fn repository_with(fixture: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    let template = dir.path().join("templates").join(fixture);
    copy_dir(&fixtures().join(fixture), &template);
    (dir, template)
}

fn render(template: &Path, values: Option<&Path>, out: &Path, extra: &[&str]) -> Output {
    let mut command = rigger();
    command.args(["template", "render"]).arg(template.join("template.yaml")).arg("--out").arg(out).args(extra);
    if let Some(values) = values {
        command.arg("--values").arg(values);
    }
    command.output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn text(files: &BTreeMap<String, Vec<u8>>, path: &str) -> String {
    String::from_utf8(files.get(path).unwrap_or_else(|| panic!("no {path} in {:?}", files.keys())).clone()).unwrap()
}

#[test]
fn sample_template_renders_the_hand_written_tree() {
    let (repo, template) = repository_with("sample");
    // The binary file is written here rather than kept as an opaque blob in the fixtures.
    let assets = template.join("skeleton/${{ values.name }}/assets");
    std::fs::create_dir_all(&assets).unwrap();
    std::fs::write(assets.join("logo.png"), LOGO).unwrap();
    let script = template.join("skeleton/scripts/run.sh");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = repo.path().join("out");

    let output = render(&template, Some(&template.join("values.yaml")), &out, &[]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));

    let mut expected = tree(&fixtures().join("sample-expected"));
    expected.insert("service/payments/assets/logo.png".into(), LOGO.to_vec());
    let actual = tree(&out);
    assert_eq!(actual.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>());
    for (path, content) in &expected {
        assert_eq!(
            String::from_utf8_lossy(&actual[path]),
            String::from_utf8_lossy(content),
            "{path} differs from the expected tree"
        );
        assert_eq!(&actual[path], content, "{path} differs byte for byte");
    }
    let mode = std::fs::metadata(out.join("service/scripts/run.sh")).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "run.sh stays executable");
    let report = stdout(&output);
    assert!(report.contains("step fetch-base (fetch:template): 10 files"), "{report}");
    assert!(report.contains("step fetch-docs (fetch:plain): 1 files"), "{report}");
    assert!(report.contains("step publish (publish:github): skipped"), "{report}");
    assert!(report.contains("11 files written to"), "{report}");
}

#[test]
fn one_step_can_be_rendered_alone() {
    let (repo, template) = repository_with("sample");
    let out = repo.path().join("out");
    let output = render(&template, Some(&template.join("values.yaml")), &out, &["--step", "fetch-docs"]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    let files = tree(&out);
    assert_eq!(files.keys().collect::<Vec<_>>(), ["service/docs/index.md"]);

    let output =
        render(&template, Some(&template.join("values.yaml")), &repo.path().join("o2"), &["--step", "publish"]);
    assert_eq!(output.status.code(), Some(64), "a step that fetches nothing is a usage error");
    assert!(stderr(&output).contains("fetch steps: fetch-base, fetch-docs"), "{}", stderr(&output));
}

#[test]
fn cookiecutter_compat_template_renders_double_braces() {
    let (repo, template) = repository_with("cookiecutter");
    let values = repo.path().join("values.yaml");
    std::fs::write(&values, "name: Billing Lib\n").unwrap();
    let out = repo.path().join("out");
    let output = render(&template, Some(&values), &out, &[]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    let files = tree(&out);
    assert_eq!(files.keys().collect::<Vec<_>>(), ["billing_lib/setup.cfg"]);
    assert_eq!(
        text(&files, "billing_lib/setup.cfg"),
        "[metadata]\nname = billing_lib\npython_requires = >=3.12\nauthors = [\"Billing Lib team\"]\n\n[tool:pytest]\naddopts = --basetemp=${TMPDIR}/pytest\n"
    );
}

#[test]
fn an_undefined_variable_fails_naming_the_file_and_line() {
    let (repo, template) = repository_with("sample");
    std::fs::write(
        template.join("skeleton/${{ values.name }}/README.md"),
        "# ${{ values.title }}\n\nOwned by ${{ values.ownr }}\n",
    )
    .unwrap();
    let out = repo.path().join("out");
    let output = render(&template, Some(&template.join("values.yaml")), &out, &[]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(message.contains("templates/sample/skeleton/${{ values.name }}/README.md:3: undefined value"), "{message}");
    assert!(message.contains("values.ownr"), "{message}");
    assert!(!out.join("service").exists(), "nothing is written when a render fails");
}

#[test]
fn missing_required_parameters_are_named() {
    let (repo, template) = repository_with("sample");
    let values = repo.path().join("values.yaml");
    std::fs::write(&values, "name: payments\n").unwrap();
    let output = render(&template, Some(&values), &repo.path().join("out"), &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("the values miss required parameters: owner, repoUrl"), "{}", stderr(&output));
}

#[test]
fn a_skeleton_url_that_leaves_the_repository_is_refused() {
    let (repo, template) = repository_with("sample");
    // Something to find out there, so only confinement can stop the render.
    let outside =
        repo.path().parent().unwrap().join(format!("{}-outside", repo.path().file_name().unwrap().to_string_lossy()));
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "x").unwrap();
    let yaml = std::fs::read_to_string(template.join("template.yaml")).unwrap();
    let escaping = format!("../../../{}", outside.file_name().unwrap().to_string_lossy());
    std::fs::write(template.join("template.yaml"), yaml.replace("url: ./docs", &format!("url: {escaping}"))).unwrap();

    let out = repo.path().join("out");
    let output = render(&template, Some(&template.join("values.yaml")), &out, &[]);
    std::fs::remove_dir_all(&outside).unwrap();
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(message.contains("templates/sample/template.yaml:"), "{message}");
    assert!(message.contains("step fetch-docs: url:") && message.contains("escapes the repository"), "{message}");
    assert!(!out.exists());
}

#[test]
fn usage_mistakes_exit_64() {
    let (repo, template) = repository_with("sample");
    let missing = render(&repo.path().join("nope"), None, &repo.path().join("out"), &[]);
    assert_eq!(missing.status.code(), Some(64));
    let full = repo.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("old.txt"), "leftover").unwrap();
    let output = render(&template, Some(&template.join("values.yaml")), &full, &[]);
    assert_eq!(output.status.code(), Some(64));
    assert!(stderr(&output).contains("is not empty"), "{}", stderr(&output));
    let no_values_file = render(&template, Some(&repo.path().join("absent.yaml")), &repo.path().join("out"), &[]);
    assert_eq!(no_values_file.status.code(), Some(64));
}
