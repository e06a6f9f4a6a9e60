//! The `rigger` command line: parsing, dispatch and exit codes
//! (0 ok, 1 some work failed, 64 bad config or usage).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use super::{daemon, one_shot, template};
use crate::config::{Config, CONFIG_ENV};
use crate::lint;
use crate::telemetry::{self, LogFormat};

pub use super::exit::{EXIT_FAILED, EXIT_USAGE};

/// How long blocking tasks get after the async side is done, before the process exits anyway.
const SHUTDOWN_STRAGGLERS: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug, Parser)]
#[command(name = "rigger", version, about = "GitOps agent: git repositories → Backstage catalog → store")]
struct Cli {
    /// Config file (YAML). Defaults to ./rigger.yaml.
    #[arg(long, global = true, env = CONFIG_ENV, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log output format; filter with `RUST_LOG`.
    #[arg(long, global = true, value_enum, default_value = "pretty")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: sync every source on its interval and serve HTTP.
    Run,
    /// One full sync pass over every source, then exit (the daemon is `rigger run`).
    Sync {
        /// Accepted for older scripts: a sync is always one pass.
        #[arg(long, hide = true)]
        once: bool,
    },
    /// Check catalog files the way the agent reads them; no config needed.
    Validate {
        /// Catalog files, or directories to search for them (a repository's root, say).
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "human")]
        format: lint::Format,
        /// Check only the documents of the files named: Location targets are not opened and
        /// placeholders are checked for form but not read (for editors and pre-commit hooks).
        #[arg(long)]
        no_follow: bool,
    },
    /// Software Template commands, for template authors; no config needed.
    Template {
        #[command(subcommand)]
        action: TemplateAction,
    },
    /// Print the cluster changes a sync would make, per entity (server-side dry run; writes
    /// nothing to the cluster or the catalog).
    Plan,
    /// Apply database migrations and exit.
    Migrate,
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Debug, Subcommand)]
enum TemplateAction {
    /// Render a template's fetch:template / fetch:plain steps into a directory, with the values
    /// a user would enter in the form.
    Render(template::RenderArgs),
}

#[derive(Debug, Subcommand)]
enum ConfigAction {
    /// Load and validate the config, resolve its secrets, and print a redacted summary.
    Check,
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { EXIT_USAGE } else { 0 };
            drop(err.print());
            return ExitCode::from(code);
        }
    };
    telemetry::init_logging(cli.log_format);
    if let Command::Validate { paths, format, no_follow } = &cli.command {
        let missing: Vec<&PathBuf> = paths.iter().filter(|p| !p.exists()).collect();
        if !missing.is_empty() {
            for path in missing {
                eprintln!("rigger validate: {}: no such file or directory", path.display());
            }
            return ExitCode::from(EXIT_USAGE);
        }
        let follow = if *no_follow { lint::Follow::No } else { lint::Follow::Yes };
        return match lint::run(paths, *format, follow, &mut std::io::stdout().lock(), &mut std::io::stderr().lock()) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(EXIT_FAILED),
            Err(err) => {
                eprintln!("rigger validate: {err}");
                ExitCode::from(EXIT_FAILED)
            }
        };
    }
    if let Command::Template { action: TemplateAction::Render(args) } = &cli.command {
        return template::render(args, cli.config.as_deref(), &mut std::io::stdout().lock());
    }
    let config_path = cli.config.clone().unwrap_or_else(|| PathBuf::from("rigger.yaml"));
    let config = match Config::load(&config_path) {
        Ok(config) => Arc::new(config),
        Err(err) => {
            eprintln!("rigger: {err}");
            if cli.config.is_none() {
                eprintln!("rigger: pass --config FILE or set {CONFIG_ENV}");
            }
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("rigger: cannot start the async runtime: {err}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let code = runtime.block_on(dispatch(cli.command, config, &config_path));
    // Blocking work (a git fetch, say) still running after the grace period must not hold the
    // process: it has been told to stop, and what it would write is rolled back anyway.
    runtime.shutdown_timeout(SHUTDOWN_STRAGGLERS);
    code
}

async fn dispatch(command: Command, config: Arc<Config>, config_path: &std::path::Path) -> ExitCode {
    match command {
        Command::Run => {
            // A secret that does not resolve is a configuration problem (64, which systemd does
            // not restart on), found before anything starts, as `config check` finds it.
            let unresolved = config.unresolved_secrets(config_path);
            if !unresolved.is_empty() {
                for problem in unresolved {
                    eprintln!("rigger: {problem}");
                }
                return ExitCode::from(EXIT_USAGE);
            }
            match super::context::Context::open(config) {
                Ok(ctx) => report(daemon::run(ctx).await),
                Err(code) => code,
            }
        }
        Command::Sync { once: _ } => one_shot::sync_once(config).await,
        Command::Migrate => one_shot::migrate(config).await,
        Command::Plan => super::plan::run(config).await,
        Command::Config { action: ConfigAction::Check } => one_shot::config_check(&config, config_path),
        Command::Validate { .. } | Command::Template { .. } => ExitCode::SUCCESS,
    }
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "rigger stopped on an error");
            ExitCode::from(EXIT_FAILED)
        }
    }
}
