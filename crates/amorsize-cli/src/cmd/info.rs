//! `amorsize info`: what the probe found, and where each figure came from.

use std::fmt::Display;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use amorsize::probe::{Figure, Machine};
use anyhow::{bail, Context};

/// Options of `amorsize info`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON instead of a table (field names documented on `amorsize::probe::Machine`).
    #[arg(long)]
    json: bool,
    /// Read a copy of another machine's `proc/` and `sys/` under DIR instead of this machine's.
    /// The affinity mask then comes from DIR/proc/self/status (Cpus_allowed_list).
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
}

/// Prints the machine's figures.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let probed;
    let machine = match &args.root {
        Some(root) => {
            if !root.is_dir() {
                bail!("--root {}: not a directory", root.display());
            }
            let root = root
                .canonicalize()
                .with_context(|| format!("--root {}", root.display()))?;
            probed = Machine::read(&root);
            &probed
        }
        None => amorsize::probe::machine(),
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        // Serialized first so a closed pipe surfaces as the plain I/O error `main` forgives.
        let json = serde_json::to_string_pretty(machine)?;
        writeln!(out, "{json}")?;
    } else {
        write_table(&mut out, machine)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn write_table(out: &mut impl Write, m: &Machine) -> std::io::Result<()> {
    let cpu = m.cpu();
    let cgroup = m.cgroup();
    let memory = m.memory();
    writeln!(out, "machine at root {}", m.root().display())?;
    writeln!(out)?;
    let system = m.system();
    row(
        out,
        "CPU model",
        m.cpu_model().unwrap_or("unknown"),
        system.cpu_model(),
    )?;
    row(
        out,
        "kernel",
        m.kernel_release().unwrap_or("unknown"),
        system.kernel(),
    )?;
    row(out, "logical CPUs", cpu.logical().get(), cpu.logical())?;
    row(
        out,
        "affinity CPUs",
        format!("{} ({})", cpu.affinity().get(), cpu.affinity_list()),
        cpu.affinity(),
    )?;
    row(
        out,
        "usable cores",
        cpu.usable_cores().get(),
        cpu.usable_cores(),
    )?;
    writeln!(out, "{:<18}{}", "cgroup", cgroup.version())?;
    let dirs = cgroup.dirs();
    for (name, dir) in [
        ("  v2 dir", &dirs.v2),
        ("  v1 cpu dir", &dirs.cpu_v1),
        ("  v1 memory dir", &dirs.memory_v1),
    ] {
        if let Some(dir) = dir {
            writeln!(out, "{name:<18}{}", dir.display())?;
        }
    }
    let quota = match (m.cpu_quota(), m.quota_workers()) {
        (Some(cpus), Some(workers)) => format!("{cpus} CPUs → {workers} workers"),
        _ => "none".to_owned(),
    };
    row(out, "CPU quota", quota, cgroup.cpu_quota())?;
    row(
        out,
        "memory limit",
        bytes(cgroup.memory_max().get()),
        cgroup.memory_max(),
    )?;
    row(
        out,
        "memory.high",
        bytes(cgroup.memory_high().get()),
        cgroup.memory_high(),
    )?;
    row(
        out,
        "cgroup headroom",
        bytes(cgroup.memory_headroom().get()),
        cgroup.memory_headroom(),
    )?;
    row(
        out,
        "host memory",
        bytes(memory.host_total().get()),
        memory.host_total(),
    )?;
    row(
        out,
        "host available",
        bytes(memory.host_available().get()),
        memory.host_available(),
    )?;
    row(
        out,
        "total memory",
        bytes(memory.total().get()),
        memory.total(),
    )?;
    row(
        out,
        "available memory",
        bytes(memory.available().get()),
        memory.available(),
    )?;
    memory_rows(out, m)?;
    let load = m.cpu_load_now();
    row(
        out,
        "other runnable",
        load.competing()
            .get()
            .map_or_else(|| "unknown".to_owned(), |n| format!("{n} threads now")),
        load.competing(),
    )?;
    row(out, "CPU sharing", load.sharing().get(), load.sharing())?;
    if !m.warnings().is_empty() {
        writeln!(out)?;
        writeln!(out, "warnings:")?;
        for warning in m.warnings() {
            writeln!(out, "  {warning}")?;
        }
    }
    Ok(())
}

/// What the planner makes of the memory figures: the share workers may fill, and where the
/// memory one worker needs comes from on each backend.
fn memory_rows(out: &mut impl Write, m: &Machine) -> std::io::Result<()> {
    let headroom = amorsize::model::MEMORY_HEADROOM;
    let planned = m.available_memory().map(|a| (a as f64 * headroom) as u64);
    writeln!(
        out,
        "{:<18}{:<36}  {:.0} % of available memory (MEMORY_HEADROOM)",
        "workers may fill",
        bytes(planned),
        headroom * 100.0
    )?;
    let counting = if amorsize::alloc::installed() {
        "installed here"
    } else {
        "when the program installs it"
    };
    for (backend, source) in [
        (
            "threads",
            format!("one item's peak live heap, counted by amorsize::alloc::Counting ({counting})"),
        ),
        (
            "processes",
            "peak RSS the workers report (getrusage), else an idle worker's plus one item"
                .to_owned(),
        ),
        ("commands", "peak RSS of the jobs (wait4)".to_owned()),
    ] {
        writeln!(
            out,
            "{:<18}{:<36}  {source}",
            "worker memory",
            format!("{backend}: measured per workload")
        )?;
    }
    Ok(())
}

fn row<T>(
    out: &mut impl Write,
    name: &str,
    value: impl Display,
    figure: &Figure<T>,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{name:<18}{:<36}  {}",
        value.to_string(),
        figure.source()
    )
}

/// Bytes in binary units, and exactly when that rounds.
fn bytes(value: Option<u64>) -> String {
    match value {
        None => "none".to_owned(),
        Some(b) if b < 1024 => amorsize::fmt::bytes(b),
        Some(b) => format!("{} ({b} bytes)", amorsize::fmt::bytes(b)),
    }
}
