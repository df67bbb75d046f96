//! What this binary is: its version and the commit it was built from (`unknown` when built
//! outside a git checkout), for `--version`, the start-up log line and `aiops_build_info`.

/// The package version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commit the binary was built from, as `git rev-parse --short=12 HEAD` named it.
pub const COMMIT: &str = env!("AIOPS_COMMIT");

/// `--version`'s text after the program name.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("AIOPS_COMMIT"),
    ")"
);
