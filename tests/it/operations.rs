//! What operators run — the alert rules (promtool), every metric they use exported by
//! a running agent, the systemd unit (systemd-analyze) and its notify protocol, the documented
//! configuration keys. The tools come from `scripts/install-test-deps`; a missing one fails.

use std::collections::BTreeSet;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rigger::testkit::FakeApiServer;

use crate::support::fake_github::FakeGithub;
use crate::support::git::TestRepo;
use crate::support::rigger::{free_port, write_config, Daemon, DEADLINE};

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A test tool: the copy `scripts/install-test-deps` unpacked into `.cache/tools/bin`, else
/// the one on `PATH`.
fn tool(name: &str, args: &[&str], dir: &Path) -> std::process::Output {
    let unpacked = repo_file(".cache/tools/bin").join(name);
    let program = if unpacked.exists() { unpacked } else { PathBuf::from(name) };
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{name} is missing ({e}); scripts/install-test-deps installs it"))
}

#[test]
fn alert_rules_are_valid_and_pass_their_promtool_tests() {
    let alerts = repo_file("alerts");
    let check = tool("promtool", &["check", "rules", "rigger.rules.yml"], &alerts);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let test = tool("promtool", &["test", "rules", "rigger.rules.test.yml"], &alerts);
    let out = String::from_utf8_lossy(&test.stdout);
    assert!(test.status.success() && out.contains("SUCCESS"), "{out}{}", String::from_utf8_lossy(&test.stderr));
}

#[test]
fn every_alert_has_a_runbook_section_and_the_chart_ships_the_same_rules() {
    let rules = std::fs::read_to_string(repo_file("alerts/rigger.rules.yml")).unwrap();
    let runbooks = std::fs::read_to_string(repo_file("docs/runbooks.md")).unwrap();
    let alerts: Vec<&str> = rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")).collect();
    assert!(alerts.len() >= 10, "{alerts:?}");
    for alert in &alerts {
        assert!(runbooks.contains(&format!("\n## {alert}\n")), "docs/runbooks.md has no section for {alert}");
        let url = format!("runbooks.md#{}", alert.to_lowercase());
        assert!(rules.contains(&url), "{alert} has no runbook_url {url}");
    }
    let chart = std::fs::read_to_string(repo_file("charts/rigger/files/rigger-alerts.yaml")).unwrap();
    assert_eq!(chart, rules, "charts/rigger/files/rigger-alerts.yaml must equal alerts/rigger.rules.yml");
}

