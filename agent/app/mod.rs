//! Wiring: the command line, the daemon's supervision and shutdown, and the sync pass that
//! connects source → catalog → store. The only place that knows every stage.

pub mod cli;
mod context;
mod daemon;
mod discovered;
mod discovery;
mod exit;
mod one_shot;
mod pass;
mod plan;
mod queue;
mod statuses;
mod sync;
mod systemd;
mod template;
mod template_sources;
