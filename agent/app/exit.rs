//! The process's exit codes, which every command shares.

/// Exit code for bad configuration or usage (BSD `EX_USAGE`; systemd's
/// `RestartPreventExitStatus=64` keeps a broken config from restart-looping).
pub const EXIT_USAGE: u8 = 64;
/// Something failed: a source, a document, a render.
pub const EXIT_FAILED: u8 = 1;
