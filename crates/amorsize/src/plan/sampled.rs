//! Planning from a sample of the user's function on the thread backend: sample, prove serial
//! from a bound or measure the overheads, decide.

use super::quick::{self, Look};
use super::{decide, speedup_bound, Caps, Options, Plan, Reason, Warning};
use crate::calibrate;
use crate::model::{Seconds, Workload};
use crate::sample::{self, Glance, Sample, SampleBounds, Sampled, MIN_TRUSTED_SAMPLE};
use crate::Result;

/// Items an iterator of unknown length is planned for: long enough that a stream of
/// millisecond items goes parallel, short enough that microsecond items are not sent to workers
/// on the strength of a guess. Reported as [`Warning::UnknownLength`];
/// [`Options::items`] replaces it.
pub const ASSUMED_ITEMS: usize = 10_000;

/// Samples `items` with `f`, then decides. The sampled results are returned (with their input
/// indices) so that execution does not run those items again; the plan is for the others.
///
/// # Errors
///
/// [`ErrorKind::Panicked`](crate::ErrorKind::Panicked) with the item's index when `f` panics on
/// a sampled item.
///
/// # Examples
///
/// ```
/// let items: Vec<u64> = (0..100).collect();
/// let (plan, sampled) = amorsize::plan::plan_slice(&items, &|x: &u64| x + 1, &amorsize::Options::new()).unwrap();
/// assert_eq!(plan.items(), Some(items.len() - sampled.results.len()));
/// assert!(sampled.results.iter().all(|(i, r)| *r == items[*i] + 1));
/// ```
pub fn plan_slice<T, R, F>(items: &[T], f: &F, options: &Options) -> Result<(Plan, Sampled<R>)>
where
    F: Fn(&T) -> R,
{
    plan_slice_first(items, f, options, None)
}

/// [`plan_slice`], with the first item run already (its result and wall time) when `first` is
/// given.
pub(crate) fn plan_slice_first<T, R, F>(
    items: &[T],
    f: &F,
    options: &Options,
    first: Option<(R, Seconds)>,
) -> Result<(Plan, Sampled<R>)>
where
    F: Fn(&T) -> R,
{
    let bounds = sample_bounds(options);
    match quick::look(items, f, options, &bounds, first)? {
        Look::Serial(glance, proof) => Ok(settled(items.len(), glance, proof, options)),
        Look::Plan(glance) => plan_slice_after(items, f, options, &bounds, glance),
    }
}

/// The sample's bounds for `options`.
pub(crate) fn sample_bounds(options: &Options) -> SampleBounds {
    SampleBounds {
        wall_only_below: serial_proof(options),
        ..options.sample
    }
}

/// [`plan_slice`] going on from a glance that did not settle the input.
pub(crate) fn plan_slice_after<T, R, F>(
    items: &[T],
    f: &F,
    options: &Options,
    bounds: &SampleBounds,
    glance: Glance<R>,
) -> Result<(Plan, Sampled<R>)>
where
    F: Fn(&T) -> R,
{
    let glance_item = glance.item_time();
    let sampled = sample::sample_slice_after(items, f, bounds, glance)?;
    let rest = items.len() - sampled.results.len();
    let key = crate::cache::WorkloadKey::of_run(options.name.as_deref(), f, items.len());
    let plan = plan_measured(
        &sampled.figures,
        items.len(),
        rest,
        glance_item,
        &key,
        options,
    );
    Ok((plan, sampled))
}

/// Decides for the `rest` of `n` items of the workload `key` after a sample whose `figures`
/// were measured (its first items, a glance, took `glance_item` each): from the figures the
/// cache remembers for the workload when the sample confirms them, and the decision is noted
/// for the next calls, as for a slice.
pub(crate) fn plan_measured(
    figures: &Sample,
    n: usize,
    rest: usize,
    glance_item: Seconds,
    key: &crate::cache::WorkloadKey,
    options: &Options,
) -> Plan {
    let mut workload = Workload::from_sample(figures, rest);
    // A workload the cache knows starts from its remembered figures when the sample confirms them.
    if let Some(known) = crate::plan::recall::recall(key, &workload, options.disk_cache) {
        super::recall::inform(&known, &mut workload, figures);
    } else {
        // What this process's last runs of it measured, if any: runs too short for the file
        // (their wall time, parallel, may be short where the sample's serial estimate is not).
        let load = || {
            Caps::from_machine(crate::probe::machine())
                .capacity()
                .competing
        };
        if let Some(alpha) = crate::plan::recall::recall_short(key, load) {
            workload.contention = alpha;
        }
    }
    let mut plan = plan_sampled(workload, figures, options, None);
    plan.warn_if_results_fill_memory();
    if options.workers.is_none() {
        let reusable = options.leave_plan_to_sample();
        crate::plan::recall::note_plan(key, n, glance_item, options.threshold, &plan, reusable);
    }
    plan
}

