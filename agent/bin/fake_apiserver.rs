//! `fake-apiserver`: the test fake Kubernetes API server as a process, for kubectl and for
//! tests that drive a binary. Writes a kubeconfig pointing at itself, serves until SIGINT/SIGTERM.
//! Faults and the request log are under `/_fake/` (docs/fake-apiserver.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rigger::testkit::FakeApiServer;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Parser)]
#[command(about = "A fake Kubernetes API server over plain HTTP, for tests")]
struct Args {
    /// Address to serve on; port 0 picks a free one (the kubeconfig names the real port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Where to write a kubeconfig whose current context points at this server.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, "fake-apiserver failed");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> std::io::Result<()> {
    let server = FakeApiServer::start_on(args.listen).await?;
    if let Some(path) = &args.kubeconfig {
        server.write_kubeconfig(path)?;
    }
    tracing::info!(url = %server.url(), kubeconfig = %args.kubeconfig.as_deref().map(|p| p.display().to_string()).unwrap_or_default(), "fake API server listening");
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("stopping");
    server.shutdown().await;
    Ok(())
}
