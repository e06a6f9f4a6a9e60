//! Integration tests: one binary (ripgrep's layout), modules per behaviour.
// Test helpers panic on failure by design: the panic is the test report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod backbone;
mod backstage_backend;
mod bad_input;
mod catalog_client;
mod cli;
mod commit_statuses;
mod conformance;
mod daemon;
mod differential;
mod discovery;
mod fake_apiserver;
mod first_day;
mod git_transports;
mod isolation;
mod layout;
mod operations;
mod outage;
mod permissions;
mod reconcile;
mod replicas;
mod serving;
mod status_page;
mod store;
mod support;
mod template_render;
mod templates;
mod tenancy;
mod webhooks;