/// [`plan_sample`] for a stream after its sample, `rest` items left. For a stream of `n` items
/// in all (its iterator tells) whose glance took `glance_item` each, the decision is noted as
/// a batch's is, so that the next streams of the workload settle serial from their glance
/// while it stands, rather than sampling again.
pub(crate) fn plan_stream<T: ?Sized, R, F: Fn(&T) -> R>(
    figures: &Sample,
    rest: usize,
    options: &Options,
    f: &F,
    known: Option<(usize, Seconds)>,
) -> Plan {
    let plan = plan_sample(figures, rest, options);
    if let Some((n, glance_item)) = known.filter(|_| options.workers.is_none()) {
        let key = crate::cache::WorkloadKey::of_run(options.name.as_deref(), f, n);
        // Streams do not reuse parallel plans (a noted one only forgets a serial decision).
        crate::plan::recall::note_plan(&key, n, glance_item, options.threshold, &plan, false);
    }
    plan
}

/// The serial plan for `n` items that a glance settled, with the glance's results.
pub(crate) fn settled<R>(
    n: usize,
    glance: Glance<R>,
    proof: quick::Proof,
    options: &Options,
) -> (Plan, Sampled<R>) {
    let sampled = settled_sample(n, glance);
    let mut plan = settled_plan(n, &sampled.figures, proof, options);
    plan.warn_if_results_fill_memory();
    (plan, sampled)
}

/// The glance's results and figures, as the sample of `n` items that it settled.
pub(crate) fn settled_sample<R>(n: usize, glance: Glance<R>) -> Sampled<R> {
    let count = glance.results.len();
    let figures = Sample {
        count,
        item_time: glance.item_time(),
        measured: glance.elapsed,
        result_bytes: std::mem::size_of::<R>() as u64,
        complete: count == n,
        cpu_skipped: true,
        ..Sample::default()
    };
    Sampled {
        results: glance.results,
        figures,
    }
}

/// The serial plan for `n` items that a glance with these `figures` settled for `proof`.
/// Building it costs more than running the smallest inputs (the limits, the refused best
/// plan and its explanation), so a caller that may never show it builds it when asked.
pub(crate) fn settled_plan(
    n: usize,
    figures: &Sample,
    proof: quick::Proof,
    options: &Options,
) -> Plan {
    let mut workload = Workload::from_sample(figures, n - figures.count.min(n));
    if proof.recalled.is_some() && n > 0 {
        // The earlier full sample's time per item, which the glance (a few items timed one
        // by one, often misses to memory) only checked.
        workload.item_time = proof.serial / n as f64;
    }
    // A glance's proof holds on the cheap bound of the cores, so the full probe is not paid
    // for its plan either: its caps are the machine's only when another call probed it.
    let machine = crate::probe::machine_if_probed();
    let caps = match machine {
        Some(machine) => Caps::from_machine(machine),
        None => Caps::cores(crate::probe::cores_bound(), UNPROBED_CORES),
    };
    let mut plan = if workload.items == 0 {
        // The glance ran everything: nothing is left to decide.
        decide(
            &workload,
            &crate::model::Costs::zero(crate::model::Backend::Threads),
            &caps,
            options,
        )
    } else {
        refused_from_bound(
            &workload,
            &caps,
            options,
            match (proof.recalled, proof.forgone) {
                (_, Some((gain, forgone))) => Reason::NotWorthMeasuring {
                    serial: proof.serial,
                    gain,
                    forgone,
                    worth: calibrate::costs_worth(),
                },
                (Some(recalled), None) => Reason::Recalled {
                    serial: proof.serial,
                    best_speedup: proof.best_speedup,
                    threshold: recalled.threshold,
                    age: recalled.age,
                    reused: recalled.reused,
                },
                (None, None) => Reason::TooSmall {
                    serial: proof.serial,
                    best_speedup: proof.best_speedup,
                    threshold: options.threshold,
                    from_bound: true,
                },
            },
        )
    };
    if let Some(machine) = machine {
        plan.warn_machine_fallbacks(machine);
    }
    plan.set_sample(figures.clone());
    plan
}