/// The `rigger_…` names a rule expression uses.
fn metrics_in_rules(rules: &str) -> BTreeSet<String> {
    let names = regex::Regex::new(r"rigger_[a-z_]+").unwrap();
    rules
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.contains("runbook_url"))
        .flat_map(|l| names.find_iter(l).map(|m| m.as_str().to_owned()).collect::<Vec<_>>())
        .filter(|n| !n.ends_with('_'))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_metric_an_alert_uses_is_exported_by_a_running_agent() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeApiServer::start().await.unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    fake.write_kubeconfig(&kubeconfig).unwrap();
    let github = FakeGithub::start().await;
    let repo = TestRepo::new(dir.path(), "apps");
    repo.commit("one", &[("catalog-info.yaml", Some(&crate::support::component("web", "v1")))]);
    let port = free_port();
    std::fs::create_dir_all(dir.path().join("local")).unwrap();
    std::fs::write(dir.path().join("local/catalog-info.yaml"), crate::support::component("docs", "v1")).unwrap();
    let sources = format!(
        "  - name: apps\n    interval: 1h\n    git: {{ url: '{}' }}\n  - name: acme\n    interval: 1h\n    github: {{ org: acme, api_url: '{}' }}\n  - name: docs\n    interval: 1h\n    local: {{ path: local }}\n",
        repo.file_url(),
        github.base
    );
    let db = format!("sqlite://{}/rigger.db", dir.path().display());
    let config = write_config(dir.path(), &db, &format!("127.0.0.1:{port}"), &sources);
    let text = std::fs::read_to_string(&config).unwrap()
        + &format!(
            "webhooks:\n  github:\n    secret: {{ env: HOOK_SECRET }}\nkubernetes:\n  kubeconfig: {}\ncommit_statuses:\n  page_url: https://status.example.com/\n",
            kubeconfig.display()
        );
    std::fs::write(&config, text).unwrap();
    let mut daemon = Daemon::start_with_env(&config, port, &[("HOOK_SECRET", "s3cret")]);
    daemon.wait_for("/readyz", 200).await;
    let exported = daemon.get_text("/metrics").await;
    let rules = std::fs::read_to_string(repo_file("alerts/rigger.rules.yml")).unwrap();
    let used = metrics_in_rules(&rules);
    assert!(used.len() >= 10, "{used:?}");
    let names: BTreeSet<&str> =
        exported.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split(['{', ' ']).next()).collect();
    let missing: Vec<&String> = used.iter().filter(|m| !names.contains(m.as_str())).collect();
    assert!(missing.is_empty(), "rules use metrics the agent does not export: {missing:?}\n{exported}");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo_file("dashboards/rigger.json")).unwrap()).unwrap();
    let queries: String = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter().map(|t| t["expr"].as_str().unwrap().to_owned()))
        .collect::<Vec<_>>()
        .join("\n");
    let charted = metrics_in_rules(&queries);
    assert!(charted.len() >= 15, "{charted:?}");
    let missing: Vec<&String> = charted.iter().filter(|m| !names.contains(m.as_str())).collect();
    assert!(missing.is_empty(), "the dashboard charts metrics the agent does not export: {missing:?}");
    let documented = documented_metrics();
    assert!(documented.len() >= 30, "{documented:?}");
    let missing: Vec<&String> = documented.iter().filter(|m| !names.contains(m.as_str())).collect();
    assert!(missing.is_empty(), "docs/metrics.md documents series absent at start-up: {missing:?}\n{exported}");
    for series in ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"] {
        assert!(names.contains(series), "{series} missing:\n{exported}");
    }
    let build = exported
        .lines()
        .find(|l| l.starts_with("rigger_build_info{commit=\""))
        .unwrap_or_else(|| panic!("no build info:\n{exported}"));
    assert!(build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))) && build.ends_with(" 1"), "{build}");
    assert!(
        exported.contains("rigger_http_request_duration_seconds_count{route=\"/readyz\",status_class=\"2xx\"}"),
        "requests are timed by route and status class:\n{exported}"
    );
    assert!(daemon.terminate().success());
}

/// The series `docs/metrics.md` documents (its table's first column), histograms by their
/// `_count` series.
fn documented_metrics() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(repo_file("docs/metrics.md")).unwrap();
    let row = regex::Regex::new(r"^\| `((?:rigger|process)_[a-z_]+)` \| (counter|gauge|histogram) \|").unwrap();
    doc.lines()
        .filter_map(|l| row.captures(l))
        .map(|c| if &c[2] == "histogram" { format!("{}_count", &c[1]) } else { c[1].to_owned() })
        .collect()
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(repo_file("systemd/rigger.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/rigger run"));
    // verify checks that the binary exists: point it at the one under test.
    let here = unit.replace("/usr/local/bin/rigger", env!("CARGO_BIN_EXE_rigger"));
    std::fs::write(dir.path().join("rigger.service"), here).unwrap();
    let verified = tool("systemd-analyze", &["verify", "rigger.service"], dir.path());
    let stderr = String::from_utf8_lossy(&verified.stderr);
    assert!(verified.status.success(), "{stderr}");
    assert!(!stderr.contains("rigger.service"), "systemd-analyze has remarks on the unit: {stderr}");
    for hardening in [
        "Type=notify",
        "DynamicUser=yes",
        "StateDirectory=rigger",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "RestrictAddressFamilies=",
        "SystemCallFilter=@system-service",
        "EnvironmentFile=",
        "RestartPreventExitStatus=64",
        "WatchdogSec=",
    ] {
        assert!(unit.contains(hardening), "the unit lacks {hardening:?}");
    }
}

