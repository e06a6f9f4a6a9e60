//! systemd's notify protocol, for `Type=notify` units: `READY=1` once HTTP serves and the first
//! sync pass is done, `WATCHDOG=1` every half watchdog interval while every loop is alive,
//! `STOPPING=1` when shutdown begins. Outside systemd (no `NOTIFY_SOCKET`) each call does nothing.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::warn;

fn notify(states: &[NotifyState]) {
    if let Err(err) = sd_notify::notify(states) {
        warn!(error = %err, "cannot notify systemd");
    }
}

pub fn ready() {
    notify(&[NotifyState::Ready, NotifyState::Status("serving; first sync pass done")]);
}

pub fn stopping() {
    notify(&[NotifyState::Stopping, NotifyState::Status("shutting down")]);
}

/// Pings systemd's watchdog (when `WatchdogSec=` is set) while `tracker` still runs at least
/// `loops` tasks and `serving()` holds: a loop or the HTTP server that died stops the pings,
/// and systemd restarts the service. (A wedged runtime stops them too: this task stops running.)
pub async fn watchdog(tracker: TaskTracker, loops: usize, serving: impl Fn() -> bool, cancel: CancellationToken) {
    let Some(timeout) = sd_notify::watchdog_enabled() else { return };
    let every = (timeout / 2).max(Duration::from_millis(10));
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        if tracker.len() >= loops && serving() {
            notify(&[NotifyState::Watchdog]);
        } else {
            warn!(running = tracker.len(), expected = loops, "a loop has stopped; withholding the watchdog ping");
        }
    }
}
