//! The `rigger` binary; everything lives in the library.

fn main() -> std::process::ExitCode {
    rigger::app::cli::main()
}