/// Where a settled plan's cores came from when the machine was not probed.
const UNPROBED_CORES: &str =
    "CPUs of the affinity mask, an upper bound (the full probe was not needed)";

/// The serial plan for `workload`, refused for `reason` without measuring any overhead: the
/// figures are decided with ideal costs (so that the plan still shows the limits), then
/// refused.
fn refused_from_bound(workload: &Workload, caps: &Caps, options: &Options, reason: Reason) -> Plan {
    let ideal = crate::model::Costs::zero(crate::model::Backend::Threads);
    let refuse_all = Options {
        threshold: f64::MAX,
        ..options.clone()
    };
    let mut plan = decide(workload, &ideal, caps, &refuse_all);
    plan.refuse_from_bound(reason);
    plan
}

/// Serial time below which no parallel plan on threads can reach the threshold, whatever the
/// CPU figures: the model charges `W × worker start` and every other term is ≥ 0, so a parallel
/// plan takes at least `serial ÷ W + W × s ≥ 2 √(serial × s)` (least at `W = √(serial ÷ s)`),
/// a speedup of at most `√(serial ÷ s) ÷ 2`, which is below the threshold `θ` while
/// `serial < 4 θ² s`. Before the thread costs are measured, the bound of `plan_sampled`
/// (serial ÷ [`calibrate::PARALLEL_FLOOR`] < θ) is the proof instead. `None` when the caller
/// fixed the workers: the plan is theirs, and the CPU figures are reported.
fn serial_proof(options: &Options) -> Option<std::time::Duration> {
    if options.workers.is_some() {
        return None;
    }
    let theta = options.threshold.max(0.0);
    let limit = match calibrate::threads_if_measured() {
        Some(calibration) => 4.0 * theta * theta * calibration.costs.worker_start,
        None => theta * calibrate::PARALLEL_FLOOR,
    };
    (limit.is_finite() && limit > 0.0).then(|| std::time::Duration::from_secs_f64(limit))
}

/// What [`plan_iter`] returns: the plan, the sampled results, and the items to continue with.
#[derive(Debug)]
pub struct PlannedIter<I: Iterator, R> {
    /// The plan for the items after the sample.
    pub plan: Plan,
    /// Results of the sampled prefix, with indices `0..prefix.len()`.
    pub sampled: Sampled<R>,
    /// The items the sample pulled, in order; already run (their results are in `sampled`).
    pub prefix: Vec<I::Item>,
    /// The rest of the iterator; its first item has index `prefix.len()`.
    pub rest: I,
}

/// Samples the first items of `iter` with `f`, then decides for the rest. The pulled items are
/// returned (never lost) beside their results. The length is taken from
/// [`Options::items`], else an exact `size_hint`, else assumed ([`ASSUMED_ITEMS`], with a
/// warning).
///
/// # Errors
///
/// [`ErrorKind::Panicked`](crate::ErrorKind::Panicked) with the item's index when `f` panics on
/// a sampled item.
///
/// # Examples
///
/// ```
/// let planned = amorsize::plan::plan_iter(0..500u64, &|x: &u64| x * 3, &amorsize::Options::new()).unwrap();
/// let all: Vec<u64> = planned.prefix.into_iter().chain(planned.rest).collect();
/// assert_eq!(all, (0..500).collect::<Vec<_>>());
/// ```
pub fn plan_iter<I, R, F>(mut iter: I, f: &F, options: &Options) -> Result<PlannedIter<I, R>>
where
    I: Iterator,
    F: Fn(&I::Item) -> R,
{
    let (lower, upper) = iter.size_hint();
    let known = options.items.or(if upper == Some(lower) {
        Some(lower)
    } else {
        None
    });
    let (prefix, sampled) = match quick::look_iter(&mut iter, f, options, known)? {
        (prefix, Look::Serial(glance, proof)) => {
            let n = known.unwrap_or(prefix.len());
            let (plan, sampled) = settled(n, glance, proof, options);
            return Ok(PlannedIter {
                plan: plan.for_iterator(),
                sampled,
                prefix,
                rest: iter,
            });
        }
        (prefix, Look::Plan(glance)) => {
            let bounds = sample_bounds(options);
            sample::sample_iter_after(&mut iter, f, &bounds, known, prefix, glance)?
        }
    };
    let (total, assumed) = match known {
        _ if sampled.figures.complete => (prefix.len(), None),
        Some(n) => (n, None),
        None => {
            let n = ASSUMED_ITEMS.max(lower.saturating_add(prefix.len()));
            (n, Some(n))
        }
    };
    let rest = total.saturating_sub(prefix.len());
    let mut plan = plan_sampled(
        Workload::from_sample(&sampled.figures, rest),
        &sampled.figures,
        options,
        assumed,
    );
    plan.warn_if_results_fill_memory();
    Ok(PlannedIter {
        plan: plan.for_iterator(),
        sampled,
        prefix,
        rest: iter,
    })
}

