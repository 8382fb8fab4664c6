//! One module per subcommand.

pub mod bench;
#[cfg(feature = "cache")]
pub mod cache;
pub mod info;
#[cfg(unix)]
pub mod run;

/// `amorsize run` where it is not built (Windows): takes any arguments, so that the command
/// answers with why rather than with a usage error.
#[cfg(not(unix))]
#[derive(Debug, clap::Args)]
pub struct RunUnsupported {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    _args: Vec<std::ffi::OsString>,
}

/// Why `amorsize run` is not on this system.
#[cfg(not(unix))]
pub fn run_unsupported() -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!(
        "amorsize run is not available on this system: it starts each command in a process \
         group of its own and stops it with Unix signals; run it on Linux or macOS (on Windows, \
         inside WSL)"
    )
}