/// Datagrams received on the notify socket until `times` of them carry `want` (or the
/// deadline passes).
fn receive(socket: &UnixDatagram, want: &str, times: usize) -> Vec<String> {
    let started = Instant::now();
    let mut buffer = [0u8; 4096];
    let mut seen: Vec<String> = Vec::new();
    while seen.iter().filter(|m| m.contains(want)).count() < times {
        assert!(started.elapsed() < DEADLINE, "not {times} × {want} on the notify socket; got {seen:?}");
        if let Ok(n) = socket.recv(&mut buffer) {
            seen.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_speaks_systemds_notify_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let repo = TestRepo::new(dir.path(), "apps");
    repo.commit("one", &[("catalog-info.yaml", Some(&crate::support::component("web", "v1")))]);
    let port = free_port();
    let db = format!("sqlite://{}/rigger.db", dir.path().display());
    let sources = format!("  - name: apps\n    interval: 1h\n    git: {{ url: '{}' }}\n", repo.file_url());
    let config = write_config(dir.path(), &db, &format!("127.0.0.1:{port}"), &sources);
    let daemon = Daemon::start_with_env(
        &config,
        port,
        &[("NOTIFY_SOCKET", socket_path.to_str().unwrap()), ("WATCHDOG_USEC", "200000")],
    );
    let socket = std::sync::Arc::new(socket);
    let receiver = socket.clone();
    // Watchdog pings may come before READY=1 (systemd takes them from the start); nothing else may.
    let first = tokio::task::spawn_blocking(move || receive(&receiver, "READY=1", 1)).await.unwrap();
    let before_ready = first.iter().take_while(|m| !m.contains("READY=1"));
    assert!(before_ready.clone().all(|m| m == "WATCHDOG=1\n"), "only pings before READY=1: {first:?}");
    let (code, ready) = daemon.get_json("/readyz").await;
    assert_eq!(code, 200, "READY=1 only once serving and the first pass is done: {ready}");
    let receiver = socket.clone();
    tokio::task::spawn_blocking(move || receive(&receiver, "WATCHDOG=1", 2)).await.unwrap();
    assert!(daemon.terminate().success());
    let receiver = socket.clone();
    tokio::task::spawn_blocking(move || receive(&receiver, "STOPPING=1", 1)).await.unwrap();
}

#[test]
fn every_config_key_is_documented() {
    let raw = std::fs::read_to_string(repo_file("agent/config/raw.rs")).unwrap();
    let docs = std::fs::read_to_string(repo_file("docs/configuration.md")).unwrap();
    let field = regex::Regex::new(r"^\s+pub ([a-z_]+): ").unwrap();
    let keys: BTreeSet<&str> =
        raw.lines().filter_map(|l| field.captures(l)).map(|c| c.get(1).unwrap().as_str()).collect();
    assert!(keys.len() > 30, "{keys:?}");
    // A key is documented as a whole path segment: `key`, `key.…`, `key[]…`, `….key`, `….key.…`.
    let documented = |k: &str| {
        [format!("`{k}`"), format!("`{k}."), format!("`{k}["), format!(".{k}`"), format!(".{k}.")]
            .iter()
            .any(|form| docs.contains(form))
    };
    let undocumented: Vec<&&str> = keys.iter().filter(|k| !documented(k)).collect();
    assert!(undocumented.is_empty(), "config keys missing from docs/configuration.md: {undocumented:?}");
}

/// Helm's merge of values: maps merge key by key, anything else replaces.
fn merge(base: &mut serde_yaml::Value, over: &serde_yaml::Value) {
    match (base, over) {
        (serde_yaml::Value::Mapping(base), serde_yaml::Value::Mapping(over)) => {
            for (key, value) in over {
                match base.get_mut(key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, over) => *base = over.clone(),
    }
}

#[test]
fn the_charts_config_values_are_configs_rigger_accepts() {
    let read = |path: &str| -> serde_yaml::Value {
        serde_yaml::from_str(&std::fs::read_to_string(repo_file(path)).unwrap()).unwrap()
    };
    let defaults = read("charts/rigger/values.yaml");
    let examples = std::fs::read_dir(repo_file("charts/rigger/examples")).unwrap();
    let mut checked = 0;
    for example in std::iter::once(None).chain(examples.map(|e| Some(e.unwrap().path()))) {
        let mut values = defaults.clone();
        if let Some(path) = &example {
            merge(&mut values, &serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap());
        }
        let config = serde_yaml::to_string(&values["config"]).unwrap();
        let parsed = rigger::config::Config::parse(&config, Path::new("/etc/rigger"));
        assert!(
            parsed.is_ok(),
            "{example:?}: the chart's config is not one Rigger accepts: {:?}\n{config}",
            parsed.err()
        );
        checked += 1;
    }
    assert!(checked >= 4, "values.yaml and the examples");
}
