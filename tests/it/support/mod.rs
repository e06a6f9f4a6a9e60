//! Fixtures shared by the integration tests: real git repositories, git over HTTP, databases,
//! and the `rigger` binary as a process.

pub mod db;
pub mod fake_backstage;
pub mod fake_github;
pub mod fake_kube;
pub mod git;
pub mod http_git;
pub mod pg_server;
pub mod rigger;
pub mod tls;

/// A catalog file with several documents and a Location with two targets.
pub const ROOT_CATALOG: &str = r"apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: web
  description: The website.
spec: { type: website, lifecycle: production, owner: team-a }
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team-a
spec: { type: team, children: [] }
---
apiVersion: backstage.io/v1alpha1
kind: Location
metadata:
  name: services
spec:
  targets: [./services/billing/catalog-info.yaml, ./services/search/catalog-info.yaml]
";

pub fn component(name: &str, description: &str) -> String {
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  description: {description}\nspec: {{ type: service, lifecycle: production, owner: team-a }}\n"
    )
}

/// The root catalog and both files its Location targets.
pub fn full_catalog() -> Vec<(&'static str, Option<String>)> {
    vec![
        ("catalog-info.yaml", Some(ROOT_CATALOG.to_owned())),
        ("services/billing/catalog-info.yaml", Some(component("billing", "Sends invoices"))),
        ("services/search/catalog-info.yaml", Some(component("search", "Finds things"))),
    ]
}

/// Borrows [`full_catalog`]'s files in the shape `TestRepo::commit` takes.
pub fn as_files<'a>(files: &'a [(&'static str, Option<String>)]) -> Vec<(&'static str, Option<&'a str>)> {
    files.iter().map(|(path, content)| (*path, content.as_deref())).collect()
}
