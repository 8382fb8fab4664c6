//! Drives a producer into a consumer the amorsize way: a glance at items spread over the input
//! and a timed sample folded through both (from the front for items too fast to time alone,
//! else at places spread over the input), their results kept in place; a plan; then the rest, as one fold on the calling
//! thread or as pieces claimed by the workers of a pool, checked while they run by the
//! executor's closed loop ([`Check`]), which sheds workers that do not pay.

use super::line::{fold, Joined, Line, Part, Placed};
use super::Hook;
use crate::cache::WorkloadKey;
use crate::calibrate::PARALLEL_FLOOR;
use crate::exec::pool::{self, Pool};
use crate::exec::{self, Check, Phase, Stats};
use crate::plan::{self, quick};
use crate::sample::{
    self, Clock, Glance, Meter, SystemClock, BLOCK_GLANCE_ITEMS, BLOCK_GLANCE_TIME,
    CONTIGUOUS_BELOW, GLANCE_BLOCK_START, LOCALITY_BELOW,
};
use crate::{Options, Plan};
use rayon::iter::plumbing::{Consumer, Producer, ProducerCallback};
use std::any::Any;
use std::collections::VecDeque;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The most pieces the workers claim from before the calling thread cuts the next ones: 1024.
/// A pipeline's reducers stay on the thread that cut the pieces (rayon does not make them
/// `Send`), so the calling thread cuts the pieces of a window ahead and joins their results
/// after it; a window of this many chunks keeps that pause a small share of the run (one
/// chunk's tail per thousand chunks), and what the run holds bounded whatever the input.
pub const WINDOW_PIECES: usize = 1024;

/// What `with_producer` hands the producer to: the consumer and the options.
pub(super) struct Callback<C> {
    pub(super) len: usize,
    pub(super) consumer: C,
    pub(super) options: Options,
    pub(super) hook: Option<Hook>,
}

impl<T, C: Consumer<T>> ProducerCallback<T> for Callback<C> {
    type Output = C::Result;

    fn callback<P: Producer<Item = T>>(self, producer: P) -> C::Result {
        drive(
            self.len,
            producer,
            self.consumer,
            &self.options,
            self.hook.as_ref(),
        )
    }
}

/// The type that names the workload in the cache: the producer's and the consumer's types
/// (which hold the user's closures).
fn marker<P, C>(_: &()) {}

/// How the rest runs.
enum Decision {
    /// Serial, as the glance proved (the plan is built only when someone asks for it).
    Settled(Glance<()>, quick::Proof),
    /// As a plan says, made from a sample or reused.
    Planned(Box<Plan>),
}

/// Samples, plans and runs `producer` (of `len` items) into `consumer`.
pub(super) fn drive<P, C>(
    len: usize,
    producer: P,
    consumer: C,
    options: &Options,
    hook: Option<&Hook>,
) -> C::Result
where
    P: Producer,
    C: Consumer<P::Item>,
{
    let mut line = Line::new(producer, consumer, len);
    let key = || WorkloadKey::of_run(options.name.as_deref(), &marker::<P, C>, len);
    let decision = match quick::reuse(len, &marker::<P, C>, options) {
        Some(plan) => Decision::Planned(Box::new(plan)),
        None => sample(&mut line, len, options, &key),
    };
    let sampled = len - line.left();
    match decision {
        Decision::Settled(glance, proof) => {
            let start = Instant::now();
            let result = serial(line);
            // The plan is for the report only: the smallest inputs do not pay for it.
            if let Some(hook) = hook {
                let stats = serial_stats(len - sampled, start.elapsed());
                let figures = plan::settled_sample(len, glance).figures;
                let plan = plan::settled_plan(len, &figures, proof, options);
                hook(&exec::report_of(&plan, len, sampled, stats));
            }
            result
        }
        Decision::Planned(plan) => {
            let (result, stats) = run_rest(line, &plan, options);
            exec::learn(&key(), &plan, &stats, len - sampled, options.disk_cache);
            if let Some(hook) = hook {
                hook(&exec::report_of(&plan, len, sampled, stats));
            }
            result
        }
    }
}

