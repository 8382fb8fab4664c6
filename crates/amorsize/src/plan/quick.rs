//! The first look at an input (a slice, or an iterator of known length): a few items, timed
//! together, settle the inputs too small for any parallel plan before the full sample and the
//! plan cost more than the work.
//!
//! A call on 1000 items of 20 ns is 20 µs of work; a full sample and plan take several µs of
//! it. A glance at [`GLANCE_ITEMS`] items costs four wall-clock readings, after the 1st, 2nd,
//! 4th and 8th item (about 20 ns each; it stops early once the items are too slow to settle
//! anything), and often proves already that no parallel plan can win:
//!
//! - a parallel plan on threads takes at least `serial ÷ P + floor`, where `P` is the workers
//!   that can run at once and `floor` what starting a parallel section costs: the measured
//!   worker start of two workers, or [`PARALLEL_FLOOR`] (waking one worker and handing it one
//!   chunk) when that already settles it, so that the thread costs are measured only when
//!   needed;
//! - items that took less than that floor all together cannot have waited for anything (a
//!   wait ends with a wake-up, which alone costs about the floor), so they are CPU-bound and
//!   `P` is at most the usable cores `C`;
//! - so the speedup is below the threshold `θ` while `serial < θ floor ÷ (1 − θ ÷ C)`.
//!
//! The glance's items are the sample's first ones, so when the proof fails the sample goes on
//! from them and nothing runs twice.

use super::{Caps, Options};
use crate::cache::WorkloadKey;
use crate::calibrate::PARALLEL_FLOOR;
use crate::model::Seconds;
use crate::plan::recall::Recalled;
use crate::sample::{self, Glance, SampleBounds};
use crate::Result;

/// Items the glance runs: enough that one odd item does not decide alone, few enough that
/// they cost next to nothing.
pub const GLANCE_ITEMS: usize = 8;

/// The largest input the glance may settle, in serial time: beyond it, the full sample looks
/// at more items (on a machine whose cores are too few for any speedup, the bound alone would
/// settle every input on the strength of eight items).
pub(crate) const GLANCE_MAX_SERIAL: Seconds = 100e-6;

/// The largest input, in serial time as the glance estimates it, that a call may run
/// serially without the probe, the sample or the thread costs, while those costs are not
/// known in the process: what finding the costs takes
/// ([`costs_worth`](crate::calibrate::costs_worth)). Parallel could save at most the
/// whole serial time (waiting items are not bound by the cores), so less than that; the
/// savings forgone this way add up, and once they reach that figure the costs are found.
fn unprobed_max_serial() -> Seconds {
    crate::calibrate::costs_worth()
}

/// The fewest glanced items an input may be run serially on without the probe, the sample or
/// the thread costs ([`unprobed_max_serial`]): three, the smallest sample's
/// ([`SampleBounds::default`]). Items of 1.6 µs end the glance after four; waiting for a
/// whole glance sent a 0.5 ms call of them through the full sample and probe, 1.5 ms.
pub(crate) const UNPROBED_MIN_ITEMS: usize = 3;

/// What the glance found.
pub(crate) enum Look<R> {
    /// No parallel plan can reach the threshold: run serially, reusing these results.
    Serial(Glance<R>, Proof),
    /// Not settled: sample on from these results and plan.
    Plan(Glance<R>),
}

/// Why the glance settled an input serial.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Proof {
    /// Predicted serial time of the whole input.
    pub(crate) serial: Seconds,
    /// The best speedup a parallel plan could reach.
    pub(crate) best_speedup: f64,
    /// Not a bound: a serial decision from a full sample of the same workload a moment ago,
    /// which the glance does not contradict.
    pub(crate) recalled: Option<Recalled>,
    /// Not a bound either: the thread costs are not known in this process and not worth
    /// finding for this call, which could save at most the first figure; the second is the
    /// savings forgone this way so far.
    pub(crate) forgone: Option<(Seconds, Seconds)>,
}

/// Glances at `items` (see the module's documentation). The sample bounds are the ones the
/// full sample will use, so that the glance's items are its first. `first`, when given, is
/// the first item's result and wall time, run already.
///
/// # Errors
///
/// [`ErrorKind::Panicked`](crate::ErrorKind::Panicked) with the item's index when `f` panics.
pub(crate) fn look<T, R, F>(
    items: &[T],
    f: &F,
    options: &Options,
    bounds: &SampleBounds,
    first: Option<(R, Seconds)>,
) -> Result<Look<R>>
where
    F: Fn(&T) -> R,
{
    // Past the floor the glance cannot settle anything: the sample takes over.
    let glance_items = (GLANCE_ITEMS, PARALLEL_FLOOR);
    let mut glance = sample::glance_slice(items, f, bounds, glance_items, first)?;
    // Items too fast to time one by one across the input are timed as the loop runs them.
    sample::glance_block(items, f, bounds, &mut glance)?;
    Ok(settle(glance, items.len(), options, || {
        WorkloadKey::of_run(options.name.as_deref(), f, items.len())
    }))
}

