//! The work queue between triggers (poll timers, file changes, webhooks, retries) and sync
//! passes: one entry per source however many triggers arrive, a fixed number of workers, and
//! per-source retry with capped, jittered exponential backoff after transient failures.
//! Permanent failures are parked: the source waits for its next trigger instead of retrying.
//!
//! Two lanes, each FIFO so a busy source cannot starve the rest: a push (a webhook, a file
//! changed on disk) goes ahead of periodic and cold work, so a merge shows up in a second even
//! while a thousand repositories wait for their first pass.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use backon::BackoffBuilder;

use crate::config::RetryConfig;
use crate::telemetry::{Metrics, Progress};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Queued {
        since: Instant,
        urgent: bool,
    },
    /// Being synced; `again` when a trigger arrived meanwhile (it may have missed the change),
    /// urgent when one of those was a push.
    Running {
        again: Option<bool>,
    },
}

/// Requests that mean someone just changed something and is waiting to see it.
fn is_urgent(reason: &str) -> bool {
    matches!(reason, "webhook" | "recorded" | "change" | "refresh")
}

#[derive(Debug)]
struct Entry {
    phase: Phase,
    /// Consecutive transient failures, for the backoff.
    failures: u32,
}

#[derive(Default)]
struct State {
    /// Pushes, served first.
    urgent: VecDeque<String>,
    /// Polls, retries, discovery, cold starts.
    order: VecDeque<String>,
    entries: HashMap<String, Entry>,
}

impl State {
    fn depth(&self) -> i64 {
        i64::try_from(self.urgent.len() + self.order.len()).unwrap_or(i64::MAX)
    }
}

/// How a pass ended, as far as scheduling is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Worth retrying soon (network, database).
    Transient,
    /// Will fail again until something changes (bad credentials, unsupported source).
    Permanent,
}

#[derive(Clone)]
pub struct WorkQueue {
    state: Arc<Mutex<State>>,
    ready: Arc<Notify>,
    metrics: Metrics,
    retry: RetryConfig,
    progress: Progress,
}

impl WorkQueue {
    pub fn new(metrics: Metrics, retry: RetryConfig, progress: Progress) -> Self {
        Self { state: Arc::default(), ready: Arc::new(Notify::new()), metrics, retry, progress }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks for a pass of `source`. Coalesces: a queued source stays where it is (a push moves
    /// it to the front lane); a running one runs once more when it finishes.
    pub fn request(&self, source: &str, reason: &str) {
        self.enqueue(source, reason, is_urgent(reason));
    }

    fn enqueue(&self, source: &str, reason: &str, urgent: bool) {
        let mut state = self.state();
        let entry = state.entries.entry(source.to_owned()).or_insert(Entry { phase: Phase::Idle, failures: 0 });
        match entry.phase {
            Phase::Queued { since, urgent: false } if urgent => {
                entry.phase = Phase::Queued { since, urgent: true };
                state.order.retain(|s| s != source);
                state.urgent.push_back(source.to_owned());
            }
            Phase::Queued { .. } | Phase::Running { again: Some(true) } => {
                self.metrics.queue_coalesced.with_label_values(&[reason]).inc();
                return;
            }
            Phase::Running { again: Some(false) } if !urgent => {
                self.metrics.queue_coalesced.with_label_values(&[reason]).inc();
                return;
            }
            Phase::Running { .. } => entry.phase = Phase::Running { again: Some(urgent) },
            Phase::Idle => {
                self.progress.enter(source, "queued");
                entry.phase = Phase::Queued { since: Instant::now(), urgent };
                let lane = if urgent { &mut state.urgent } else { &mut state.order };
                lane.push_back(source.to_owned());
            }
        }
        self.metrics.queue_requests.with_label_values(&[reason]).inc();
        self.metrics.queue_depth.set(state.depth());
        drop(state);
        self.ready.notify_one();
    }

    /// The next source to sync, waiting for one; marks it running.
    pub async fn next(&self) -> String {
        loop {
            // Register interest before looking, so a request between the look and the wait
            // is not missed.
            let notified = self.ready.notified();
            if let Some(source) = self.pop() {
                return source;
            }
            notified.await;
        }
    }

    fn pop(&self) -> Option<String> {
        let mut state = self.state();
        let source = state.urgent.pop_front().or_else(|| state.order.pop_front())?;
        if let Some(entry) = state.entries.get_mut(&source) {
            if let Phase::Queued { since, .. } = entry.phase {
                self.metrics.queue_wait.observe(since.elapsed().as_secs_f64());
            }
            entry.phase = Phase::Running { again: None };
        }
        self.metrics.queue_depth.set(state.depth());
        let more = state.depth() > 0;
        drop(state);
        if more {
            // Another worker may be waiting for the rest.
            self.ready.notify_one();
        }
        Some(source)
    }

    /// Records how a pass of `source` ended: requeues it if asked meanwhile, schedules a retry
    /// after a transient failure, parks it after a permanent one.
    pub fn finish(&self, source: &str, outcome: Outcome) {
        let (again, retry_in) = {
            let mut state = self.state();
            let Some(entry) = state.entries.get_mut(source) else { return };
            let again = match entry.phase {
                Phase::Running { again } => again,
                _ => None,
            };
            entry.phase = Phase::Idle;
            entry.failures = if outcome == Outcome::Transient { entry.failures.saturating_add(1) } else { 0 };
            let retry_in = (outcome == Outcome::Transient).then(|| self.backoff(entry.failures));
            (again, retry_in)
        };
        if let Some(urgent) = again {
            // A push that arrived mid-pass keeps its place ahead of the backlog.
            self.enqueue(source, "changed_during_sync", urgent);
        } else if let Some(delay) = retry_in {
            self.metrics.retries.with_label_values(&["pass"]).inc();
            let (queue, source) = (self.clone(), source.to_owned());
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                queue.request(&source, "retry");
            });
        }
    }