/// The glance, then (unless it settles the input serial) the full sample and the plan. What
/// they run stays in `line`.
fn sample<P, C>(
    line: &mut Line<P, C>,
    len: usize,
    options: &Options,
    key: &impl Fn() -> WorkloadKey,
) -> Decision
where
    P: Producer,
    C: Consumer<P::Item>,
{
    let clock = SystemClock;
    let overhead = clock.overhead();
    let bounds = plan::sample_bounds(options);
    let spread_limit = bounds.limit(Some(len));
    // The glance: the first 8 items of the sample's order, spread over the input (the front,
    // the middle, the quarters, …; inputs are often sorted by cost), as the slice glance takes
    // them; each timed alone, so that cutting it off the input is not counted. As the slice
    // glance, it stops early only after the 1st, 2nd or 4th item.
    let (mut count, mut elapsed) = (0usize, 0.0);
    // The first item's time alone (the front of the input).
    let mut first = None;
    for index in sample::spread(len, spread_limit).take(quick::GLANCE_ITEMS) {
        let checked = count.is_power_of_two();
        if (checked && elapsed >= PARALLEL_FLOOR) || line.full() {
            break;
        }
        let mut took = 0.0;
        count += line.run_at(index, 1, |p, c| {
            let t0 = clock.wall();
            let result = fold(p, c);
            took = clock.wall() - t0;
            result
        });
        let took = (took - overhead).max(0.0);
        first.get_or_insert(took);
        elapsed += took;
    }
    // Items too fast to time alone are timed as the loop runs them: a block from the front,
    // doubling until it has run long enough (the slice glance's `glance_block`); the glance's
    // time per item becomes the block's. Items of a few µs get a block too: a consumer that
    // writes in place (`collect` into a fresh `Vec`) makes each item it runs alone across the
    // input pay a page fault, which the loop pays once a page; the block's time stands for
    // them only when the front item alone was far slower than the block's items after it
    // ([`sample::after_block`]).
    let spread_item = if count > 0 {
        elapsed / count as f64
    } else {
        0.0
    };
    if count > 0 && spread_item < LOCALITY_BELOW && len > 2 * GLANCE_BLOCK_START {
        let most = spread_limit.min(BLOCK_GLANCE_ITEMS).saturating_sub(count);
        let (mut ran, mut spent, mut block) = (0, 0.0, GLANCE_BLOCK_START);
        // The last batch's time per item: the largest and warmest.
        let mut last = None;
        while ran < most && spent < BLOCK_GLANCE_TIME && !line.full() {
            let Some(front) = line.first_left() else {
                break;
            };
            let k = block.min(most - ran).min(line.room(front));
            let mut took = 0.0;
            let done = line.run_at(front, k, |p, c| {
                let t0 = clock.wall();
                let result = fold(p, c);
                took = clock.wall() - t0;
                result
            });
            let took = (took - overhead).max(0.0);
            if done >= GLANCE_BLOCK_START {
                last = Some(took / done as f64);
            }
            ran += done;
            spent += took;
            block *= 2;
        }
        if ran > 0 {
            let spread = (count, elapsed, first.unwrap_or(0.0));
            // Else the block's items are kept, but the spread items' time stands.
            if let Some(item) = sample::after_block(spread, (ran, spent), last) {
                count += ran;
                elapsed = item * count as f64;
            }
        }
    }
    let glance = Glance {
        results: vec![(0, ()); count],
        elapsed,
    };
    let glance_item = glance.item_time();
    if let quick::Look::Serial(glance, proof) = quick::settle(glance, len, options, key) {
        return Decision::Settled(glance, proof);
    }
    // Items too fast to time alone are sampled as the loop runs them, in one block from the
    // front (as the slice sampler does); slower ones at places spread over the input.
    let contiguous =
        count > 0 && glance_item < CONTIGUOUS_BELOW && spread_limit.saturating_mul(2) < len;
    let limit = if contiguous {
        ((len as f64 * bounds.max_fraction).floor() as usize)
            .max(spread_limit)
            .min(len)
    } else {
        spread_limit
    };
    // The meter's per-item overhead is nil: a block runs as the pipeline's own fold.
    let mut meter = Meter::with_item_overhead(&clock, &bounds, limit, 0.0, Some(len));
    meter.seed(count, elapsed);
    let run = |line: &mut Line<P, C>, meter: &mut Meter<'_, SystemClock>, index: usize| {
        let k = meter.next_block().min(line.room(index));
        line.run_at(index, k, |p, c| meter.run_block(k, || fold(p, c)));
    };
    if sample::heavy_glance(count, elapsed, len) {
        // One item long enough to end the sample: the plan is made from it.
    } else if contiguous {
        while !meter.done() && !line.full() {
            let Some(front) = line.first_left() else {
                break;
            };
            run(line, &mut meter, front);
        }
    } else {
        for index in sample::spread(len, limit) {
            if meter.done() || line.full() || line.left() == 0 {
                break;
            }
            run(line, &mut meter, index);
        }
    }
    let figures = meter.finish::<P::Item>(line.left() == 0);
    let plan = plan::plan_measured(&figures, len, line.left(), glance_item, &key(), options);
    Decision::Planned(Box::new(plan))
}