/// Settles `n` items (the glance's among them) of the workload `key` serial when the glance
/// proves that no parallel plan pays, or confirms a serial decision made for the workload a
/// moment ago from a full sample ([`crate::plan::recall::recall_serial`]). The key is made
/// only when the proof fails (it is a string: a few hundred ns, a share of the smallest calls).
pub(crate) fn settle<R>(
    glance: Glance<R>,
    n: usize,
    options: &Options,
    key: impl FnOnce() -> WorkloadKey,
) -> Look<R> {
    // Workers the caller fixed are the caller's plan, and a progress callback wants the
    // executor's chunked loop.
    if options.workers.is_some() || options.exec.progress.is_some() {
        return Look::Plan(glance);
    }
    // An upper bound on the cores serves the proof (more cores only make parallel look
    // better), and spares a first call the full probe.
    let cores = match crate::probe::machine_if_probed() {
        Some(machine) => Caps::from_machine_cores(machine),
        None => crate::probe::cores_bound() as f64,
    };
    let mut found = proof(&glance, n, cores, options.threshold, PARALLEL_FLOOR);
    let small =
        glance.elapsed < PARALLEL_FLOOR && glance.item_time() * (n as f64) < GLANCE_MAX_SERIAL;
    // Items of a µs or more end the glance before its eighth (it stops at the floor's time);
    // the estimate then rests on as many as the smallest sample.
    let enough_glance = glance.results.len() >= UNPROBED_MIN_ITEMS.min(n);
    if found.is_none() && !small && enough_glance {
        // Too large for the bound, but small enough that even waiting items (whose workers
        // the cores do not limit) could save at most the whole serial time: while that is
        // less than finding the thread costs, it runs serially, with no probe and no sample.
        let serial = glance.item_time() * n as f64;
        if serial < unprobed_max_serial() && crate::calibrate::threads_if_measured().is_none() {
            // Every parallel section costs at least the floor; nothing else bounds it here.
            let gain = (serial - PARALLEL_FLOOR).max(0.0);
            if let Err(forgone) = crate::calibrate::threads_if_worth(gain) {
                found = Some(Proof {
                    serial,
                    best_speedup: serial / PARALLEL_FLOOR,
                    recalled: None,
                    forgone: Some((gain, forgone)),
                });
            }
        }
    }
    if found.is_none() && small {
        // The measured section cost may settle it: the thread costs are measured once per
        // process (or recalled from the cache), as the full plan would need them anyway, once
        // they are worth finding.
        let serial = glance.item_time() * n as f64;
        let gain = (serial - serial / cores.max(1.0) - PARALLEL_FLOOR).max(0.0);
        found = match crate::calibrate::threads_if_worth(gain) {
            Ok(calibration) => {
                let start = calibration.costs.worker_start;
                proof(&glance, n, cores, options.threshold, 2.0 * start)
            }
            Err(forgone) => Some(Proof {
                serial,
                best_speedup: serial / (serial / cores.max(1.0) + PARALLEL_FLOOR),
                recalled: None,
                forgone: Some((gain, forgone)),
            }),
        };
    }
    if found.is_none() && !glance.results.is_empty() {
        let recalled =
            crate::plan::recall::recall_serial(&key(), n, glance.item_time(), options.threshold);
        found = recalled.and_then(|recalled| {
            // A decision made because the thread costs were not worth finding stands while
            // they still are not: its call forgoes its savings too.
            let forgone = match recalled.unmeasured {
                Some(gain) => match crate::calibrate::threads_if_worth(gain) {
                    Ok(_) => return None,
                    Err(forgone) => Some((gain, forgone)),
                },
                None => None,
            };
            Some(Proof {
                serial: recalled.serial,
                best_speedup: recalled.best_speedup,
                recalled: Some(recalled),
                forgone,
            })
        });
    }
    match found {
        Some(proof) => Look::Serial(glance, proof),
        None => Look::Plan(glance),
    }
}

/// A parallel plan made a moment ago from a full sample of the same workload, when one stands
/// for `n` items ([`recall_parallel`](crate::plan::recall::recall_parallel)): the call runs it
/// with neither a glance nor a sample, as both run serially. Or a serial plan, while the
/// back-off after a parallel run of the workload that measured slower than the loop lasts
/// ([`recall_shed`](crate::plan::recall::recall_shed)). Only for options that leave the plan
/// to the sample.
pub(crate) fn reuse<T: ?Sized, R, F: Fn(&T) -> R>(
    n: usize,
    f: &F,
    options: &Options,
) -> Option<super::Plan> {
    if !options.leave_plan_to_sample() {
        return None;
    }
    let key = || WorkloadKey::of_run(options.name.as_deref(), f, n);
    if let Some(serial) = crate::plan::recall::recall_shed_if_any(key, n) {
        return Some(serial);
    }
    crate::plan::recall::recall_parallel(key, n, options.threshold)
}

