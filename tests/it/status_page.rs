//! The status page, loaded in a real browser (Debian's `chromium`, headless, installed by
//! `scripts/install-test-deps`) against a running agent with a healthy and a broken repository:
//! the rendered DOM shows the broken file's line and problem and links the healthy revision to
//! its commit; a screenshot is kept in `target/test-artifacts/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::db::TestDb;
use crate::support::git::TestRepo;
use crate::support::http_git::GitHttpServer;
use crate::support::rigger::{free_port, write_config, Daemon};

const HEALTHY: &str = "apiVersion: backstage.io/v1alpha1
kind: Component
metadata: { name: pay }
spec: { type: service, lifecycle: production, owner: team-a }
";

/// The second document, starting on line 5 (its `---`), has no owner.
const BROKEN: &str = "apiVersion: backstage.io/v1alpha1
kind: Component
metadata: { name: shop }
spec: { type: website, lifecycle: production, owner: team-a }
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: { name: cart }
spec: { type: service, lifecycle: production }
";

/// Runs headless Chromium with `args` and the URL; its stdout.
fn chromium(args: &[&str], url: &str) -> String {
    let output = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"])
        .args(args)
        .arg(url)
        .output()
        .expect("chromium runs: scripts/install-test-deps installs Debian's chromium");
    assert!(output.status.success(), "chromium failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn artefact(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_each_file_in_error_at_its_line_and_links_revisions_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite(dir.path());
    let healthy = TestRepo::new(dir.path(), "healthy");
    let sha = healthy.commit("catalog", &[("catalog-info.yaml", Some(HEALTHY))]);
    let broken = TestRepo::new(dir.path(), "broken");
    broken.commit("catalog", &[("catalog-info.yaml", Some(BROKEN))]);
    let git = GitHttpServer::start(dir.path().to_owned(), None).await;
    let port = free_port();
    let sources = format!(
        "  - name: healthy\n    git:\n      url: {}\n      branch: main\n  - name: broken\n    git:\n      url: {}\n      branch: main\n",
        git.url("healthy.git"),
        broken.file_url()
    );
    let config = write_config(dir.path(), &db.url, &format!("127.0.0.1:{port}"), &sources);
    let mut daemon = Daemon::start(&config, port);
    daemon.wait_for("/readyz", 200).await;
    let base = daemon.base.clone();

    let (dom, page) = tokio::task::spawn_blocking(move || {
        let shoot = |name: &str, url: &str| {
            let screenshot = format!("--screenshot={}", artefact(name).display());
            chromium(&[&screenshot, "--window-size=1280,900"], url);
        };
        let (overview, source) = (format!("{base}/"), format!("{base}/sources/broken"));
        shoot("status-page.png", &overview);
        shoot("status-page-source.png", &source);
        (chromium(&["--dump-dom"], &overview), chromium(&["--dump-dom"], &source))
    })
    .await
    .unwrap();

    // The broken repository's file, at the line its bad document starts, with the problem.
    let errors = section(&dom, "<table id=\"errors\"");
    assert!(errors.contains("catalog-info.yaml"), "{errors}");
    assert!(errors.contains("<td class=\"number\">5</td>"), "the line: {errors}");
    assert!(errors.contains("spec.owner") || errors.contains("owner"), "the problem: {errors}");
    // The healthy repository's revision links to its commit.
    let commit = format!("href=\"{}/commit/{sha}\"", git.url("healthy"));
    assert!(dom.contains(&commit), "{commit} in {dom}");
    assert!(dom.contains(">synced<"), "{dom}");
    assert!(dom.contains("synced; 1 file in error"), "{dom}");
    // Readable and reachable: headings, a caption and header cells, a reload without script,
    // and only relative links, so a path prefix keeps working.
    for needle in ["<html lang=\"en\">", "<h1>", "<caption>", "<th scope=\"col\">", "http-equiv=\"refresh\""] {
        assert!(dom.contains(needle), "{needle} in {dom}");
    }
    assert!(!dom.contains("<script"), "no JavaScript");
    assert!(!dom.contains("href=\"/"), "links are relative: {dom}");
    // The source's own page: the problem at its line, and the way back.
    assert!(page.contains("<h1>broken</h1>"), "{page}");
    assert!(page.contains("<td class=\"number\">5</td>"), "{page}");
    assert!(page.contains("href=\"../\""), "{page}");
    for shot in ["status-page.png", "status-page-source.png"] {
        let size = std::fs::metadata(artefact(shot)).map(|m| m.len()).unwrap_or_default();
        assert!(size > 1000, "{shot}: a screenshot of {size} bytes");
    }
    assert_eq!(daemon.terminate().code(), Some(0));
}

/// The text from `start` to the end of its table.
fn section<'a>(dom: &'a str, start: &str) -> &'a str {
    let from = dom.find(start).unwrap_or_else(|| panic!("{start} in {dom}"));
    let to = dom[from..].find("</table>").map_or(dom.len(), |i| from + i);
    &dom[from..to]
}
