//! The retry policy of a pass's store writes and git fetches: capped, jittered exponential
//! backoff, driven by each error's `is_transient()`, every retry counted in
//! `rigger_retries_total{operation}`. (The work queue, the commit status worker and the API
//! server client back off on their own terms.)

use std::future::Future;

use backon::{ExponentialBuilder, Retryable};

use crate::config::RetryConfig;
use crate::telemetry::Metrics;

/// Errors that know whether trying again could help.
pub trait Transient: std::fmt::Display {
    fn is_transient(&self) -> bool;
}

/// Runs `attempt` until it succeeds, fails permanently, or the attempts run out.
pub async fn retry<T, E, F, Fut>(
    policy: RetryConfig,
    metrics: &Metrics,
    operation: &'static str,
    attempt: F,
) -> Result<T, E>
where
    E: Transient,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let backoff = ExponentialBuilder::default()
        .with_min_delay(policy.initial)
        .with_max_delay(policy.max)
        .with_max_times(policy.max_attempts.saturating_sub(1) as usize)
        .with_jitter();
    attempt
        .retry(backoff)
        .when(Transient::is_transient)
        .notify(|err, delay| {
            // Counted, and logged at debug: a retry that succeeds is not an operator's concern,
            // and one that fails for good is reported once by whoever gave up.
            metrics.retries.with_label_values(&[operation]).inc();
            tracing::debug!(operation, error = %err, retry_in = %crate::telemetry::Rounded(delay), "transient failure, retrying");
        })
        .await
}