/// How much higher than [`Options::threshold`] the predicted speedup must be when the sample is
/// too small to trust ([`Warning::SampleTooSmall`]): 1.5 times, the error of a sample that
/// timed items of a nanosecond or two where the clock's own jitter is tens of nanoseconds,
/// and where fetching each sampled item from across the input costs more than the item.
pub(crate) const UNTRUSTED_SAMPLE_MARGIN: f64 = 1.5;

/// Decides for `items` more items like the sampled ones (`figures`) on the thread backend,
/// for a caller that sampled by itself (with [`sample`](crate::sample)).
///
/// # Examples
///
/// ```
/// use amorsize::sample::{sample_iter, SampleBounds};
/// let mut iter = 0..1000u64;
/// let (_, sampled) = sample_iter(&mut iter, &|x: &u64| x + 1, &SampleBounds::default(), None).unwrap();
/// let rest: Vec<u64> = iter.collect();
/// let plan = amorsize::plan::plan_sample(&sampled.figures, rest.len(), &amorsize::Options::new());
/// assert_eq!(plan.items(), Some(rest.len()));
/// ```
pub fn plan_sample(figures: &Sample, items: usize, options: &Options) -> Plan {
    plan_sampled(
        Workload::from_sample(figures, items),
        figures,
        options,
        None,
    )
}

/// Decides for `workload` on the thread backend: from the bound alone when it proves that no
/// parallel plan can win, otherwise with the measured (cached) thread costs.
fn plan_sampled(
    workload: Workload,
    figures: &Sample,
    options: &Options,
    assumed: Option<usize>,
) -> Plan {
    let untrusted = !figures.complete
        && ((figures.count < options.sample.min_items
            && figures.measured < options.sample.target_time.as_secs_f64())
            || figures.measured < MIN_TRUSTED_SAMPLE);
    // A sample too small to trust (items of nanoseconds, each timed alone after a cache miss
    // across the input) may be off several times either way: a parallel plan must clear a
    // wider margin before it is worth the risk.
    let strict;
    let options = if untrusted && options.workers.is_none() {
        strict = Options {
            // Rounded to a billionth, so that 1.2 × 1.5 reads as 1.8.
            threshold: (options.threshold * UNTRUSTED_SAMPLE_MARGIN * 1e9).round() / 1e9,
            ..options.clone()
        };
        &strict
    } else {
        options
    };
    let mut caps = Caps::from_machine(crate::probe::machine());
    // Available memory changes while a program runs; the probe keeps a fresh figure.
    caps.available_memory = crate::probe::available_memory_now().or(caps.available_memory);
    let measured = calibrate::threads_if_measured();
    let bound = speedup_bound(&workload, &caps, options, calibrate::PARALLEL_FLOOR);
    let mut plan = match measured {
        None if options.workers.is_none() && workload.items > 0 && bound < options.threshold => {
            // Proven serial without measuring anything.
            refused_from_bound(
                &workload,
                &caps,
                options,
                Reason::TooSmall {
                    serial: workload.serial_time(),
                    best_speedup: bound,
                    threshold: options.threshold,
                    from_bound: true,
                },
            )
        }
        None if options.workers.is_none() && workload.items > 0 => {
            // The most a parallel plan could save, against what finding the costs costs.
            let serial = workload.serial_time();
            let gain = serial - serial / bound.max(1.0);
            match calibrate::threads_if_worth(gain) {
                Ok(calibration) => decide(&workload, &calibration.costs, &caps, options),
                Err(forgone) => refused_from_bound(
                    &workload,
                    &caps,
                    options,
                    Reason::NotWorthMeasuring {
                        serial,
                        gain,
                        forgone,
                        worth: calibrate::costs_worth(),
                    },
                ),
            }
        }
        _ => decide(&workload, &calibrate::threads().costs, &caps, options),
    };
    if untrusted {
        plan.push_warning(Warning::SampleTooSmall {
            items: figures.count,
            measured: figures.measured,
        });
    }
    if let Some(assumed) = assumed {
        plan.push_warning(Warning::UnknownLength { assumed });
    }
    plan.warn_machine_fallbacks(crate::probe::machine());
    plan.set_sample(figures.clone());
    plan
}
