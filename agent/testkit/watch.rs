//! Watches: newline-delimited JSON events over a chunked response, replayed from a
//! resourceVersion or starting with the current state, filtered by selectors the way the real
//! server filters them (an object leaving a selector is DELETED for that watch).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::io::ReaderStream;
use tokio_util::sync::CancellationToken;

use super::errors::ApiError;
use super::resources::ResourceType;
use super::select::Selector;
use super::server::{lock, Shared};
use super::store::{Change, ChangeType};
use super::world::present;

/// Bookmarks keep an idle watch's resourceVersion fresh; the real server sends about one a minute.
const BOOKMARK_EVERY: Duration = Duration::from_secs(30);
/// The real server picks 30–60 minutes when a client gives no `timeoutSeconds`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Room for a burst of events before the writer waits on the client.
const BUFFER: usize = 256 * 1024;

pub struct WatchRequest {
    pub rt: ResourceType,
    pub namespace: Option<String>,
    pub selector: Selector,
    pub resource_version: Option<String>,
    pub bookmarks: bool,
    pub send_initial_events: bool,
    pub timeout: Option<Duration>,
}

/// What one watch shows of the store's changes.
struct View {
    rt: ResourceType,
    namespace: Option<String>,
    selector: Selector,
    /// The newest revision this watch has seen, bookmarked or not.
    seen: u64,
}

impl View {
    fn event(&self, change: &Change) -> Option<String> {
        let key = &change.key;
        if key.group != self.rt.group || key.plural != self.rt.plural {
            return None;
        }
        if self.namespace.as_ref().is_some_and(|ns| *ns != key.namespace) {
            return None;
        }
        let now = self.selector.matches(&change.object);
        let before = change.old.as_ref().is_some_and(|old| self.selector.matches(old));
        let kind = match (change.kind, before, now) {
            (ChangeType::Added, _, true) | (ChangeType::Modified, false, true) => "ADDED",
            (ChangeType::Modified, true, true) => "MODIFIED",
            (ChangeType::Modified, true, false) | (ChangeType::Deleted, true, _) => "DELETED",
            _ => return None,
        };
        Some(line(kind, &present(&self.rt, &change.object)))
    }

    fn bookmark(&self, initial_end: bool) -> String {
        let mut metadata = json!({"resourceVersion": self.seen.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line("BOOKMARK", &json!({"kind": self.rt.kind, "apiVersion": self.rt.api_version(), "metadata": metadata}))
    }
}

fn line(kind: &str, object: &Value) -> String {
    format!("{}\n", json!({"type": kind, "object": object}))
}

/// Starts a watch: the events it opens with are computed and the subscription taken under one
/// lock, so no change falls between them.
pub fn start(shared: &Arc<Shared>, request: WatchRequest) -> Result<Response, ApiError> {
    let world = lock(&shared.world);
    let from = match request.resource_version.as_deref().filter(|rv| !rv.is_empty() && *rv != "0") {
        Some(rv) => Some(
            rv.parse::<u64>().map_err(|_| ApiError::bad_request(format!("resourceVersion: Invalid value: {rv:?}")))?,
        ),
        None => None,
    };
    let mut view =
        View { rt: request.rt, namespace: request.namespace, selector: request.selector, seen: world.store.revision() };
    let mut opening = Vec::new();
    let receiver = match from {
        // Without a resourceVersion the watch starts with the current state as ADDED events.
        None => {
            let objects = world.store.list(&view.rt.group, &view.rt.plural, view.namespace.as_deref());
            opening.extend(
                objects.filter(|(_, o)| view.selector.matches(o)).map(|(_, o)| line("ADDED", &present(&view.rt, o))),
            );
            if request.send_initial_events && request.bookmarks {
                opening.push(view.bookmark(true));
            }
            world.store.watch_from(view.seen).map(|resume| resume.receiver)
        }
        Some(from) => world.store.watch_from(from).map(|resume| {
            opening.extend(resume.replay.iter().filter_map(|change| view.event(change)));
            resume.receiver
        }),
    };
    drop(world);
    let (writer, reader) = tokio::io::duplex(BUFFER);
    match receiver {
        Ok(receiver) => {
            let stop = shared.watch_token();
            let timeout = request.timeout.unwrap_or(DEFAULT_TIMEOUT);
            let bookmarks = request.bookmarks;
            tokio::spawn(async move {
                // An error means the client went away: the watch simply ends.
                let _ = pump(writer, &mut view, opening, receiver, &stop, timeout, bookmarks).await;
            });
        }
        // The real server answers 200 and sends the 410 as an ERROR event; clients relist on it.
        Err(too_old) => {
            let expired = ApiError::expired(from.unwrap_or_default(), too_old.oldest).status_body();
            tokio::spawn(async move {
                let mut writer = writer;
                let _ = writer.write_all(line("ERROR", &expired).as_bytes()).await;
            });
        }
    }
    Ok(([(header::CONTENT_TYPE, "application/json")], Body::from_stream(ReaderStream::new(reader))).into_response())
}

async fn pump(
    mut out: DuplexStream,
    view: &mut View,
    opening: Vec<String>,
    mut changes: broadcast::Receiver<Arc<Change>>,
    stop: &CancellationToken,
    timeout: Duration,
    bookmarks: bool,
) -> std::io::Result<()> {
    for event in opening {
        out.write_all(event.as_bytes()).await?;
    }
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + BOOKMARK_EVERY, BOOKMARK_EVERY);
    loop {
        tokio::select! {
            // Stopping wins over pending changes: a dropped watch sends nothing more.
            biased;
            () = stop.cancelled() => return Ok(()),
            () = &mut deadline => return Ok(()),
            _ = ticker.tick(), if bookmarks => out.write_all(view.bookmark(false).as_bytes()).await?,
            received = changes.recv() => match received {
                Ok(change) => {
                    view.seen = view.seen.max(change.revision);
                    if let Some(event) = view.event(&change) {
                        out.write_all(event.as_bytes()).await?;
                    }
                }
                // A watch too slow to keep up is ended; the client resumes from its last event.
                Err(RecvError::Lagged(_) | RecvError::Closed) => return Ok(()),
            },
        }
    }
}
