//! Planning for worker processes: sample the function in this process, measure what moving
//! its items and results costs, decide with this backend's measured costs, then run on worker
//! processes, on threads (when the caller allows and they pay) or in the plain loop.

use super::outcome::{Failure, Gather, Outcome, RunStats};
use super::registry::Function;
use super::run::{self, Cancel, Sink, Target};
use super::{costs, Pool, ProcessOptions};
use crate::exec::threads::{self, Batch, Done};
use crate::model::{Backend, Costs, Transfer, Workload};
use crate::plan::{self, Caps, Plan, Reason};
use crate::{sample, Error, ErrorKind, Options, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashSet;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `function` on every item, on worker processes when they are measured to pay.
///
/// The first items are sampled in this process (their results are kept) to measure the time
/// of an item and the serialization of an item and its result; the planner then weighs them
/// against this backend's costs ([`calibration`](super::calibration): worker start, a chunk's
/// round trip, pipe throughput, measured once per process). When parallelism does not pay
/// the items run in this process instead, serially — or on threads when
/// [`ProcessOptions::allow_threads`] says so and they pay — and the plan says why
/// (for instance [`Reason::TransferDominates`]).
///
/// A panic on an item is reported in [`Outcome::failures`] on every path except threads, where
/// it stops the run as in [`execute`](crate::execute).
///
/// The sample, and a serial plan, run in this process: for a function that may crash the
/// process it runs in, use [`run`](super::run) with a fixed [`Plan`], which runs every item on
/// worker processes.
///
/// # Errors
///
/// [`ErrorKind::Panicked`] when the function panics on a sampled item (or on threads); the
/// errors of [`Pool::run`] on worker processes; [`ErrorKind::Unsupported`] on a system
/// without worker processes (Windows), before anything runs.
pub fn execute<T, R>(
    function: Function<T, R>,
    items: &[T],
    options: &Options,
    process: &ProcessOptions,
) -> Result<Outcome<R>>
where
    T: Serialize + DeserializeOwned + Sync,
    R: Serialize + DeserializeOwned + Send,
{
    super::sys::supported()?;
    let f = |item: &T| function.call(item);
    let sampled = sample::sample_slice(items, &f, &options.sample)?;
    let rest = items.len() - sampled.results.len();
    let mut workload = Workload::from_sample(&sampled.figures, rest);
    // One item first: when moving it already costs more than running it, that is the
    // decision's whole story, and timing more of a large value is time the caller pays for.
    workload.transfer = transfer(items, &sampled.results, 1);
    let round_trip = workload.transfer.input_time + workload.transfer.output_time;
    if round_trip < workload.item_time {
        workload.transfer = transfer(items, &sampled.results, TRANSFER_SAMPLE);
    }
    let mut caps = Caps::from_machine(crate::probe::machine());
    caps.available_memory = crate::probe::available_memory_now().or(caps.available_memory);
    let mut plan = decide(&mut workload, function.name(), &caps, options)?;
    plan.warn_machine_fallbacks(crate::probe::machine());
    plan.set_sample(sampled.figures.clone());
    plan.warn_if_results_fill_memory();

    if plan.is_parallel() {
        let done: HashSet<usize> = sampled.results.iter().map(|(i, _)| *i).collect();
        let tasks = run::chunks(&gaps(items.len(), &done), plan.chunk_size().get());
        let gather = Gather::new(items.len());
        gather.results(sampled.results, 0);
        let target = Target {
            pool: Pool::global(),
            sink: &gather,
            cancel: &Cancel::default(),
        };
        let stats = run::run(
            function,
            items,
            tasks,
            plan.workers().get(),
            process,
            target,
        )?;
        return Ok(gather.into_outcome(plan, stats));
    }

    if process.allow_threads && matches!(plan.reason(), Reason::TransferDominates { .. }) {
        let on_threads = plan::plan_sample(&sampled.figures, rest, options);
        if on_threads.is_parallel() {
            let batch = Batch {
                items,
                sampled: sampled.results,
                base: 0,
                f: &f,
                fails: |_: &R| false,
                fallible: false,
            };
            let Done { results, .. } = threads::run(batch, &on_threads, &options.exec)?
                .map_err(|failure| failure.into_error(|i, _| panicked_without_payload(i)))?;
            return Ok(Outcome {
                plan: on_threads,
                results: results.into_iter().map(Some).collect(),
                failures: Vec::new(),
                stats: RunStats::default(),
            });
        }
    }

    // The plain loop, with no lock or allocation per item.
    let done: HashSet<usize> = sampled.results.iter().map(|(i, _)| *i).collect();
    let mut results: Vec<Option<R>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    for (index, result) in sampled.results {
        results[index] = Some(result);
    }
    let mut failures = Vec::new();
    for index in gaps(items.len(), &done).into_iter().flatten() {
        match catch_unwind(AssertUnwindSafe(|| f(&items[index]))) {
            Ok(result) => results[index] = Some(result),
            Err(payload) => failures.push(Failure {
                chunk: 0,
                items: index..index + 1,
                attempts: 1,
                error: Error::panicked(index, payload.as_ref()),
            }),
        }
    }
    Ok(Outcome {
        plan,
        results,
        failures,
        stats: RunStats::default(),
    })
}

/// Decides for `workload` on worker processes.
///
/// Free workers and pipes bound every real plan from below (more overhead is never faster, a
/// law of the model), so when even they cannot win, the plan is made from them and no worker
/// is started to measure the real costs.
fn decide(workload: &mut Workload, function: &str, caps: &Caps, options: &Options) -> Result<Plan> {
    if options.workers.is_none() {
        // Memory as known before any worker starts: fewer limits, so still a lower bound.
        super::memory::estimate(workload, function, costs::calibration_if_measured());
        let bound = plan::decide(workload, &Costs::zero(Backend::Processes), caps, options);
        if !bound.is_parallel() {
            return Ok(bound);
        }
    }
    let calibration = costs::calibration()?;
    super::memory::estimate(workload, function, Some(calibration));
    Ok(plan::decide(workload, &calibration.costs, caps, options))
}

/// Sampled items whose serialization is timed: a few are enough for a figure per item, and
/// for large values, where it matters, each costs as much as items the plan may run serially.
const TRANSFER_SAMPLE: usize = 3;

/// Serialization per item from `count` of the sampled items and results. A value that does not survive
/// the round trip is left out (the run names it when it meets it); none left means no figure.
fn transfer<T, R>(items: &[T], sampled: &[(usize, R)], count: usize) -> Transfer
where
    T: Serialize + DeserializeOwned,
    R: Serialize + DeserializeOwned,
{
    let mut left_out = HashSet::new();
    loop {
        let kept = || {
            sampled
                .iter()
                .filter(|(i, _)| !left_out.contains(i))
                .take(count)
        };
        let inputs = kept().map(|(i, _)| (*i, &items[*i]));
        let results = kept().map(|(i, r)| (*i, r));
        match sample::measure_transfer(inputs, results) {
            Ok(transfer) => return transfer,
            Err(e) => match e.item() {
                Some(i) if left_out.insert(i) => continue,
                _ => return Transfer::default(),
            },
        }
    }
}

/// The ranges of `0..len` not in `done`, in order.
fn gaps(len: usize, done: &HashSet<usize>) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    for i in 0..len {
        if done.contains(&i) {
            if start < i {
                ranges.push(start..i);
            }
            start = i + 1;
        }
    }
    if start < len {
        ranges.push(start..len);
    }
    ranges
}

/// A plain map never counts a result as a failure; should the thread path report one anyway,
/// it is an error naming the item rather than a panic here.
fn panicked_without_payload(index: usize) -> Error {
    Error::new(
        ErrorKind::ItemFailed,
        format!("item {index} was reported failed by the thread path of a plain map"),
    )
    .with_item(index)
}

#[cfg(test)]
mod tests {
    use super::gaps;
    use std::collections::HashSet;

    #[test]
    #[allow(clippy::single_range_in_vec_init)]
    fn gaps_are_what_the_sample_left() {
        let done: HashSet<usize> = [0, 3, 4, 9].into_iter().collect();
        assert_eq!(gaps(10, &done), [1..3, 5..9]);
        assert_eq!(gaps(3, &HashSet::new()), [0..3]);
        assert!(gaps(0, &HashSet::new()).is_empty());
    }
}
