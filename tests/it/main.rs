//! Integration tests: one binary (ripgrep's layout), modules per behaviour.

mod backbone;
mod git_transports;
mod support;
