//! What each backend costs on this machine: worker start and per-chunk dispatch, measured once
//! per process, with a quality check ([`stats::accept`](crate::stats::accept)) and a named fallback for each figure, in one
//! type ([`Calibration`]) for both backends.
//!
//! For threads (here; the timings themselves run on `runtime`'s pools):
//! - worker start: a parallel section on a pool of 2 sleeping workers, as the executor runs
//!   one (wake every worker, hand each a job, wait for all), per worker. Pools are kept and
//!   reused across calls, so this — not creating threads — is what a call pays; the first
//!   parallel call of a process also creates its pool's threads, once;
//! - chunk dispatch: a pool of 2 workers runs many empty chunks, each its own task, against a
//!   few; the difference per chunk, times the workers (each worker pays for the chunks it runs,
//!   as the model counts it).
//!
//! Each figure passes a quality check (signal far above the clock's overhead, a plausible
//! range, repeats that agree) or is replaced by its fallback constant, and the plan says so.
//! The whole calibration takes a few milliseconds and is skipped altogether when the sample
//! already proves that no parallel plan can win ([`plan::speedup_bound`](crate::plan::speedup_bound)),
//! and put off while the calls that would need it could save less than it costs
//! ([`threads_if_worth`]).
//!
//! For worker processes the timings run in [`exec::process`](crate::exec::process) (which owns
//! the workers) and pass the same check into the same type
//! ([`process::calibration`](crate::exec::process::calibration)).
//!
//! A measured calibration is kept in the disk cache for this machine, so that the next process
//! skips the measuring; fallbacks are never stored.

use crate::model::{Backend, Costs, Fallbacks, Seconds};
use crate::runtime::bench::DispatchBench;
use crate::sample::{Clock, SystemClock};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Fallback cost per worker of starting a parallel section on threads: waking a sleeping
/// worker and waiting for it costs a few µs per wake-up on Linux (futex wake plus a context
/// switch, `perf bench sched pipe` measures 2–10 µs per round trip); creating a thread instead
/// takes 10–50 µs. The upper end of the two is taken so that an unmeasured machine leans
/// serial.
pub const FALLBACK_THREAD_START: Seconds = 50e-6;

/// Fallback cost of handing one chunk to a thread worker: a forced rayon split costs a few µs
/// on 2–8 workers (rayon's own measurements of `join`; see DESIGN.md's reference numbers).
pub const FALLBACK_THREAD_DISPATCH: Seconds = 3e-6;

/// The least any parallel plan on threads costs, used to prove a workload too small before any
/// overhead is measured: waking one sleeping worker and handing it one chunk takes at least a
/// futex wake and a context switch, some 5 µs on Linux (`perf bench sched pipe` measures
/// 2–10 µs per round trip). Once the real costs are measured
/// (cached for the process) planning uses them instead.
pub const PARALLEL_FLOOR: Seconds = 5e-6;

/// What finding the thread costs is taken to cost, when a call decides whether it is worth
/// finding them, with no cache file yet: creating the file, which probes the machine for its
/// fingerprint (5.1–5.9 ms), then measuring the costs and storing them (4.1–4.3 ms), as
/// measured on the 2-core machine the figures of this crate come from, in fresh processes
/// (`examples/costs_worth.rs`). An estimate for any other machine; the plans it decides name
/// it ([`costs_worth`]).
pub const COSTS_WORTH: Seconds = 10e-3;

/// [`COSTS_WORTH`] with the cache turned off: probing the machine (0.6 ms) and measuring the
/// costs (3.9 ms), measured the same way.
pub const COSTS_WORTH_UNCACHED: Seconds = 4.5e-3;

/// [`COSTS_WORTH`] when a cache file exists: opening it, with the probe (1.6–2.0 ms), and
/// reading the costs (44–84 µs), measured the same way; where no process on this machine has
/// stored them, measuring and storing them too, which this figure leaves out.
pub const COSTS_WORTH_CACHED: Seconds = 2e-3;

/// What finding the thread costs is taken to cost in this process: [`COSTS_WORTH_CACHED`] when
/// the cache file existed the first time this was asked, [`COSTS_WORTH_UNCACHED`] with the
/// cache off, else [`COSTS_WORTH`].
pub fn costs_worth() -> Seconds {
    static WORTH: OnceLock<Seconds> = OnceLock::new();
    *WORTH.get_or_init(|| {
        #[cfg(feature = "cache")]
        {
            match crate::cache::location().path() {
                Some(path) if path.exists() => COSTS_WORTH_CACHED,
                Some(_) => COSTS_WORTH,
                None => COSTS_WORTH_UNCACHED,
            }
        }
        #[cfg(not(feature = "cache"))]
        {
            COSTS_WORTH_UNCACHED
        }
    })
}

/// Parallel savings (ns) forgone in this process by calls that ran serially rather than find
/// the thread costs ([`threads_if_worth`]).
static FORGONE: AtomicU64 = AtomicU64::new(0);

