//! Serves bare repositories over smart HTTP by running the real `git http-backend` as CGI, the
//! way a web server in front of a git host does. Optionally demands HTTP basic auth, like GitHub
//! does for private repositories (`401` with `WWW-Authenticate` when the credentials are absent).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use tokio::io::AsyncWriteExt;

#[derive(Clone)]
struct Backend {
    root: PathBuf,
    /// `(user, password)` required when set.
    auth: Option<(String, String)>,
    requests: Requests,
}

/// Every request the server answered, as `METHOD /path`, so tests can see what a client asked.
pub type Requests = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

pub struct GitHttpServer {
    pub addr: SocketAddr,
    pub requests: Requests,
    /// The CA certificate (PEM) that signed the server's certificate, when serving HTTPS.
    pub ca_file: Option<PathBuf>,
}

impl GitHttpServer {
    pub async fn start(root: PathBuf, auth: Option<(&str, &str)>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Requests::default();
        let app = app(root, auth, requests.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        Self { addr, requests, ca_file: None }
    }

    /// HTTPS with a certificate for `localhost` signed by a CA made on the spot; the CA is
    /// written to `ca_dir` so a client can trust it (`SSL_CERT_FILE`).
    pub async fn start_tls(root: PathBuf, auth: Option<(&str, &str)>, ca_dir: &std::path::Path) -> Self {
        let (config, ca_pem) = super::tls::server_config();
        let ca_file = ca_dir.join("ca.pem");
        std::fs::write(&ca_file, ca_pem).expect("write CA");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Requests::default();
        super::tls::serve(listener, config, app(root, auth, requests.clone()));
        Self { addr, requests, ca_file: Some(ca_file) }
    }

    pub fn url(&self, repo: &str) -> String {
        match self.ca_file {
            Some(_) => format!("https://localhost:{}/{repo}", self.addr.port()),
            None => format!("http://{}/{repo}", self.addr),
        }
    }
}

fn app(root: PathBuf, auth: Option<(&str, &str)>, requests: Requests) -> axum::Router {
    let backend = Backend { root, auth: auth.map(|(u, p)| (u.to_owned(), p.to_owned())), requests };
    axum::Router::new().fallback(handle).with_state(backend)
}

async fn handle(State(backend): State<Backend>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    backend.requests.lock().expect("request log").push(format!("{method} {}", uri.path()));
    if let Some((user, password)) = &backend.auth {
        if !authorized(&headers, user, password) {
            return Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header("WWW-Authenticate", "Basic realm=\"git\"")
                .body(Body::empty())
                .expect("response");
        }
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let mut child = tokio::process::Command::new(format!("{}/git-http-backend", exec_path()))
        .env_clear()
        .env("GIT_PROJECT_ROOT", &backend.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", uri.path())
        .env("QUERY_STRING", uri.query().unwrap_or_default())
        .env("REQUEST_METHOD", method.as_str())
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_USER", backend.auth.as_ref().map(|(u, _)| u.as_str()).unwrap_or_default())
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("git http-backend runs");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(&body).await.expect("write body");
    drop(stdin);
    let output = child.wait_with_output().await.expect("http-backend output");
    cgi_response(&output.stdout)
}

fn authorized(headers: &HeaderMap, user: &str, password: &str) -> bool {
    use base64::Engine;
    let expected = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Basic {expected}"))
}

fn exec_path() -> String {
    let out = std::process::Command::new("git").arg("--exec-path").output().expect("git --exec-path");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Splits CGI output into headers (including `Status:`) and body.
fn cgi_response(raw: &[u8]) -> Response {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, 4));
    let split = split.or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let (end, skip) = split.expect("CGI headers");
    let mut builder = Response::builder();
    for line in String::from_utf8_lossy(&raw[..end]).lines() {
        let Some((name, value)) = line.split_once(':') else { continue };
        if name.eq_ignore_ascii_case("status") {
            let code: u16 = value.trim().split(' ').next().unwrap_or("200").parse().unwrap_or(200);
            builder = builder.status(code);
        } else {
            builder = builder.header(name.trim(), value.trim());
        }
    }
    builder.body(Body::from(raw[end + skip..].to_vec())).expect("response")
}
