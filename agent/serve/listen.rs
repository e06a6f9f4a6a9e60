//! The listener in front of the router: a bound on open connections (beyond it new ones wait in
//! the kernel's backlog instead of taking file handles), a deadline for a first byte and for
//! request headers (silent and slowloris connections are closed), and a graceful drain on
//! shutdown.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::warn;

/// How long a client may take to send a request's headers, and how long a kept-alive
/// connection may sit idle before its next request.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// After a failed `accept` (out of file handles, say), a pause before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// File handles kept for everything but HTTP connections: the database pool, git, the file
/// watcher, logs.
const RESERVED_FILES: usize = 256;

/// `configured`, lowered to fit the process's open-file limit (`/proc/self/limits`), so
/// connections can never take the handles the rest of the agent needs. Returns the bound and
/// the limit when it had to be lowered.
pub fn connection_bound(configured: usize) -> (usize, Option<usize>) {
    let limit = std::fs::read_to_string("/proc/self/limits").ok().and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("Max open files"))?;
        line.split_whitespace().nth(3)?.parse::<usize>().ok()
    });
    match limit {
        Some(limit) if limit.saturating_sub(RESERVED_FILES) < configured => {
            ((limit.saturating_sub(RESERVED_FILES)).max(16), Some(limit))
        }
        _ => (configured, None),
    }
}

/// Serves `app` on `listener` with at most `max_connections` open connections, until `cancel`;
/// then stops accepting and lets open connections finish their requests.
pub async fn serve(listener: TcpListener, app: Router, max_connections: usize, cancel: CancellationToken) {
    let permits = Arc::new(Semaphore::new(max_connections));
    let connections = TaskTracker::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
    builder.http2().timer(TokioTimer::new()).keep_alive_interval(Some(HEADER_TIMEOUT));
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit,
            () = cancel.cancelled() => break,
        };
        let Ok(permit) = permit else { break };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = cancel.cancelled() => break,
        };
        let (builder, app, cancel) = (builder.clone(), app.clone(), cancel.clone());
        connections.spawn(async move {
            let _permit = permit;
            // A connection that sends nothing is closed too: the header deadline only starts
            // with a request's first byte.
            let mut first = [0u8; 1];
            if !matches!(tokio::time::timeout(HEADER_TIMEOUT, stream.peek(&mut first)).await, Ok(Ok(1))) {
                return;
            }
            let service = TowerToHyperService::new(app);
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                // A client that goes away mid-request is not an error of ours.
                _ = connection.as_mut() => {}
                () = cancel.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    connections.close();
    connections.wait().await;
}
