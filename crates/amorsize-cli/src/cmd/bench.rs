//! `amorsize bench`: the benchmark of amorsize against the serial loop, rayon, a naive
//! all-cores hand-out and the measured oracle, over the built-in workloads.

use crate::bench::kernels::{self, Calibration};
use crate::bench::measure::{Bench, Settings};
use crate::bench::report::{targets, Row};
use crate::bench::workloads::{Kind, Scale, Workload};
use crate::bench::{charts, cold, output, Run};
use anyhow::Context;
use std::io::Write;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Work per thread of the parallel-capacity probe: long enough to span several scheduler
/// slices, short enough to cost nothing next to the suite.
const CAPACITY_PROBE: Duration = Duration::from_millis(30);

/// Time a workload's counted rounds may take beyond the minimum count, on a full run: 0.5 s,
/// so that a workload whose round takes a few ms is counted over tens of rounds (see
/// [`rounds_within`](crate::bench::timing::rounds_within)) while the suite stays within its
/// two minutes. Quick and smoke runs count the minimum.
const ROUND_BUDGET: Duration = Duration::from_millis(500);

/// Options of `amorsize bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Small sizes and fewer rounds: the whole suite in under 20 s on 2 cores (CI).
    #[arg(long)]
    quick: bool,
    /// Print JSON instead of the table.
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Print the table and targets as Markdown (for a README).
    #[arg(long)]
    markdown: bool,
    /// Run only these workloads (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "NAMES")]
    workloads: Vec<Kind>,
    /// Write the SVG charts into this folder.
    #[arg(long, value_name = "DIR")]
    charts: Option<PathBuf>,
    /// The workload whose measured and predicted speedup against the worker count is charted.
    #[arg(long, value_enum, default_value = "medium", value_name = "NAME")]
    curve: Kind,
    /// Counted rounds per strategy, at least (default 5, and more for workloads whose round is
    /// short; 3 with --quick).
    #[arg(long, value_name = "N")]
    rounds: Option<NonZeroUsize>,
    /// First calls in fresh processes per workload (default 3; 2 with --quick; 0 skips them).
    #[arg(long, value_name = "N")]
    cold_runs: Option<usize>,
    /// Each workload as a rayon pipeline ending in `.amorsize()`, beside the serial loop, rayon,
    /// the oracle and `execute`; then a `sum` over 10^8 tiny items (10^6 with --quick).
    #[arg(long)]
    pipelines: bool,
    /// Tiny sizes and nominal kernel costs: checks that a run completes (tests).
    #[arg(long, hide = true)]
    smoke: bool,
    /// Run as the child that times amorsize's first call in a fresh process.
    #[arg(long = "cold-child", hide = true, value_enum)]
    cold_child: Option<Kind>,
    /// The cold-call child times the serial loop instead of amorsize.
    #[arg(long = "cold-loop", hide = true)]
    cold_loop: bool,
    /// The cold-call child's scale.
    #[arg(long, hide = true, value_enum, default_value = "full")]
    scale: Scale,
    /// The cold-call child's kernel costs (from the parent's calibration).
    #[arg(long, hide = true)]
    calibration: Option<String>,
}

/// Runs the benchmark and prints the table or JSON.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(kind) = args.cold_child {
        let text = args
            .calibration
            .as_deref()
            .context("--cold-child needs --calibration")?;
        cold::child(
            kind,
            args.scale,
            &Calibration::from_arg(text)?,
            args.cold_loop,
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let started = Instant::now();
    let scale = if args.smoke {
        Scale::Smoke
    } else if args.quick {
        Scale::Quick
    } else {
        Scale::Full
    };
    let measured_calibration = scale != Scale::Smoke;
    let calibration = if measured_calibration {
        Calibration::measure()
    } else {
        Calibration::nominal()
    };
    let rounds = args.rounds.map_or(
        match scale {
            Scale::Smoke => 1,
            Scale::Quick => 3,
            Scale::Full => 5,
        },
        NonZeroUsize::get,
    );
    let cold_runs = args.cold_runs.unwrap_or(match scale {
        Scale::Smoke => 1,
        Scale::Quick => 2,
        Scale::Full => 3,
    });
    let cpus =
        NonZeroUsize::new(amorsize::probe::machine().logical_cpus()).unwrap_or(NonZeroUsize::MIN);
    let kinds: Vec<Kind> = if args.workloads.is_empty() {
        Kind::ALL.to_vec()
    } else {
        let mut kinds = args.workloads.clone();
        kinds.dedup();
        kinds
    };

    if args.pipelines {
        let settings = Settings {
            rounds,
            round_budget: if scale == Scale::Full {
                ROUND_BUDGET
            } else {
                Duration::ZERO
            },
            cpus,
            curve: false,
            coarse_grid: scale != Scale::Full,
        };
        let sum_items = match scale {
            Scale::Smoke => 10_000,
            Scale::Quick => 1_000_000,
            Scale::Full => 100_000_000,
        };
        let mut out = std::io::stdout().lock();
        crate::bench::pipeline::run(
            &mut out,
            &kinds,
            |kind| Workload::build(kind, scale, &calibration),
            &settings,
            sum_items,
        )?;
        writeln!(
            out,
            "wall time {}",
            amorsize::fmt::duration(started.elapsed())
        )?;
        return Ok(ExitCode::SUCCESS);
    }

    let capacity_now = || kernels::parallel_capacity(cpus.get(), CAPACITY_PROBE, &calibration);
    let capacity_before = measured_calibration.then(capacity_now);
    let mut rows = Vec::with_capacity(kinds.len());
    for &kind in &kinds {
        let t = Instant::now();
        let settings = Settings {
            rounds,
            round_budget: if scale == Scale::Full {
                ROUND_BUDGET
            } else {
                Duration::ZERO
            },
            cpus,
            curve: kind == args.curve,
            coarse_grid: scale != Scale::Full,
        };
        let workload = Workload::build(kind, scale, &calibration);
        let measured = workload
            .visit(Bench(&settings))
            .with_context(|| format!("benchmarking {}", kind.name()))?;
        // Free a large input before the children build their own.
        drop(workload);
        let cold = cold::measure(kind, scale, &calibration, cold_runs)?;
        eprintln!(
            "bench: {:<10} done in {}",
            kind.name(),
            amorsize::fmt::duration(t.elapsed())
        );
        rows.push(Row {
            kind,
            measured,
            cold,
        });
    }

    let capacity = capacity_before.map(|before| (before, capacity_now()));
    let mut chart_paths = Vec::new();
    if let Some(dir) = &args.charts {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the charts folder {}", dir.display()))?;
        chart_paths.push(charts::speedups(dir, &rows, &output::machine_line())?);
        if let Some(row) = rows.iter().find(|r| r.kind == args.curve) {
            chart_paths.extend(charts::worker_curve(dir, row)?);
        }
    }
    let run = Run {
        scale,
        rounds,
        cpus: cpus.get(),
        calibration,
        calibration_measured: measured_calibration,
        capacity,
        targets: targets(&rows),
        rows,
        charts: chart_paths,
        wall: started.elapsed(),
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &output::json(&run))?;
        writeln!(out)?;
    } else if args.markdown {
        output::markdown(&mut out, &run)?;
    } else {
        output::table(&mut out, &run)?;
        writeln!(out, "wall time {}", amorsize::fmt::duration(run.wall))?;
    }
    Ok(ExitCode::SUCCESS)
}