/// Repeats of each timing; the median is kept.
const REPEATS: usize = 5;
/// Chunks in the long and the short dispatch run.
const MANY_CHUNKS: usize = 512;
const FEW_CHUNKS: usize = 16;
/// A measured difference must exceed the clock's own overhead this many times.
const MIN_SIGNAL: f64 = 20.0;

/// A backend's costs and how they were obtained.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Calibration {
    /// The costs (fallbacks flagged in [`Costs::fallbacks`]).
    pub costs: Costs,
    /// What measuring took.
    pub took: Duration,
    /// Worker processes only: the peak resident set size of an idle worker (after the timed
    /// exchanges), in bytes: what each worker process costs before the function allocates
    /// anything. `None` for threads, or when the worker did not report it.
    pub worker_rss: Option<u64>,
}

impl Calibration {
    /// The calibration of `costs`, measured in `took`.
    pub fn new(costs: Costs, took: Duration) -> Self {
        Calibration {
            costs,
            took,
            worker_rss: None,
        }
    }
}

static THREADS: OnceLock<Calibration> = OnceLock::new();

/// The thread backend's costs on this machine, measured on first use and cached for the
/// process.
///
/// # Examples
///
/// ```
/// let c = amorsize::calibrate::threads();
/// assert!(c.costs.worker_start > 0.0 && c.costs.chunk_dispatch > 0.0);
/// ```
pub fn threads() -> &'static Calibration {
    THREADS.get_or_init(|| {
        // A calibration the cache remembers for this machine skips the measuring.
        let began = Instant::now();
        if let Some(costs) = recall_costs(Backend::Threads) {
            return Calibration::new(costs, began.elapsed());
        }
        let calibration = calibrate_threads();
        remember_costs(&calibration.costs);
        calibration
    })
}

/// The thread backend's costs when they are known in this process already, or worth finding
/// ([`threads`]) for a call whose parallel plan could save at most `gain`.
///
/// A call that could save less than finding them costs ([`costs_worth`]) runs serially
/// instead, until the savings forgone this way in the process add up to that figure; then the
/// costs are found (rent, then buy: what the small calls forgo stays within about what finding
/// the costs costs). A program that makes one small call is spared a calibration longer than
/// its work; one that makes many pays it after a few.
///
/// # Errors
///
/// The savings forgone so far, this call's included, when the call should run serially.
pub fn threads_if_worth(gain: Seconds) -> Result<&'static Calibration, Seconds> {
    if let Some(calibration) = THREADS.get() {
        return Ok(calibration);
    }
    forgo(&FORGONE, gain, costs_worth()).map(|()| threads())
}

/// Adds `gain` (seconds; a negative or undefined one counts as none) to the savings forgone
/// so far (`forgone`, in ns): `Ok` when they now reach `worth` (finding the costs is worth
/// it), else `Err` with the new total in seconds.
fn forgo(forgone: &AtomicU64, gain: Seconds, worth: Seconds) -> Result<(), Seconds> {
    let gain = if gain > 0.0 { (gain * 1e9) as u64 } else { 0 };
    let total = forgone
        .fetch_add(gain, Ordering::Relaxed)
        .saturating_add(gain) as f64
        * 1e-9;
    if total < worth {
        Err(total)
    } else {
        Ok(())
    }
}

/// The thread backend's costs if they have been measured already in this process.
pub fn threads_if_measured() -> Option<&'static Calibration> {
    THREADS.get()
}

fn calibrate_threads() -> Calibration {
    let began = Instant::now();
    let resolution = SystemClock.overhead().max(1e-9);
    let mut fallbacks = Fallbacks::default();

    let bench = DispatchBench::new(2);
    let worker_start = bench
        .as_ref()
        .and_then(|b| measure_start(b, resolution))
        .unwrap_or_else(|| {
            fallbacks.worker_start = true;
            FALLBACK_THREAD_START
        });
    let dispatch = bench.as_ref().and_then(|b| measure_dispatch(b, resolution));
    let chunk_dispatch = dispatch.unwrap_or_else(|| {
        fallbacks.chunk_dispatch = true;
        FALLBACK_THREAD_DISPATCH
    });
    let costs = Costs {
        backend: Backend::Threads,
        worker_start,
        chunk_dispatch,
        transfer_per_byte: 0.0,
        fallbacks,
    };
    Calibration::new(costs, began.elapsed())
}

fn measure_start(bench: &DispatchBench, resolution: Seconds) -> Option<Seconds> {
    let workers = bench.workers() as f64;
    let sections: Vec<Seconds> = (0..REPEATS).map(|_| bench.section()).collect();
    accept_timed(&sections, resolution, 0.5e-6..=2e-3).map(|s| s / workers)
}

