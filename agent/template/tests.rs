//! The renderer over in-memory trees: one behaviour of the scaffolder's fetch actions per test.

use super::*;
use crate::source::MemoryTree;

const HEADER: &str =
    "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata: {name: t}\nspec:\n  type: service\n";

fn template(rest: &str) -> String {
    format!("{HEADER}{rest}")
}

fn form(text: &str) -> Mapping {
    serde_yaml::from_str(text).unwrap()
}

fn text(rendered: &Rendered, path: &str) -> String {
    let file = rendered.files.get(path).unwrap_or_else(|| panic!("{path} not in {:?}", rendered.files.keys()));
    String::from_utf8(file.content.clone()).unwrap()
}

fn paths(rendered: &Rendered) -> Vec<&str> {
    rendered.files.keys().map(String::as_str).collect()
}

fn one_step(input: &str) -> String {
    template(&format!(
        "  parameters:\n    properties:\n      name: {{type: string}}\n  steps:\n    - id: fetch\n      action: fetch:template\n      input:\n{input}"
    ))
}

#[test]
fn names_and_contents_are_templated_under_the_target_path() {
    let tree = MemoryTree::default()
        .with(
            "t/template.yaml",
            &one_step(
                "        url: ./skeleton\n        targetPath: out\n        values: {name: '${{ parameters.name }}'}\n",
            ),
        )
        .with("t/skeleton/${{ values.name }}/README.md", "# ${{ values.name }}\n{{ untouched }}\n")
        .with("t/skeleton/.github/ci.yaml", "name: ${{ values.name | upper }}\n");
    let rendered = render(&tree, "t/template.yaml", &form("name: pay"), None).unwrap();
    assert_eq!(paths(&rendered), ["out/.github/ci.yaml", "out/pay/README.md"]);
    assert_eq!(text(&rendered, "out/pay/README.md"), "# pay\n{{ untouched }}\n");
    assert_eq!(text(&rendered, "out/.github/ci.yaml"), "name: PAY\n");
    assert_eq!(rendered.files["out/pay/README.md"].source, "t/skeleton/${{ values.name }}/README.md");
}

#[test]
fn copy_without_templating_keeps_contents_but_renders_names() {
    let tree = MemoryTree::default()
        .with(
            "t/template.yaml",
            &one_step(
                "        url: ./s\n        values: {name: x}\n        copyWithoutTemplating: ['static/**', '*.tpl']\n",
            ),
        )
        .with("t/s/static/${{ values.name }}.txt", "${{ keep }}")
        .with("t/s/a.tpl", "${{ keep }}")
        .with("t/s/sub/b.tpl", "${{ values.name }}");
    let rendered = render(&tree, "t/template.yaml", &form("{}"), None).unwrap();
    assert_eq!(paths(&rendered), ["a.tpl", "static/x.txt", "sub/b.tpl"]);
    assert_eq!(text(&rendered, "static/x.txt"), "${{ keep }}");
    assert_eq!(text(&rendered, "a.tpl"), "${{ keep }}");
    // `*` does not cross `/`, as in globby.
    assert_eq!(text(&rendered, "sub/b.tpl"), "x");
}

#[test]
fn copy_without_render_keeps_names_as_well() {
    let tree = MemoryTree::default()
        .with(
            "t/template.yaml",
            &one_step("        url: ./s\n        values: {name: x}\n        copyWithoutRender: ['raw/*']\n"),
        )
        .with("t/s/raw/${{ values.name }}.txt", "${{ keep }}")
        .with("t/s/${{ values.name }}.txt", "${{ values.name }}");
    let rendered = render(&tree, "t/template.yaml", &form("{}"), None).unwrap();
    assert_eq!(paths(&rendered), ["raw/${{ values.name }}.txt", "x.txt"]);
    assert_eq!(text(&rendered, "raw/${{ values.name }}.txt"), "${{ keep }}");
}

#[test]
fn both_copy_lists_at_once_are_refused() {
    let tree = MemoryTree::default()
        .with(
            "t/template.yaml",
            &one_step("        url: ./s\n        copyWithoutRender: [a]\n        copyWithoutTemplating: [b]\n"),
        )
        .with("t/s/a", "x");
    let err = render(&tree, "t/template.yaml", &form("{}"), None).unwrap_err();
    assert!(err.to_string().contains("cannot be used together"), "{err}");
}

