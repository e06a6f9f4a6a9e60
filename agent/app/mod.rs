//! Wiring: the command line, the daemon's supervision and shutdown, and the sync pass that
//! connects source → catalog → store. The only place that knows every stage.

pub mod cli;
pub mod context;
mod daemon;
mod discovered;
mod discovery;
mod exit;
mod one_shot;
pub mod pass;
mod plan;
mod queue;
mod statuses;
pub mod sync;
mod systemd;
mod template;
mod template_sources;