/// The rest of `line`, every part folded in order on the calling thread.
fn serial<P: Producer, C: Consumer<P::Item>>(line: Line<P, C>) -> C::Result {
    let mut joined = Joined::new();
    fold_parts(line.into_parts(), &mut joined);
    joined.finish()
}

/// Folds `parts` in order into `joined`.
fn fold_parts<P: Producer, C: Consumer<P::Item>>(
    parts: VecDeque<Placed<P, C>>,
    joined: &mut Joined<C::Result, C::Reducer>,
) {
    for placed in parts {
        let result = match placed.part {
            Part::Todo { producer, consumer } => fold(producer, consumer),
            Part::Done(result) => result,
            Part::Running => unreachable!("no part runs between two steps of a drive"),
        };
        joined.push(result, placed.join);
    }
}

/// What a serial run of `ran` items in `wall` measured.
fn serial_stats(ran: usize, wall: Duration) -> Stats {
    Stats {
        workers: 1,
        chunks: 1,
        wall,
        busy: wall,
        phases: vec![Phase::new(1, ran, wall)],
        ..Stats::default()
    }
}

/// Runs the rest of `line` as `plan` says.
fn run_rest<P, C>(line: Line<P, C>, plan: &Plan, options: &Options) -> (C::Result, Stats)
where
    P: Producer,
    C: Consumer<P::Item>,
{
    let start = Instant::now();
    let left = line.left();
    let chunk = plan.chunk_size().get();
    let nested = pool::nested();
    let planned = if nested {
        plan.workers().get().min(pool::nested_threads())
    } else {
        plan.workers().get()
    };
    let workers = planned.min(left.div_ceil(chunk)).max(1);
    let pool = if !plan.is_parallel() || workers < 2 || line.full() {
        None
    } else if nested {
        Some(None)
    } else {
        // A pool that cannot start leaves the rest to the calling thread: the report shows
        // one worker where the plan says more.
        pool::pool_at_least(workers).ok().map(Some)
    };
    let Some(pool) = pool else {
        let result = serial(line);
        return (result, serial_stats(left, start.elapsed()));
    };
    parallel(line, plan, options, pool, workers)
}

/// The state the workers of one window share.
struct Window<'a, P, C: Consumer<P::Item>>
where
    P: Producer,
{
    pieces: Vec<Mutex<Option<(P, C)>>>,
    lens: Vec<usize>,
    results: Vec<Mutex<Option<C::Result>>>,
    cursor: AtomicUsize,
    stop: AtomicBool,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    busy: Mutex<Duration>,
    chunks: AtomicUsize,
    check: &'a Check,
}

