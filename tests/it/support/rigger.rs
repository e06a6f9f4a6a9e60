//! Driving the `rigger` binary as a process: config files, one-shot commands, and the daemon
//! observed only through HTTP and its exit status.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// Generous: a debug build on a busy 2-core machine; polling returns as soon as it is true.
pub const DEADLINE: Duration = Duration::from_secs(60);

pub fn rigger() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rigger"));
    command.env("RUST_LOG", "warn").env_remove("RIGGER_CONFIG");
    command
}

/// Writes a config file with the given database, listen address and `sources:` YAML.
pub fn write_config(dir: &Path, db_url: &str, listen: &str, sources: &str) -> PathBuf {
    let path = dir.join("rigger.yaml");
    let text = format!(
        "database:\n  url: {db_url}\nserver:\n  listen: {listen}\ncache_dir: cache\nsync:\n  retry: {{ max_attempts: 2, initial: 50ms, max: 100ms }}\n  shutdown_grace: 5s\nsources:\n{sources}"
    );
    std::fs::write(&path, text).expect("write config");
    path
}

pub fn run(config: &Path, args: &[&str]) -> Output {
    rigger().arg("--config").arg(config).args(args).output().expect("rigger runs")
}

/// Runs `rigger ARGS` and returns its output and its peak resident memory in KiB, read by
/// Python's `getrusage` (the process has exited by the time Rust could look).
pub fn run_measured(args: &[&str]) -> (Output, u64) {
    let script = "import resource, subprocess, sys\n\
        r = subprocess.run(sys.argv[1:], capture_output=True)\n\
        sys.stderr.buffer.write(r.stderr)\n\
        sys.stdout.buffer.write(r.stdout)\n\
        print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n\
        sys.exit(r.returncode)";
    let output = Command::new("python3")
        .args(["-c", script, env!("CARGO_BIN_EXE_rigger")])
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("RIGGER_CONFIG")
        .output()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let peak = stderr.lines().last().and_then(|l| l.trim().parse().ok()).expect("peak RSS printed");
    (output, peak)
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A free loopback port (bound and released; the daemon binds it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

pub struct Daemon {
    child: Child,
    pub base: String,
}

impl Daemon {
    pub fn start(config: &Path, port: u16) -> Self {
        Self::start_with_env(config, port, &[])
    }

    /// [`Daemon::start`] with extra environment variables.
    pub fn start_with_env(config: &Path, port: u16, env: &[(&str, &str)]) -> Self {
        let child = rigger()
            .envs(env.iter().copied())
            .arg("--config")
            .arg(config)
            .arg("run")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("rigger run starts");
        Self { child, base: format!("http://127.0.0.1:{port}") }
    }

    /// Starts `rigger [global_args] run` with its logs (stderr, a file: not a terminal) written
    /// to `log`, at the default log level.
    pub fn start_logged(config: &Path, port: u16, global_args: &[&str], log: &Path) -> Self {
        let log = std::fs::File::create(log).expect("log file");
        let child = rigger()
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .args(global_args)
            .arg("--config")
            .arg(config)
            .arg("run")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("rigger run starts");
        Self { child, base: format!("http://127.0.0.1:{port}") }
    }

    /// Polls `path` until it answers `status`, or panics at the deadline.
    pub async fn wait_for(&mut self, path: &str, status: u16) {
        let started = Instant::now();
        loop {
            if let Ok(response) = reqwest::get(format!("{}{path}", self.base)).await {
                if response.status().as_u16() == status {
                    return;
                }
            }
            if let Ok(Some(exit)) = self.child.try_wait() {
                panic!("rigger run exited early with {exit}");
            }
            assert!(started.elapsed() < DEADLINE, "{path} did not answer {status} within {DEADLINE:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let response = reqwest::get(format!("{}{path}", self.base)).await.expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }

    pub async fn get_text(&self, path: &str) -> String {
        reqwest::get(format!("{}{path}", self.base)).await.expect("GET").text().await.expect("text body")
    }

    /// The process's peak resident memory so far, in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("proc status");
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM line");
        line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("VmHWM value")
    }

    /// Sends SIGTERM and waits (with the deadline) for the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        assert!(sent.success());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(started.elapsed() < DEADLINE, "rigger did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