/// [`look`] at the first items of an iterator of `len` items (known: an unknown length
/// settles nothing, the input may be unbounded); returns the items it pulled, in order.
///
/// # Errors
///
/// [`ErrorKind::Panicked`](crate::ErrorKind::Panicked) with the item's index when `f` panics.
pub(crate) fn look_iter<I, R, F>(
    iter: &mut I,
    f: &F,
    options: &Options,
    len: Option<usize>,
) -> Result<(Vec<I::Item>, Look<R>)>
where
    I: Iterator,
    F: Fn(&I::Item) -> R,
{
    let (prefix, glance) = sample::glance_iter(iter, f, GLANCE_ITEMS, PARALLEL_FLOOR)?;
    let look = match len {
        Some(n) => settle(glance, n, options, || {
            WorkloadKey::of_run(options.name.as_deref(), f, n)
        }),
        None => Look::Plan(glance),
    };
    Ok((prefix, look))
}

/// The proof that `n` items like the glance's cannot run `threshold` times faster on `cores`
/// usable cores when a parallel section costs at least `floor`, if there is one.
fn proof<R>(
    glance: &Glance<R>,
    n: usize,
    cores: f64,
    threshold: f64,
    floor: Seconds,
) -> Option<Proof> {
    if glance.results.is_empty() || glance.elapsed >= PARALLEL_FLOOR || !threshold.is_finite() {
        return None;
    }
    let serial = glance.item_time() * n as f64;
    if serial >= GLANCE_MAX_SERIAL {
        return None;
    }
    let best_speedup = serial / (serial / cores.max(1.0) + floor.max(PARALLEL_FLOOR));
    (best_speedup < threshold).then_some(Proof {
        serial,
        best_speedup,
        recalled: None,
        forgone: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glance(items: usize, elapsed: Seconds) -> Glance<()> {
        Glance {
            results: vec![(0, ()); items],
            elapsed,
        }
    }

    #[test]
    fn small_cpu_bound_inputs_are_settled_serial() {
        // 1000 items of 20 ns on 2 cores: 20 µs ÷ (10 µs + 5 µs) = 1.33 ≥ 1.2, not settled;
        // 1000 items of 7 ns: 7 µs ÷ 8.5 µs = 0.82, settled.
        assert!(proof(&glance(8, 160e-9), 1000, 2.0, 1.2, PARALLEL_FLOOR).is_none());
        let p = proof(&glance(8, 56e-9), 1000, 2.0, 1.2, PARALLEL_FLOOR).expect("settled");
        assert!((p.serial - 7e-6).abs() < 1e-12 && p.best_speedup < 1.2);
        // More cores lower the bound.
        assert!(proof(&glance(8, 56e-9), 1000, 64.0, 1.2, PARALLEL_FLOOR).is_none());
    }

    #[test]
    fn a_glance_that_could_have_waited_or_a_large_input_goes_on_to_the_sample() {
        assert!(proof(&glance(8, PARALLEL_FLOOR), 10, 2.0, 1.2, PARALLEL_FLOOR).is_none());
        // One core: no speedup is possible, but past the largest input the glance settles,
        // the sample decides.
        assert!(proof(&glance(8, 1e-6), 1000, 1.0, 1.2, PARALLEL_FLOOR).is_none());
        assert!(proof(&glance(8, 1e-6), 50, 1.0, 1.2, PARALLEL_FLOOR).is_some());
        assert!(proof(&glance(0, 0.0), 1000, 2.0, 1.2, PARALLEL_FLOOR).is_none());
    }

    #[test]
    fn a_measured_section_cost_settles_larger_inputs() {
        // 1000 items of 20 ns on 2 cores: 20 µs ÷ (10 µs + 2 × 5 µs) = 1.0.
        assert!(proof(&glance(8, 160e-9), 1000, 2.0, 1.2, PARALLEL_FLOOR).is_none());
        assert!(proof(&glance(8, 160e-9), 1000, 2.0, 1.2, 10e-6).is_some());
        // A floor below the wake-up's is not believed.
        assert!(proof(&glance(8, 160e-9), 1000, 2.0, 1.2, 1e-9).is_none());
    }

    #[test]
    fn the_bound_never_exceeds_what_the_cores_allow() {
        for n in [1usize, 10, 100, 1000, 10_000] {
            for cores in [1.0, 2.0, 8.0] {
                if let Some(p) = proof(&glance(8, 1e-7), n, cores, 1.2, PARALLEL_FLOOR) {
                    assert!(p.best_speedup <= cores && p.best_speedup < 1.2);
                }
            }
        }
    }
}
