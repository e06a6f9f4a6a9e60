//! Logs and metrics: tracing-subscriber set up once in `main`, one [`Metrics`] struct
//! registered in one Prometheus registry, shared by every stage, and each source's
//! [`Progress`] through a pass.

mod metrics;
mod progress;

pub use metrics::Metrics;
pub use progress::{Progress, SourceProgress};

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Installs the global subscriber. `RUST_LOG` filters (default `info`); logs go to stderr so
/// stdout stays clean for `validate --format json`.
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // A second init (tests calling twice) keeps the first subscriber; that is fine.
    drop(result);
}
