//! Logs and metrics: tracing-subscriber set up once in `main`, one [`Metrics`] struct
//! registered in one Prometheus registry, shared by every stage, and each source's
//! [`Progress`] through a pass.

mod log_memory;
mod metrics;
mod progress;

pub use log_memory::{LogMemory, Problem, Scope};
pub use metrics::Metrics;
pub use progress::{Progress, SourceProgress};

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The filter when `RUST_LOG` is not set: `info`, with PostgreSQL's notices (such as "relation
/// already exists, skipping", which sqlx logs at info) left out.
const DEFAULT_FILTER: &str = "info,sqlx::postgres::notice=warn";

/// Added to a `RUST_LOG` that does not mention sqlx: notices only when asked for by name.
const NOTICES: &str = "sqlx::postgres::notice=warn";

/// Installs the global subscriber. `RUST_LOG` filters (default [`DEFAULT_FILTER`]; PostgreSQL
/// notices stay out unless it names sqlx); logs go to
/// stderr so stdout stays clean for `validate --format json`. Colour only on a terminal, and
/// never with `NO_COLOR` set (<https://no-color.org>): files and pipes get plain text.
pub fn init_logging(format: LogFormat) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => {
            let filter = EnvFilter::new(&directives);
            // Only ever quieter: under `RUST_LOG=error` the notices' `warn` would be louder.
            let verbose = filter.max_level_hint().is_none_or(|max| max >= tracing::level_filters::LevelFilter::INFO);
            match NOTICES.parse() {
                Ok(notices) if verbose && !directives.contains("sqlx") => filter.add_directive(notices),
                _ => filter,
            }
        }
        _ => EnvFilter::new(DEFAULT_FILTER),
    };
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Pretty => builder.with_ansi(colour).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_ansi(false).try_init(),
    };
    // A second init (tests calling twice) keeps the first subscriber; that is fine.
    drop(result);
}

/// A duration as people read it in a log line: `750ms`, `2s 300ms` (to the millisecond).
pub struct Rounded(pub std::time::Duration);

impl std::fmt::Display for Rounded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let millis = u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX);
        write!(f, "{}", humantime::format_duration(std::time::Duration::from_millis(millis)))
    }
}

/// Milliseconds since the Unix epoch: the clock progress, the store and the logs share.
pub fn now_millis() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// An error and its causes on one line, each in its own words (`a: b: c`), never the debug
/// shapes some libraries print in alternate mode. A cause its parent already quotes is left out.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(err) = next {
        let text = err.to_string();
        if !parts.last().is_some_and(|last| last.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}