fn measure_dispatch(bench: &DispatchBench, resolution: Seconds) -> Option<Seconds> {
    let workers = bench.workers() as f64;
    let per_chunk = workers / (MANY_CHUNKS - FEW_CHUNKS) as f64;
    // The first run after the pool went idle pays for waking its threads; not a dispatch cost.
    bench.run(FEW_CHUNKS);
    let mut diffs = Vec::with_capacity(REPEATS);
    for _ in 0..REPEATS {
        let few = bench.run(FEW_CHUNKS);
        let many = bench.run(MANY_CHUNKS);
        diffs.push(many - few);
    }
    accept_timed(&diffs, resolution, 10e-9 / per_chunk..=1e-3 / per_chunk).map(|d| d * per_chunk)
}

/// The acceptance check ([`stats::accept`](crate::stats::accept)) of repeated timings of one
/// thread cost, whose signal must also stand far above the clock's overhead `resolution`
/// ([`MIN_SIGNAL`] times): the median within `plausible` and above that floor.
fn accept_timed(
    values: &[Seconds],
    resolution: Seconds,
    plausible: std::ops::RangeInclusive<Seconds>,
) -> Option<Seconds> {
    let floor = plausible.start().max(MIN_SIGNAL * resolution);
    crate::stats::accept(values, floor..=*plausible.end())
}

/// The calibration of `backend` remembered for this machine, when fresh; the timings are then
/// skipped. Always `None` without the disk cache: the calibration is then measured once per
/// process.
pub(crate) fn recall_costs(backend: Backend) -> Option<Costs> {
    #[cfg(feature = "cache")]
    {
        crate::cache::with_default(|c| c.load_costs(backend))
            .flatten()
            // A fallback is not a measurement; none is stored, and none is trusted.
            .filter(|c| !c.fallbacks.any())
    }
    #[cfg(not(feature = "cache"))]
    {
        let _ = backend;
        None
    }
}

/// Remembers a calibration that was measured; fallbacks are not remembered, so that the next
/// process measures again.
pub(crate) fn remember_costs(costs: &Costs) {
    #[cfg(feature = "cache")]
    if !costs.fallbacks.any() {
        crate::cache::with_default(|c| c.store_costs(costs));
    }
    #[cfg(not(feature = "cache"))]
    let _ = costs;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_keeps_consistent_plausible_signals() {
        let ok = accept_timed(&[2e-5, 2.2e-5, 1.9e-5, 2.1e-5, 9e-5], 1e-8, 1e-6..=1e-2);
        assert_eq!(ok, Some(2.1e-5));
    }

    #[test]
    fn the_check_rejects_noise_implausible_and_inconsistent_figures() {
        // Below the clock's resolution.
        assert_eq!(accept_timed(&[1e-8; 5], 1e-8, 0.0..=1.0), None);
        // Negative or out of range.
        assert_eq!(accept_timed(&[-1e-5; 5], 1e-9, 1e-6..=1e-2), None);
        assert_eq!(accept_timed(&[1.0; 5], 1e-9, 1e-6..=1e-2), None);
        // Repeats that disagree.
        assert_eq!(
            accept_timed(&[1e-6, 1e-5, 1e-4, 1e-3, 1e-2], 1e-9, 0.0..=1.0),
            None
        );
        // Too few repeats.
        assert_eq!(accept_timed(&[1e-5, 1e-5], 1e-9, 0.0..=1.0), None);
    }

    #[test]
    fn savings_are_forgone_until_they_add_up_to_finding_the_costs() {
        let forgone = AtomicU64::new(0);
        let ms = |x: f64| x * 1e-3;
        // What finding the costs is taken to cost, here 2 ms.
        const W: Seconds = 2e-3;
        let near = |r: Result<(), Seconds>, want: f64| match r {
            Err(total) => (total - want).abs() < 1e-9,
            Ok(()) => false,
        };
        assert!(near(forgo(&forgone, ms(0.5), W), ms(0.5)));
        assert!(near(forgo(&forgone, ms(0.7), W), ms(1.2)));
        // Nothing to save, or an undefined figure: counted as nothing.
        assert!(near(forgo(&forgone, 0.0, W), ms(1.2)));
        assert!(near(forgo(&forgone, -1.0, W), ms(1.2)));
        assert!(near(forgo(&forgone, f64::NAN, W), ms(1.2)));
        // The call that brings the total to the figure finds the costs.
        assert_eq!(forgo(&forgone, ms(0.8), W), Ok(()));
        // One call that could save more than finding them costs finds them at once.
        assert_eq!(forgo(&AtomicU64::new(0), W, W), Ok(()));
        assert_eq!(forgo(&AtomicU64::new(0), 1.0, W), Ok(()));
    }

    #[test]
    fn calibration_gives_positive_figures_and_flags_fallbacks() {
        let c = threads();
        assert!(c.costs.worker_start > 0.0 && c.costs.chunk_dispatch > 0.0);
        if c.costs.fallbacks.worker_start {
            assert_eq!(c.costs.worker_start, FALLBACK_THREAD_START);
        }
        let warnings = crate::plan::fallback_warnings(&c.costs);
        assert_eq!(
            warnings.len(),
            usize::from(c.costs.fallbacks.worker_start)
                + usize::from(c.costs.fallbacks.chunk_dispatch)
        );
    }
}