    /// The delay before retry number `failures`: backon's capped exponential backoff with jitter
    /// (so sources failing together, say in a database outage, do not retry in lockstep).
    fn backoff(&self, failures: u32) -> Duration {
        let mut delays = backon::ExponentialBuilder::default()
            .with_min_delay(self.retry.initial)
            .with_max_delay(self.retry.max)
            .with_jitter()
            .without_max_times()
            .build();
        // Past 2^32 times `initial` every delay is `max`: no need to walk further.
        let nth = usize::try_from(failures.saturating_sub(1).min(32)).unwrap_or(32);
        delays.nth(nth).unwrap_or(self.retry.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> WorkQueue {
        let retry = RetryConfig { max_attempts: 3, initial: Duration::from_millis(100), max: Duration::from_secs(2) };
        WorkQueue::new(Metrics::new(), retry, Progress::default())
    }

    #[tokio::test]
    async fn triggers_coalesce_into_one_entry_per_source() {
        let q = queue();
        for _ in 0..5 {
            q.request("a", "poll");
        }
        q.request("b", "poll");
        q.request("a", "retry");
        assert_eq!(q.next().await, "a");
        assert_eq!(q.next().await, "b");
        assert!(q.pop().is_none(), "six requests for a made one entry");
        q.request("c", "webhook");
        q.request("c", "webhook");
        q.request("c", "poll");
        assert_eq!(q.next().await, "c");
        assert!(q.pop().is_none(), "pushes coalesce too");
    }

    #[tokio::test]
    async fn a_request_during_a_pass_runs_it_again_after_the_others() {
        let q = queue();
        q.request("big", "poll");
        q.request("small", "poll");
        assert_eq!(q.next().await, "big");
        q.request("big", "webhook");
        q.request("big", "webhook");
        assert_eq!(q.next().await, "small", "big is running: its new request waits");
        q.finish("big", Outcome::Done);
        assert_eq!(q.next().await, "big", "requeued once, behind what was waiting");
        assert!(q.pop().is_none());
    }

    #[tokio::test]
    async fn pushes_go_ahead_of_periodic_and_cold_work() {
        let q = queue();
        for i in 0..1000 {
            q.request(&format!("cold-{i}"), "discovery");
        }
        q.request("cold-500", "webhook");
        q.request("edited", "change");
        assert_eq!(q.next().await, "cold-500", "a queued source a push names moves to the front lane");
        assert_eq!(q.next().await, "edited");
        assert_eq!(q.next().await, "cold-0", "then the backlog, in order");
        q.request("cold-0", "webhook");
        q.finish("cold-0", Outcome::Done);
        assert_eq!(q.next().await, "cold-0", "a push during its pass runs it again, ahead of the backlog");
        assert_eq!(q.next().await, "cold-1");
    }

    #[tokio::test]
    async fn a_permanent_failure_is_parked_until_the_next_trigger() {
        let q = queue();
        q.request("a", "poll");
        q.next().await;
        q.finish("a", Outcome::Permanent);
        assert!(q.pop().is_none());
        q.request("a", "webhook");
        assert_eq!(q.next().await, "a");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let q = queue();
        let first = q.backoff(1);
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(200), "{first:?}");
        let third = q.backoff(3);
        assert!(third >= Duration::from_millis(400), "{third:?}");
        for failures in [10, 50, u32::MAX] {
            assert!(q.backoff(failures) <= Duration::from_secs(4), "capped (jitter adds at most the delay again)");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_failure_is_retried_after_the_backoff() {
        let q = queue();
        q.request("a", "poll");
        q.next().await;
        let failed_at = tokio::time::Instant::now();
        q.finish("a", Outcome::Transient);
        assert!(q.pop().is_none(), "not at once");
        assert_eq!(q.next().await, "a");
        assert!(failed_at.elapsed() >= Duration::from_millis(100));
    }
}