fn lock<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    // Only this module's code runs under these locks (a panic of the pipeline is caught
    // outside them), so a poisoned lock holds consistent data.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<P: Producer, C: Consumer<P::Item>> Window<'_, P, C> {
    /// Worker `id`: claims pieces in order and folds them until none is left, a piece
    /// panicked, or the closed loop shed the worker.
    fn work(&self, id: usize) {
        let mut busy = Duration::ZERO;
        while !self.stop.load(Relaxed) && self.check.allows(id) {
            let at = self.cursor.fetch_add(1, Relaxed);
            let Some(piece) = self.pieces.get(at) else {
                self.check.drained();
                break;
            };
            let Some((producer, consumer)) = lock(piece).take() else {
                continue;
            };
            let len = self.lens[at];
            self.check.claimed(len);
            let t0 = Instant::now();
            match catch_unwind(AssertUnwindSafe(|| fold(producer, consumer))) {
                Ok(result) => *lock(&self.results[at]) = Some(result),
                Err(payload) => {
                    self.stop.store(true, Relaxed);
                    lock(&self.panic).get_or_insert(payload);
                    break;
                }
            }
            let took = t0.elapsed();
            busy += took;
            self.chunks.fetch_add(1, Relaxed);
            self.check.finished(id, len, took);
        }
        *lock(&self.busy) += busy;
    }
}

/// What a window's slot in order holds: a result the sample made, or a piece to claim (its
/// result is the next of the window's results).
enum Slot<R> {
    Done(R),
    Piece,
}

/// The parallel rest: windows of pieces of the planned chunk (shrinking towards the end, as
/// the batch executor's claims do), claimed in order by `workers` workers on `pool` (`None`:
/// nested, on the current pool with the calling thread as worker 0), each tallied by the
/// closed loop. Once it has shed all workers but one, the calling thread folds the rest.
fn parallel<P, C>(
    line: Line<P, C>,
    plan: &Plan,
    options: &Options,
    pool: Option<Pool>,
    workers: usize,
) -> (C::Result, Stats)
where
    P: Producer,
    C: Consumer<P::Item>,
{
    let start = Instant::now();
    let left = line.left();
    let nested = pool.is_none();
    let chunk = plan.chunk_size().get();
    let check = Check::new(workers, plan, start, options.exec.shed);
    let mut parts = line.into_parts();
    let mut joined = Joined::new();
    let mut remaining = left;
    let (mut busy, mut chunks) = (Duration::ZERO, 0);
    while !parts.is_empty() {
        let allowed = check.allowed();
        // One worker left for good (a trial's one worker is for a window only).
        if allowed < 2 && !check.trialing() {
            let t0 = Instant::now();
            fold_parts(std::mem::take(&mut parts), &mut joined);
            busy += t0.elapsed();
            chunks += 1;
            break;
        }
        let mut slots = Vec::new();
        let mut pieces = Vec::new();
        let mut lens = Vec::new();
        while pieces.len() < WINDOW_PIECES {
            let Some(front) = parts.pop_front() else {
                break;
            };
            match front.part {
                Part::Done(result) => slots.push((Slot::Done(result), front.join)),
                Part::Todo { producer, consumer } => {
                    let k = exec::claim_size(chunk, remaining, allowed);
                    remaining = remaining.saturating_sub(k.min(front.len));
                    if k < front.len {
                        let (lp, rp) = producer.split_at(k);
                        let (lc, rc, reducer) = consumer.split_at(k);
                        parts.push_front(Placed {
                            part: Part::Todo {
                                producer: rp,
                                consumer: rc,
                            },
                            start: front.start + k,
                            len: front.len - k,
                            join: front.join,
                        });
                        slots.push((Slot::Piece, Some(reducer)));
                        pieces.push(Mutex::new(Some((lp, lc))));
                        lens.push(k);
                    } else {
                        slots.push((Slot::Piece, front.join));
                        pieces.push(Mutex::new(Some((producer, consumer))));
                        lens.push(front.len);
                    }
                }
                Part::Running => unreachable!("no part runs between two steps of a drive"),
            }
        }
        let window = Window {
            results: pieces.iter().map(|_| Mutex::new(None)).collect(),
            pieces,
            lens,
            cursor: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            panic: Mutex::new(None),
            busy: Mutex::new(Duration::ZERO),
            chunks: AtomicUsize::new(0),
            check: &check,
        };
        check.refilled();
        run_window(&window, pool.as_ref(), workers);
        let Window {
            results,
            panic,
            busy: window_busy,
            chunks: window_chunks,
            ..
        } = window;
        if let Some(payload) = panic.into_inner().unwrap_or_else(PoisonError::into_inner) {
            resume_unwind(payload);
        }
        busy += window_busy
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        chunks += window_chunks.into_inner();
        let mut results = results.into_iter().map(|r| {
            r.into_inner()
                .unwrap_or_else(PoisonError::into_inner)
                .unwrap_or_else(|| unreachable!("worker 0 claims every piece the others leave"))
        });
        for (slot, join) in slots {
            let result = match slot {
                Slot::Done(result) => result,
                Slot::Piece => match results.next() {
                    Some(result) => result,
                    None => unreachable!("one result per piece"),
                },
            };
            joined.push(result, join);
        }
    }
    let wall = start.elapsed();
    let result = joined.finish();
    let ruling = check.into_ruling(left, wall);
    let stats = Stats {
        workers,
        chunks,
        wall,
        busy,
        nested,
        phases: ruling.phases,
        sheds: ruling.sheds,
        judged: ruling.judged,
        alone: ruling.alone,
        ..Stats::default()
    };
    (result, stats)
}

