//! `amorsize info`: what the probe found.

use std::io::Write;
use std::process::ExitCode;

/// Options of `amorsize info`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Prints the machine's figures.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let machine = amorsize::probe::machine();
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, machine)?;
        writeln!(out)?;
    } else {
        writeln!(out, "logical CPUs  {}", machine.logical_cpus())?;
    }
    Ok(ExitCode::SUCCESS)
}
