//! Location references and target resolution: how a repository path becomes Backstage's
//! `url:…`/`file:…` location string, and how a `Location` target is confined to its repository.

pub use crate::source::normalise;
use crate::source::Origin;

/// Where a file was reached from: the root catalog file, or a `Location` entity's target.
/// GitHub's URL resolver rewrites resolved targets to the `/tree/` form, while registered roots
/// keep `/blob/`; we reproduce both so annotations match what Backstage would store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reached {
    Root,
    Target,
}

/// The location reference of a repository file, e.g.
/// `url:https://github.com/acme/platform/blob/main/catalog-info.yaml` or `file:/srv/x/catalog-info.yaml`.
pub fn location_ref(origin: &Origin, path: &str, reached: Reached) -> String {
    match origin {
        Origin::Git { web_url, branch, .. } => {
            let segment = if reached == Reached::Root { "blob" } else { "tree" };
            format!("url:{web_url}/{segment}/{branch}/{path}")
        }
        Origin::Local { root } => format!("file:{}", root.join(path).display()),
    }
}

/// The annotations Backstage's AnnotateLocationEntityProcessor adds for `url` locations:
/// `view-url`, `edit-url` (GitHub only), `source-location` (the file's folder, `/tree/` form).
pub fn derived_annotations(origin: &Origin, path: &str, location: &str) -> Vec<(&'static str, String)> {
    let Origin::Git { web_url, branch, github } = origin else { return Vec::new() };
    let Some(target) = location.strip_prefix("url:") else { return Vec::new() };
    let mut out = vec![("backstage.io/view-url", target.to_owned())];
    if *github {
        let edit = target.replacen(&format!("{web_url}/blob/"), &format!("{web_url}/edit/"), 1).replacen(
            &format!("{web_url}/tree/"),
            &format!("{web_url}/edit/"),
            1,
        );
        out.push(("backstage.io/edit-url", edit));
    }
    let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
    let folder = if dir.is_empty() { String::new() } else { format!("{dir}/") };
    out.push(("backstage.io/source-location", format!("url:{web_url}/tree/{branch}/{folder}")));
    out
}

/// Resolves a `Location` target relative to the file that declares it and confines it to the
/// repository. Returns the normalised repository-relative path.
pub fn resolve_target(from_file: &str, target: &str) -> Result<String, String> {
    if target.contains("://") || target.starts_with("url:") {
        return Err(format!("target {target:?} points outside this repository; only relative paths are followed"));
    }
    if target.starts_with('/') {
        return Err(format!("target {target:?} is an absolute path; targets must be relative to {from_file}"));
    }
    let dir = from_file.rsplit_once('/').map_or("", |(dir, _)| dir);
    normalise(&format!("{dir}/{target}"))
        .ok_or_else(|| format!("target {target:?} escapes the repository (resolved from {from_file})"))
}

/// Whether a `Location` target declared in the file at location key `parent` names the file at
/// `child`: the target resolved against the parent's folder, `/blob/` and `/tree/` URLs alike,
/// glob targets matched as globs.
pub fn target_reaches(parent: &str, target: &str, child: &str) -> bool {
    let unify = |key: &str| key.replacen("/blob/", "/tree/", 1);
    let (parent, child) = (unify(parent), unify(child));
    let Some((dir, _)) = parent.rsplit_once('/') else { return false };
    let mut parts: Vec<&str> = Vec::new();
    let joined = format!("{dir}/{}", target.trim_start_matches("./"));
    for segment in joined.split('/') {
        match segment {
            "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let resolved = parts.join("/");
    if !target.contains(['*', '?', '[', '{']) {
        return resolved == child;
    }
    globset::GlobBuilder::new(&resolved)
        .literal_separator(true)
        .build()
        .is_ok_and(|glob| glob.compile_matcher().is_match(&child))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn github() -> Origin {
        Origin::Git { web_url: "https://github.com/acme/platform".into(), branch: "main".into(), github: true }
    }

    #[test]
    fn a_target_reaches_the_file_it_names_and_no_other() {
        let root = "url:https://github.com/acme/platform/blob/main/catalog-info.yaml";
        let docs = "url:https://github.com/acme/platform/tree/main/docs/catalog-info.yaml";
        assert!(target_reaches(root, "./docs/catalog-info.yaml", docs));
        assert!(target_reaches(root, "docs/catalog-info.yaml", docs));
        assert!(!target_reaches(root, "./api/catalog-info.yaml", docs));
        assert!(target_reaches(root, "./*/catalog-info.yaml", docs));
        assert!(!target_reaches(root, "./*.yaml", docs), "a glob's * does not cross folders");
        let nested = "file:/srv/catalog/teams/a/catalog-info.yaml";
        assert!(target_reaches(nested, "../b/catalog-info.yaml", "file:/srv/catalog/teams/b/catalog-info.yaml"));
    }

    #[test]
    fn root_uses_blob_and_targets_use_tree() {
        assert_eq!(
            location_ref(&github(), "catalog-info.yaml", Reached::Root),
            "url:https://github.com/acme/platform/blob/main/catalog-info.yaml"
        );
        assert_eq!(
            location_ref(&github(), "svc/a/catalog-info.yaml", Reached::Target),
            "url:https://github.com/acme/platform/tree/main/svc/a/catalog-info.yaml"
        );
    }

    #[test]
    fn github_annotations_match_backstage_formats() {
        let loc = location_ref(&github(), "svc/a/catalog-info.yaml", Reached::Target);
        let got = derived_annotations(&github(), "svc/a/catalog-info.yaml", &loc);
        assert_eq!(
            got,
            vec![
                (
                    "backstage.io/view-url",
                    "https://github.com/acme/platform/tree/main/svc/a/catalog-info.yaml".to_owned()
                ),
                (
                    "backstage.io/edit-url",
                    "https://github.com/acme/platform/edit/main/svc/a/catalog-info.yaml".to_owned()
                ),
                ("backstage.io/source-location", "url:https://github.com/acme/platform/tree/main/svc/a/".to_owned()),
            ]
        );
    }

    #[test]
    fn local_files_get_file_refs_and_no_derived_annotations() {
        let origin = Origin::Local { root: "/srv/catalog".into() };
        let loc = location_ref(&origin, "catalog-info.yaml", Reached::Root);
        assert_eq!(loc, "file:/srv/catalog/catalog-info.yaml");
        assert!(derived_annotations(&origin, "catalog-info.yaml", &loc).is_empty());
    }

    #[test]
    fn targets_resolve_relative_to_their_file() {
        assert_eq!(resolve_target("a/catalog.yaml", "./b/x.yaml").unwrap(), "a/b/x.yaml");
        assert_eq!(resolve_target("a/catalog.yaml", "../y.yaml").unwrap(), "y.yaml");
        assert_eq!(resolve_target("catalog.yaml", "z.yaml").unwrap(), "z.yaml");
    }

    #[test]
    fn targets_cannot_leave_the_repository() {
        assert!(resolve_target("a/c.yaml", "../../etc/passwd").unwrap_err().contains("escapes"));
        assert!(resolve_target("c.yaml", "/etc/passwd").unwrap_err().contains("absolute"));
        assert!(resolve_target("c.yaml", "https://evil.example/x.yaml").unwrap_err().contains("outside"));
    }
}