#[test]
fn binary_files_are_copied_verbatim() {
    let mut tree =
        MemoryTree::default().with("t/template.yaml", &one_step("        url: ./s\n        values: {name: x}\n"));
    let binary = vec![0x89, b'P', b'N', b'G', 0, 0xff, b'$', b'{', b'{'];
    tree.0.insert("t/s/${{ values.name }}.png".into(), binary.clone());
    let rendered = render(&tree, "t/template.yaml", &form("{}"), None).unwrap();
    assert_eq!(rendered.files["x.png"].content, binary);
}

#[test]
fn names_that_render_empty_drop_the_file() {
    let tree = MemoryTree::default()
        .with("t/template.yaml", &one_step("        url: ./s\n        values: {docs: false}\n"))
        .with("t/s/${{ 'docs' if values.docs }}/index.md", "x")
        .with("t/s/kept.md", "y");
    let rendered = render(&tree, "t/template.yaml", &form("{}"), None).unwrap();
    assert_eq!(paths(&rendered), ["kept.md"]);
}

#[test]
fn template_file_extension_renders_only_those_files_and_strips_it() {
    let tree = MemoryTree::default()
        .with(
            "t/template.yaml",
            &one_step("        url: ./s\n        values: {name: x}\n        templateFileExtension: true\n"),
        )
        .with("t/s/a.md.njk", "${{ values.name }}")
        .with("t/s/${{ values.name }}.md", "${{ values.name }}");
    let rendered = render(&tree, "t/template.yaml", &form("{}"), None).unwrap();
    assert_eq!(text(&rendered, "a.md"), "x");
    assert_eq!(text(&rendered, "x.md"), "${{ values.name }}");
}

#[test]
fn cookiecutter_compat_reads_double_braces_under_cookiecutter() {
    let tree = MemoryTree::default()
        .with(
            "t/template.yaml",
            &one_step("        url: ./s\n        cookiecutterCompat: true\n        values: {name: x}\n"),
        )
        .with(
            "t/s/{{ cookiecutter.name }}.txt",
            "{{ cookiecutter.name | jsonify }} ${x} {% raw %}${{ x }}{% endraw %}",
        );
    let rendered = render(&tree, "t/template.yaml", &form("{}"), None).unwrap();
    assert_eq!(text(&rendered, "x.txt"), "\"x\" ${x} ${{ x }}");
}

#[test]
fn fetch_plain_copies_without_templating_and_later_steps_do_not_overwrite() {
    let steps = "  steps:\n    - {id: plain, action: fetch:plain, input: {url: ./p}}\n    - {id: tpl, action: fetch:template, input: {url: ./s, values: {v: 1}}}\n    - {id: again, action: fetch:template, input: {url: ./s, values: {v: 2}, replace: true, targetPath: ./r/../r}}\n    - {id: pub, action: publish:github, input: {}}\n";
    let tree = MemoryTree::default()
        .with("t/template.yaml", &template(steps))
        .with("t/p/${{ x }}.txt", "${{ x }}")
        .with("t/p/same.txt", "plain")
        .with("t/s/same.txt", "${{ values.v }}");
    let rendered = render(&tree, "t/template.yaml", &form("{}"), None).unwrap();
    assert_eq!(paths(&rendered), ["${{ x }}.txt", "r/same.txt", "same.txt"]);
    assert_eq!(text(&rendered, "same.txt"), "plain");
    assert_eq!(text(&rendered, "r/same.txt"), "2");
    assert_eq!(rendered.steps[3].skipped.as_deref(), Some("not a fetch action"));
}

#[test]
fn single_file_actions_write_to_the_target_path() {
    let steps = "  steps:\n    - {action: fetch:template:file, input: {url: ./f.txt, targetPath: 'a/${{ parameters.n }}.txt', values: {n: '${{ parameters.n }}'}}}\n    - {action: fetch:plain:file, input: {url: ./f.txt, targetPath: b.txt}}\n";
    let tree = MemoryTree::default().with("t/template.yaml", &template(steps)).with("t/f.txt", "n=${{ values.n }}");
    let rendered = render(&tree, "t/template.yaml", &form("n: 7"), None).unwrap();
    assert_eq!(text(&rendered, "a/7.txt"), "n=7");
    assert_eq!(text(&rendered, "b.txt"), "n=${{ values.n }}");
}

