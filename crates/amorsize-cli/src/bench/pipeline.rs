//! `amorsize bench --pipelines`: each built-in workload also written as a rayon pipeline ending
//! in `.amorsize()`, timed side by side in one run with the serial loop, plain rayon, the oracle
//! and [`amorsize::execute`]; and a `sum` over 10⁸ tiny items against the serial loop, with the
//! process's peak memory before and after.

use super::kernels::mix;
use super::measure::{tune, Settings};
use super::timing::{interleaved, median, timed, Digest};
use super::workloads::{Kind, Visit};
use amorsize::exec::tune::ChunkedPool;
use amorsize::prelude::*;
use amorsize::report::RunReport;
use anyhow::{Context, Result};
use rayon::prelude::*;
use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The runners compared, in the order of the table.
pub const RUNNERS: [&str; 5] = ["serial", "rayon", "oracle", "execute", ".amorsize()"];

/// One workload's medians, indexed like [`RUNNERS`], and how the last pipeline ran.
#[derive(Debug)]
pub struct Timings {
    /// Items in the input.
    pub items: usize,
    /// Median time of each runner.
    pub medians: Vec<Duration>,
    /// How a drive of the `.amorsize()` pipeline after the timed ones ran, in a few words.
    pub ran: String,
}

impl Timings {
    /// Serial time ÷ the pipeline's: at least 0.95 is the target.
    pub fn vs_serial(&self) -> f64 {
        ratio(self.medians[0], self.medians[4])
    }

    /// The pipeline's time ÷ the best of serial, rayon and the oracle: at most 1.10 is the
    /// target.
    pub fn vs_best(&self) -> f64 {
        let best = self.medians[..3].iter().min().copied().unwrap_or_default();
        ratio(self.medians[4], best)
    }
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-12)
}

/// What a pipeline's hook keeps.
type Seen = Arc<Mutex<Option<RunReport>>>;

/// A few words on how a pipeline ran.
fn summary(seen: &Seen) -> String {
    let Some(run) = seen.lock().ok().and_then(|mut r| r.take()) else {
        return "not reported".into();
    };
    let mut s = if run.plan.is_parallel() {
        format!("parallel {}w chunk {}", run.workers, run.plan.chunk_size())
    } else {
        "serial".to_string()
    };
    if let Some(shed) = run.sheds.last() {
        let _ = write!(s, ", shed to {}w", shed.to);
    }
    let _ = write!(s, ", {} sampled", run.reused_from_sample);
    if run.plan.reuse().is_some() {
        s.push_str(", plan reused");
    }
    s
}

/// Keeps `run` in `seen` for [`summary`].
fn keep_report(seen: &Seen, run: &RunReport) {
    if let Ok(mut slot) = seen.lock() {
        *slot = Some(run.clone());
    }
}

/// Measures a workload every way (see [`Visit`]).
pub struct Pipelines<'a>(pub &'a Settings);