/// Runs `window`'s pieces on `workers` workers of `pool` (nested: the pool a nested run
/// uses), the calling thread as worker 0, which the closed loop never sheds.
fn run_window<P: Producer, C: Consumer<P::Item>>(
    window: &Window<'_, P, C>,
    pool: Option<&Pool>,
    workers: usize,
) {
    // The calling thread is worker 0 either way: it starts at once rather than wait for a
    // pool's thread to wake, and does not sleep until the others end (as the batch executor's
    // caller does, `exec::threads`).
    match pool {
        Some(pool) => pool.in_place_scope(|scope| {
            for id in 1..workers {
                scope.spawn(move |_| window.work(id));
            }
            pool::working_in(pool, || window.work(0));
        }),
        None => pool::nested_scope(|scope| {
            for id in 1..workers {
                scope.spawn(move |_| window.work(id));
            }
            window.work(0);
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Backend, Costs, Workload};
    use proptest::prelude::*;
    use rayon::iter::plumbing::UnindexedConsumer;
    use rayon::iter::{IndexedParallelIterator, ParallelIterator};
    use rayon::prelude::*;
    use std::num::NonZeroUsize;
    use std::sync::{Arc, Mutex};

    /// A pipeline driven with a given plan after a sample of single items at `sample` places
    /// spread over the input: what reaches the parallel rest, and its closed loop, whatever
    /// this machine measures.
    struct Forced<P> {
        base: P,
        plan: Plan,
        sample: usize,
        seen: Arc<Mutex<Option<Stats>>>,
    }

    struct ForcedCallback<C> {
        consumer: C,
        len: usize,
        plan: Plan,
        sample: usize,
        seen: Arc<Mutex<Option<Stats>>>,
    }

    impl<T, C: Consumer<T>> ProducerCallback<T> for ForcedCallback<C> {
        type Output = C::Result;
        fn callback<P: Producer<Item = T>>(self, producer: P) -> C::Result {
            let mut line = Line::new(producer, self.consumer, self.len);
            for index in sample::spread(self.len, self.sample).take(self.sample) {
                line.run_at(index, 1, fold);
            }
            let (result, stats) = run_rest(line, &self.plan, &Options::new());
            *self.seen.lock().unwrap() = Some(stats);
            result
        }
    }

    impl<P: IndexedParallelIterator> ParallelIterator for Forced<P> {
        type Item = P::Item;
        fn drive_unindexed<C: UnindexedConsumer<P::Item>>(self, consumer: C) -> C::Result {
            self.drive(consumer)
        }
        fn opt_len(&self) -> Option<usize> {
            Some(self.base.len())
        }
    }

    impl<P: IndexedParallelIterator> IndexedParallelIterator for Forced<P> {
        fn drive<C: Consumer<P::Item>>(self, consumer: C) -> C::Result {
            let len = self.base.len();
            self.base.with_producer(ForcedCallback {
                consumer,
                len,
                plan: self.plan,
                sample: self.sample,
                seen: self.seen,
            })
        }
        fn len(&self) -> usize {
            self.base.len()
        }
        fn with_producer<CB: ProducerCallback<P::Item>>(self, callback: CB) -> CB::Output {
            self.base.with_producer(callback)
        }
    }

    /// A parallel plan for `workers` workers and items of `item_time` each, with its serial
    /// rate: the closed loop checks it against what this machine measures (it may shed).
    fn checked_plan(workers: usize, item_time: f64) -> Plan {
        let mut plan = crate::plan::decide(
            &Workload::new(1_000_000, item_time),
            &Costs::zero(Backend::Threads),
            &crate::plan::Caps::cores(workers, "test"),
            &Options::new(),
        );
        plan.set_sample(crate::sample::Sample {
            count: 50,
            item_time,
            ..Default::default()
        });
        plan
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        // Whether the closed loop sheds workers or not (it depends on this machine's speed),
        // the results are rayon's, every item is accounted for once, and the phases add up.
        #[test]
        fn the_parallel_rest_keeps_results_in_order(
            n in 0usize..20_000,
            workers in 2usize..5,
            chunk in 1usize..50,
            sample in 0usize..40,
            fixed in any::<bool>(),
            item_time in prop::sample::select(vec![1e-9, 1e-7, 1e-5, 1e-3]),
        ) {
            let plan = if fixed {
                Plan::fixed(NonZeroUsize::new(workers).unwrap(), NonZeroUsize::new(chunk).unwrap())
            } else {
                checked_plan(workers, item_time)
            };
            let seen = Arc::new(Mutex::new(None));
            let v: Vec<u64> = (0..n as u64).collect();
            let forced = |seen: &Arc<Mutex<Option<Stats>>>| Forced {
                base: v.par_iter().map(|x| x * 3),
                plan: plan.clone(),
                sample,
                seen: Arc::clone(seen),
            };
            let out: Vec<u64> = forced(&seen).collect();
            prop_assert_eq!(out, v.iter().map(|x| x * 3).collect::<Vec<_>>());
            let sum: u64 = forced(&seen).sum();
            prop_assert_eq!(sum, v.iter().map(|x| x * 3).sum::<u64>());
            let strings: Vec<String> = forced(&seen).map(|x| x.to_string()).collect();
            prop_assert_eq!(strings.len(), n);
            let stats = seen.lock().unwrap().take().unwrap();
            let sampled = sample.min(n);
            let ran: usize = stats.phases.iter().map(|p| p.items).sum();
            prop_assert_eq!(ran + sampled, n);
            if let Some(last) = stats.sheds.last() {
                // The last phase runs on the last shed's workers, or on worker 0 alone when
                // the run ended during a trial that followed the shed (`exec::check`).
                let ended_on = stats.phases.last().map(|p| p.workers);
                prop_assert!(
                    ended_on == Some(last.to) || ended_on == Some(1),
                    "ended on {:?} after a shed to {}", ended_on, last.to
                );
            }
        }
    }

    #[test]
    fn a_line_cut_at_spread_places_joins_back_in_order() {
        for n in [0usize, 1, 2, 7, 100, 1000] {
            let v: Vec<u64> = (0..n as u64).collect();
            for sample in [0usize, 1, 3, 10, 64] {
                let seen = Arc::new(Mutex::new(None));
                let out: Vec<u64> = Forced {
                    base: v.par_iter().map(|x| x + 1),
                    plan: Plan::fixed(NonZeroUsize::MIN, NonZeroUsize::MIN),
                    sample,
                    seen,
                }
                .collect();
                assert_eq!(out, v.iter().map(|x| x + 1).collect::<Vec<_>>());
            }
        }
    }
}