#[test]
fn a_step_whose_if_is_false_is_skipped_and_one_step_can_be_chosen() {
    let steps = "  steps:\n    - {id: a, if: '${{ parameters.on }}', action: fetch:plain, input: {url: ./a}}\n    - {id: b, action: fetch:plain, input: {url: ./b}}\n";
    let tree =
        MemoryTree::default().with("t/template.yaml", &template(steps)).with("t/a/a.txt", "a").with("t/b/b.txt", "b");
    let rendered = render(&tree, "t/template.yaml", &form("on: false"), None).unwrap();
    assert_eq!(paths(&rendered), ["b.txt"]);
    assert_eq!(rendered.steps[0].skipped.as_deref(), Some("its `if` is false"));
    let rendered = render(&tree, "t/template.yaml", &form("on: true"), Some("a")).unwrap();
    assert_eq!(paths(&rendered), ["a.txt"]);
    let err = render(&tree, "t/template.yaml", &form("{}"), Some("c")).unwrap_err();
    assert!(err.is_usage());
    assert!(err.to_string().contains("fetch steps: a, b"), "{err}");
}

#[test]
fn undefined_values_in_a_skeleton_name_the_file_and_line() {
    let tree = MemoryTree::default()
        .with("t/template.yaml", &one_step("        url: ./s\n        values: {name: x}\n"))
        .with("t/s/README.md", "# ${{ values.name }}\n\nby ${{ values.owner }}\n");
    let err = render(&tree, "t/template.yaml", &form("{}"), None).unwrap_err();
    assert!(matches!(&err, TemplateError::Render { file, line: 3, .. } if file == "t/s/README.md"), "{err:?}");
    assert!(err.to_string().starts_with("t/s/README.md:3: undefined value"), "{err}");
    assert!(err.to_string().contains("values.owner"), "{err}");
}

#[test]
fn undefined_values_in_a_file_name_say_so() {
    let tree = MemoryTree::default()
        .with("t/template.yaml", &one_step("        url: ./s\n"))
        .with("t/s/${{ values.nope }}.md", "x");
    let err = render(&tree, "t/template.yaml", &form("{}"), None).unwrap_err();
    assert!(err.to_string().starts_with("t/s/${{ values.nope }}.md (file name):1: undefined value"), "{err}");
}

#[test]
fn skeletons_outside_the_repository_or_output_outside_the_target_are_refused() {
    let tree = MemoryTree::default().with("t/template.yaml", &one_step("        url: ../../elsewhere\n"));
    let err = render(&tree, "t/template.yaml", &form("{}"), None).unwrap_err();
    assert!(err.to_string().contains("escapes the repository"), "{err}");
    assert!(err.to_string().starts_with("t/template.yaml:13: step fetch: url:"), "{err}");
    let tree =
        MemoryTree::default().with("t/template.yaml", &one_step("        url: https://github.com/acme/skeletons\n"));
    assert!(render(&tree, "t/template.yaml", &form("{}"), None)
        .unwrap_err()
        .to_string()
        .contains("outside this repository"));
    let tree = MemoryTree::default()
        .with("t/template.yaml", &one_step("        url: ./s\n        targetPath: ../up\n"))
        .with("t/s/a", "x");
    assert!(render(&tree, "t/template.yaml", &form("{}"), None)
        .unwrap_err()
        .to_string()
        .contains("leaves the output directory"));
    let tree = MemoryTree::default().with("t/template.yaml", &one_step("        url: ./missing\n"));
    assert!(render(&tree, "t/template.yaml", &form("{}"), None).unwrap_err().to_string().contains("holds no files"));
}

#[test]
fn required_parameters_missing_after_defaults_are_named() {
    let parameters = "  parameters:\n    - required: [name]\n      properties: {name: {type: string}}\n    - required: [repoUrl, owner]\n      properties: {owner: {default: group:a}}\n  steps: []\n";
    let tree = MemoryTree::default().with("t/template.yaml", &template(parameters));
    let err = render(&tree, "t/template.yaml", &form("{}"), None).unwrap_err();
    assert_eq!(err.to_string(), "t/template.yaml: the values miss required parameters: name, repoUrl");
    assert!(!err.is_usage());
}

#[test]
fn only_v1beta3_templates_are_rendered() {
    let tree = MemoryTree::default().with("t.yaml", "apiVersion: backstage.io/v1beta2\nkind: Template\nspec: {}\n");
    assert!(render(&tree, "t.yaml", &form("{}"), None)
        .unwrap_err()
        .to_string()
        .contains("is not scaffolder.backstage.io/v1beta3"));
    let tree = MemoryTree::default().with("t.yaml", "kind: Component\n");
    assert!(render(&tree, "t.yaml", &form("{}"), None)
        .unwrap_err()
        .to_string()
        .contains("no document has kind: Template"));
}
