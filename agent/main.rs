//! The `rigger` binary; everything lives in the library.

/// A sync allocates and frees millions of small strings and JSON nodes; glibc's allocator spent
/// a third of the agent's CPU on a large ingest (docs/benchmarks.md), mimalloc a fraction of it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    rigger::app::cli::main()
}