impl Visit for Pipelines<'_> {
    type Out = Result<Timings>;

    fn slice<F>(self, items: &[u64], f: F) -> Result<Timings>
    where
        F: Fn(&u64) -> u64 + Sync + Send,
    {
        let settings = self.0;
        let want = Digest::of(&items.iter().map(&f).collect::<Vec<_>>());
        let (oracle, _, _) = tune(items, &f, settings)?;
        let oracle_pool = ChunkedPool::new(oracle.workers)?;
        let seen: Seen = Arc::default();
        let mut serial = || timed(&want, true, "serial", || Ok(items.iter().map(&f).collect()));
        let mut rayon = || {
            timed(&want, true, "rayon", || {
                Ok(items.par_iter().map(&f).collect())
            })
        };
        let mut oracle_run = || {
            timed(&want, true, "oracle", || {
                Ok(oracle_pool.map(items, oracle.chunk, &f)?)
            })
        };
        let mut execute = || timed(&want, true, "execute", || Ok(amorsize::execute(items, &f)?));
        // Timed as users write it: a report hook costs a plan where the glance settles a drive
        // serial, so it is attached only to one more drive after the timed ones.
        let mut pipeline = || {
            timed(&want, true, ".amorsize()", || {
                Ok(items.par_iter().map(&f).amorsize().collect())
            })
        };
        let times = interleaved(
            settings.rounds,
            settings.round_budget,
            &mut [
                &mut serial,
                &mut rayon,
                &mut oracle_run,
                &mut execute,
                &mut pipeline,
            ],
        )?;
        let keep = Arc::clone(&seen);
        let _: Vec<u64> = items
            .par_iter()
            .map(&f)
            .amorsize()
            .on_report(move |run| keep_report(&keep, run))
            .collect();
        Ok(Timings {
            items: items.len(),
            medians: times.iter().map(|t| median(t)).collect(),
            ran: summary(&seen),
        })
    }

    fn iter<I, M, F>(self, make: M, f: F) -> Result<Timings>
    where
        I: Iterator<Item = u64> + Send,
        M: Fn() -> I,
        F: Fn(&u64) -> u64 + Sync + Send,
    {
        let settings = self.0;
        let want = Digest::of(&make().map(|x| f(&x)).collect::<Vec<_>>());
        let collected: Vec<u64> = make().collect();
        let (oracle, _, _) = tune(&collected, &f, settings)?;
        drop(collected);
        let oracle_pool = ChunkedPool::new(oracle.workers)?;
        let seen: Seen = Arc::default();
        let mut serial = || {
            timed(&want, true, "serial", || {
                Ok(make().map(|x| f(&x)).collect())
            })
        };
        let mut rayon = || {
            timed(&want, false, "rayon", || {
                Ok(make().par_bridge().map(|x| f(&x)).collect())
            })
        };
        let mut oracle_run = || {
            timed(&want, true, "oracle", || {
                let items: Vec<u64> = make().collect();
                Ok(oracle_pool.map(&items, oracle.chunk, &f)?)
            })
        };
        let mut execute = || {
            timed(&want, true, "execute", || {
                Ok(amorsize::execute_iter(make(), &f)?)
            })
        };
        let mut pipeline = || {
            timed(&want, false, ".amorsize()", || {
                Ok(make().par_bridge().map(|x| f(&x)).amorsize().collect())
            })
        };
        let times = interleaved(
            settings.rounds,
            settings.round_budget,
            &mut [
                &mut serial,
                &mut rayon,
                &mut oracle_run,
                &mut execute,
                &mut pipeline,
            ],
        )?;
        let keep = Arc::clone(&seen);
        let _: Vec<u64> = make()
            .par_bridge()
            .map(|x| f(&x))
            .amorsize()
            .on_report(move |run| keep_report(&keep, run))
            .collect();
        Ok(Timings {
            items: make().count(),
            medians: times.iter().map(|t| median(t)).collect(),
            ran: summary(&seen),
        })
    }
}

/// The `sum` over many tiny items: medians of the serial loop, plain rayon and the pipeline,
/// and the process's peak resident memory before and after the pipeline's rounds (KiB).
#[derive(Debug)]
pub struct BigSum {
    /// Items summed.
    pub items: usize,
    /// Medians of serial, rayon, `.amorsize()`.
    pub medians: [Duration; 3],
    /// Peak resident memory before and after, when the system tells it.
    pub peak_kib: Option<(u64, u64)>,
    /// How the last pipeline ran.
    pub ran: String,
}

/// One tiny item: a hash, kept to 16 bits so that 10⁸ of them cannot overflow the sum.
fn tiny(i: usize) -> u64 {
    mix(i as u64) & 0xFFFF
}

