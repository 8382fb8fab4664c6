//! The `amorsize` command line: a thin layer over the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod cmd;

/// Parallelism that never makes things slower.
#[derive(Debug, Parser)]
#[command(name = "amorsize", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show what this machine offers (CPUs, cores, quota, memory) and where each figure came from.
    Info(cmd::info::Args),
    /// Show, clear or locate the cache of calibrations and past runs.
    #[cfg(feature = "cache")]
    Cache(cmd::cache::Args),
    /// Run a command over many inputs, with a measured number of parallel jobs (like xargs -P or
    /// GNU parallel, without guessing -j).
    #[cfg(unix)]
    Run(cmd::run::Args),
    /// Run a command over many inputs (Unix only: not available on this system).
    #[cfg(not(unix))]
    Run(cmd::RunUnsupported),
    /// Benchmark amorsize on this machine against the serial loop, rayon, a naive hand-out and
    /// the measured best (oracle), over built-in workloads; print a table, JSON and SVG charts.
    Bench(cmd::bench::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info(args) => cmd::info::run(args),
        #[cfg(unix)]
        Command::Run(args) => cmd::run::run(args),
        #[cfg(not(unix))]
        Command::Run(_) => cmd::run_unsupported(),
        #[cfg(feature = "cache")]
        Command::Cache(args) => cmd::cache::run(args),
        Command::Bench(args) => cmd::bench::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // A closed pipe (`amorsize info | head`) is not a failure.
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::BrokenPipe {
                    return ExitCode::SUCCESS;
                }
            }
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