/// Times the `sum` of `items` tiny items every way over `rounds` rounds.
///
/// # Errors
///
/// When a runner's sum differs from the serial loop's.
pub fn big_sum(items: usize, rounds: usize) -> Result<BigSum> {
    let want: u64 = (0..items).map(tiny).sum();
    let seen: Seen = Arc::default();
    let check = |who: &str, got: u64| -> Result<()> {
        anyhow::ensure!(got == want, "{who} summed {got}, the serial loop {want}");
        Ok(())
    };
    let time = |run: &mut dyn FnMut() -> u64, who: &str| -> Result<Duration> {
        let start = std::time::Instant::now();
        let got = black_box(run());
        let took = start.elapsed();
        check(who, got)?;
        Ok(took)
    };
    let mut serial = || time(&mut || (0..items).map(tiny).sum(), "serial");
    let mut rayon = || time(&mut || (0..items).into_par_iter().map(tiny).sum(), "rayon");
    let peak_before = peak_kib();
    let mut pipeline = || {
        let keep = Arc::clone(&seen);
        time(
            &mut || {
                let keep = Arc::clone(&keep);
                (0..items)
                    .into_par_iter()
                    .map(tiny)
                    .amorsize()
                    .on_report(move |run| {
                        if let Ok(mut slot) = keep.lock() {
                            *slot = Some(run.clone());
                        }
                    })
                    .sum()
            },
            ".amorsize()",
        )
    };
    let times = interleaved(
        rounds,
        Duration::ZERO,
        &mut [&mut serial, &mut rayon, &mut pipeline],
    )?;
    let peak_after = peak_kib();
    Ok(BigSum {
        items,
        medians: [median(&times[0]), median(&times[1]), median(&times[2])],
        peak_kib: peak_before.zip(peak_after),
        ran: summary(&seen),
    })
}

/// The process's peak resident memory (`VmHWM` of /proc/self/status, see proc(5)), KiB.
fn peak_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs every workload in `kinds` as a pipeline, then the big sum, and prints the table.
///
/// # Errors
///
/// When a runner computes a different result, or a pool cannot start.
pub fn run(
    out: &mut impl std::io::Write,
    kinds: &[Kind],
    build: impl Fn(Kind) -> super::workloads::Workload,
    settings: &Settings,
    sum_items: usize,
) -> Result<()> {
    writeln!(
        out,
        "{:<10} {:>7} {:>10} {:>10} {:>10} {:>10} {:>11}  {:>7} {:>7}  how .amorsize() ran",
        "workload",
        "items",
        RUNNERS[0],
        RUNNERS[1],
        RUNNERS[2],
        RUNNERS[3],
        RUNNERS[4],
        "vs ser",
        "vs best"
    )?;
    for &kind in kinds {
        let workload = build(kind);
        let t = workload
            .visit(Pipelines(settings))
            .with_context(|| format!("benchmarking {} as a pipeline", kind.name()))?;
        writeln!(
            out,
            "{:<10} {:>7} {:>10} {:>10} {:>10} {:>10} {:>11}  {:>6.2}× {:>6.2}×  {}",
            kind.name(),
            t.items,
            amorsize::fmt::duration(t.medians[0]),
            amorsize::fmt::duration(t.medians[1]),
            amorsize::fmt::duration(t.medians[2]),
            amorsize::fmt::duration(t.medians[3]),
            amorsize::fmt::duration(t.medians[4]),
            t.vs_serial(),
            t.vs_best(),
            t.ran
        )?;
    }
    let s = big_sum(sum_items, settings.rounds)?;
    writeln!(
        out,
        "sum of {} tiny items: serial {}, rayon {}, .amorsize() {} ({:.2}× the serial loop's time; {})",
        s.items,
        amorsize::fmt::duration(s.medians[0]),
        amorsize::fmt::duration(s.medians[1]),
        amorsize::fmt::duration(s.medians[2]),
        ratio(s.medians[2], s.medians[0]),
        s.ran
    )?;
    if let Some((before, after)) = s.peak_kib {
        writeln!(
            out,
            "  peak resident memory {} before its rounds, {} after",
            amorsize::fmt::bytes(before.saturating_mul(1024)),
            amorsize::fmt::bytes(after.saturating_mul(1024))
        )?;
    }
    writeln!(
        out,
        "targets: vs ser (serial ÷ .amorsize()) ≥ 0.95; vs best (.amorsize() ÷ best of serial, rayon, oracle) ≤ 1.10"
    )?;
    Ok(())
}
