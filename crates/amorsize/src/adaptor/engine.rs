//! Drives a producer into a consumer the amorsize way: a timed sample folded through both from
//! the front of the producer (results kept in place), a plan, then the rest: one sequential
//! fold on the calling thread, or bridged on a pool of the planned size with splits no finer
//! than the planned chunk, its first segment checked against the serial rate.

use super::check;
use super::min_len::MinLen;
use super::report::{Basis, PipelineRun, SegmentCheck};
use super::Hook;
use crate::cache::WorkloadKey;
use crate::calibrate::PARALLEL_FLOOR;
use crate::exec::pool::{self, Pool};
use crate::model::Seconds;
use crate::plan::{self, quick};
use crate::sample::{Clock, Glance, Reading, Sample, SystemClock, CONTIGUOUS_BELOW, WAITING_SPAN};
use crate::{Options, Plan};
use rayon::iter::plumbing::{
    bridge_producer_consumer, Consumer, Folder, Producer, ProducerCallback, Reducer,
};
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

/// Items of each block of the first glance: 8 in all (as [`quick::GLANCE_ITEMS`]), the
/// clock read after the 1st, 2nd, 4th and 8th.
const GLANCE_BLOCKS: [usize; 4] = [1, 1, 2, 4];

/// A timed block should last this many times the clock's overhead; below it the next block
/// holds twice the items (as the slice sampler's batches).
const BLOCK_OVER_OVERHEAD: f64 = 50.0;

/// ... and at least this long, for clocks whose overhead reads as zero.
const MIN_BLOCK_TIME: Seconds = 1e-6;

/// Thread CPU under this share of the wall time, with blocking, reads as waiting work.
const WAITING_CPU: f64 = 0.5;

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

/// A producer and its consumer still to run, with the results of the pieces already cut off
/// their front, each beside the reducer that joins it to what follows.
struct Pieces<P: Producer, C: Consumer<P::Item>> {
    producer: P,
    consumer: C,
    left: usize,
    done: Vec<(C::Result, C::Reducer)>,
}

impl<P: Producer, C: Consumer<P::Item>> Pieces<P, C> {
    /// Runs the first `k` items with `run` and keeps their result; returns the wall time.
    fn run_front(self, k: usize, run: impl FnOnce(P, C, usize) -> C::Result) -> (Self, Seconds) {
        let Pieces {
            producer,
            consumer,
            left,
            mut done,
        } = self;
        let (head, producer) = producer.split_at(k);
        let (head_consumer, consumer, reducer) = consumer.split_at(k);
        let clock = SystemClock;
        let t0 = clock.wall();
        let result = run(head, head_consumer, k);
        let took = clock.wall() - t0;
        done.push((result, reducer));
        let pieces = Pieces {
            producer,
            consumer,
            left: left - k,
            done,
        };
        (pieces, took)
    }

    /// Folds the first `k` items sequentially on this thread; returns the time.
    fn fold_front(self, k: usize) -> (Self, Seconds) {
        self.run_front(k, |p, c, _| fold(p, c))
    }

    /// The whole result, the rest run with `run`.
    fn finish(self, run: impl FnOnce(P, C, usize) -> C::Result) -> C::Result {
        let rest = run(self.producer, self.consumer, self.left);
        self.done
            .into_iter()
            .rev()
            .fold(rest, |acc, (r, reducer)| reducer.reduce(r, acc))
    }

    fn full(&self) -> bool {
        self.consumer.full()
    }
}

/// One sequential fold of `p` into `c` (what rayon does with a piece it does not split).
fn fold<P: Producer, C: Consumer<P::Item>>(p: P, c: C) -> C::Result {
    if c.full() {
        return c.into_folder().complete();
    }
    p.fold_with(c.into_folder()).complete()
}

/// How the rest runs.
enum Decision {
    /// Serial, as the glance proved (the plan is built only when someone asks for it).
    Settled(Glance<()>, quick::Proof),
    /// As a plan says, made from a sample (`figures`) or reused (`None`).
    Planned(Box<Plan>, Option<Sample>),
}

/// The sample's running figures.
struct Figures {
    count: usize,
    measured: Seconds,
    /// Net time and items of each timed block.
    blocks: Vec<(Seconds, usize)>,
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
    let start = Instant::now();
    let pieces = Pieces {
        producer,
        consumer,
        left: len,
        done: Vec::new(),
    };
    let key = || WorkloadKey::of_run(options.name.as_deref(), &marker::<P, C>, len);
    let (pieces, decision, sampled) = match quick::reuse(len, &marker::<P, C>, options) {
        Some(plan) => (pieces, Decision::Planned(Box::new(plan), None), 0),
        None => sample(pieces, len, options, &key),
    };
    let mut run = PipelineRun {
        basis: match &decision {
            Decision::Settled(..) => Basis::Glance,
            Decision::Planned(_, Some(_)) => Basis::Sample,
            Decision::Planned(_, None) => Basis::Reused,
        },
        plan: Plan::fixed(NonZeroUsize::MIN, NonZeroUsize::MIN),
        items: len,
        sampled,
        serial_rate: None,
        parallel_items: 0,
        serial_items: 0,
        workers: 1,
        check: None,
        nested: false,
        pool_error: None,
        wall: Duration::ZERO,
    };
    let (result, plan) = match decision {
        Decision::Settled(glance, proof) => {
            run.serial_items = pieces.left;
            let result = pieces.finish(|p, c, _| fold(p, c));
            // The plan is for the report only: the smallest inputs do not pay for it.
            if let Some(hook) = hook {
                run.serial_rate = rate(glance.item_time());
                let figures = plan::settled_sample(len, glance).figures;
                run.plan = plan::settled_plan(len, &figures, proof, options);
                run.wall = start.elapsed();
                hook(&run);
            }
            return result;
        }
        Decision::Planned(plan, figures) => {
            let item_time = figures
                .as_ref()
                .map(|f| f.item_time)
                .or_else(|| plan.item_time().map(|t| t.as_secs_f64()))
                .unwrap_or(0.0);
            run.serial_rate = rate(item_time);
            let rest_start = Instant::now();
            let result = run_rest(pieces, &plan, item_time, options, &mut run);
            let wall = rest_start.elapsed();
            crate::plan::recall::remember(
                &key(),
                &plan,
                wall,
                run.parallel_items + run.serial_items,
                run.nested,
                options.disk_cache,
            );
            (result, *plan)
        }
    };
    if let Some(hook) = hook {
        run.plan = plan;
        run.wall = start.elapsed();
        hook(&run);
    }
    result
}

/// Items per second for `item_time` seconds per item, when that is a time.
fn rate(item_time: Seconds) -> Option<f64> {
    (item_time > 0.0 && item_time.is_finite()).then(|| 1.0 / item_time)
}

/// The glance, then (unless it settles the input serial) the full sample and the plan.
fn sample<P, C>(
    pieces: Pieces<P, C>,
    len: usize,
    options: &Options,
    key: &impl Fn() -> WorkloadKey,
) -> (Pieces<P, C>, Decision, usize)
where
    P: Producer,
    C: Consumer<P::Item>,
{
    let overhead = SystemClock.overhead();
    let mut pieces = pieces;
    let mut figures = Figures {
        count: 0,
        measured: 0.0,
        blocks: Vec::new(),
    };
    for k in GLANCE_BLOCKS {
        if pieces.left == 0 || pieces.full() || figures.measured >= PARALLEL_FLOOR {
            break;
        }
        let k = k.min(pieces.left);
        let (next, took) = pieces.fold_front(k);
        pieces = next;
        figures.add(k, (took - overhead).max(0.0));
    }
    let glance = Glance {
        results: vec![(0, ()); figures.count],
        elapsed: figures.measured,
    };
    let glance_item = glance.item_time();
    let glance = match quick::settle(glance, len, options, key) {
        quick::Look::Serial(glance, proof) => {
            let count = figures.count;
            return (pieces, Decision::Settled(glance, proof), count);
        }
        quick::Look::Plan(glance) => glance,
    };
    drop(glance);
    let bounds = plan::sample_bounds(options);
    // Fast items are sampled as a longer block (a loop streams them), slower ones up to the
    // slice sampler's limit.
    let spread_limit = bounds.limit(Some(len));
    let limit = if glance_item < CONTIGUOUS_BELOW {
        ((len as f64 * bounds.max_fraction).floor() as usize)
            .max(spread_limit)
            .min(len)
    } else {
        spread_limit
    };
    let floor = (BLOCK_OVER_OVERHEAD * overhead).max(MIN_BLOCK_TIME);
    let mut block = match figures.blocks.last() {
        Some(&(net, k)) if net < floor => k.saturating_mul(2),
        Some(&(_, k)) => k,
        None => 1,
    };
    let estimate = |f: &Figures| f.measured / f.count.max(1) as f64 * len as f64;
    let clock = SystemClock;
    let wall_only_below = bounds.wall_only_below.map_or(0.0, |d| d.as_secs_f64());
    let mut span: Option<Reading> =
        (options.workers.is_some() || estimate(&figures) >= wall_only_below).then(|| clock.now());
    let mut in_span = 0;
    let began = clock.wall();
    let spent_before = figures.measured;
    loop {
        if pieces.left == 0 || pieces.full() || figures.count >= limit {
            break;
        }
        let cpu_seen = span.is_none() || in_span > 0;
        let spent = spent_before + (clock.wall() - began);
        if cpu_seen && figures.count > 0 && spent >= bounds.max_fraction * estimate(&figures) {
            break;
        }
        if cpu_seen
            && figures.count >= bounds.min_items
            && figures.measured >= bounds.target_time.as_secs_f64()
            && !span.is_some_and(|s| waiting_short(clock.now() - s))
        {
            break;
        }
        let k = block.min(limit - figures.count).min(pieces.left).max(1);
        let (next, took) = pieces.fold_front(k);
        pieces = next;
        let net = (took - overhead).max(0.0);
        figures.add(k, net);
        if span.is_some() {
            in_span += k;
        } else if estimate(&figures) >= wall_only_below {
            span = Some(clock.now());
        }
        if net < floor {
            block = block.saturating_mul(2);
        }
    }
    let cpu = span.map(|s| clock.now() - s);
    let figures = figures.finish::<P::Item>(floor, cpu, pieces.left == 0);
    let plan = plan::plan_measured(&figures, len, pieces.left, glance_item, &key(), options);
    let count = figures.count;
    (
        pieces,
        Decision::Planned(Box::new(plan), Some(figures)),
        count,
    )
}

/// Whether a CPU-timed span reads waiting work and is still shorter than [`WAITING_SPAN`].
fn waiting_short(span: Reading) -> bool {
    span.wall < WAITING_SPAN && span.blocked > 0 && span.thread_cpu < WAITING_CPU * span.wall
}

impl Figures {
    fn add(&mut self, k: usize, net: Seconds) {
        self.count += k;
        self.measured += net;
        self.blocks.push((net, k));
    }

    /// The sample's figures, as the slice sampler makes them: the spread from the blocks long
    /// enough to time, the CPU figures from the span the CPU clocks were read over.
    fn finish<R>(self, floor: Seconds, cpu: Option<Reading>, complete: bool) -> Sample {
        let mean = if self.count == 0 {
            0.0
        } else {
            self.measured / self.count as f64
        };
        let reliable: Vec<(Seconds, usize)> = self
            .blocks
            .iter()
            .copied()
            .filter(|(net, _)| *net >= floor)
            .collect();
        let cv = if mean > 0.0 && reliable.len() >= 2 {
            let sum: f64 = reliable
                .iter()
                .map(|&(net, b)| b as f64 * (net / b as f64 - mean).powi(2))
                .sum();
            (sum / (reliable.len() - 1) as f64).sqrt() / mean
        } else {
            0.0
        };
        let total = cpu.unwrap_or_default();
        let cpu_fraction = if total.blocked > 0 && total.wall > 0.0 && total.thread_cpu > 0.0 {
            (total.thread_cpu / total.wall).clamp(0.0, 1.0)
        } else {
            1.0
        };
        let ratio = if total.thread_cpu > 0.0 && total.wall >= crate::sample::MIN_NESTED_SPAN {
            total.process_cpu / total.thread_cpu
        } else {
            1.0
        };
        Sample {
            count: self.count,
            item_time: mean,
            cv,
            cpu_fraction,
            self_parallelism: if ratio >= crate::plan::NESTED_PARALLELISM_RATIO {
                ratio
            } else {
                1.0
            },
            result_bytes: std::mem::size_of::<R>() as u64,
            measured: self.measured,
            complete,
            cpu_skipped: cpu.is_none(),
            // The counting allocator's figures are read by the batch and stream samples only.
            memory: None,
        }
    }
}

/// Runs the rest as `plan` says, the first parallel segment checked against the serial
/// `item_time`, and records what ran where in `run`.
fn run_rest<P, C>(
    pieces: Pieces<P, C>,
    plan: &Plan,
    item_time: Seconds,
    options: &Options,
    run: &mut PipelineRun,
) -> C::Result
where
    P: Producer,
    C: Consumer<P::Item>,
{
    let workers = plan.workers().get();
    let chunk = plan.chunk_size().get();
    if !plan.is_parallel() || workers < 2 || pieces.left < 2 || pieces.full() {
        run.serial_items = pieces.left;
        return pieces.finish(|p, c, _| fold(p, c));
    }
    let nested = pool::nested();
    let pool = if nested {
        None
    } else {
        match pool::pool(workers) {
            Ok(pool) => Some(pool),
            Err(e) => {
                run.pool_error = Some(e.to_string());
                run.serial_items = pieces.left;
                return pieces.finish(|p, c, _| fold(p, c));
            }
        }
    };
    run.nested = nested;
    run.workers = if nested {
        workers.min(rayon::current_num_threads())
    } else {
        workers
    };
    let parallel = |p: P, c: C, k: usize| in_pool(pool.as_ref(), k, p, c, chunk);
    // The caller's fixed workers are the caller's plan: not second-guessed.
    let segment = match options.workers {
        Some(_) => None,
        None => check::segment_items(run.workers, chunk, item_time, pieces.left),
    };
    let Some(segment) = segment else {
        run.parallel_items = pieces.left;
        return pieces.finish(parallel);
    };
    let (pieces, took) = pieces.run_front(segment, parallel);
    let shed = !check::parallel_pays(item_time, segment, took);
    run.check = Some(SegmentCheck {
        items: segment,
        wall: Duration::from_secs_f64(took.max(0.0)),
        parallel_rate: if took > 0.0 {
            segment as f64 / took
        } else {
            f64::INFINITY
        },
        shed,
    });
    run.parallel_items = segment;
    if shed {
        run.serial_items = pieces.left;
        pieces.finish(|p, c, _| fold(p, c))
    } else {
        run.parallel_items += pieces.left;
        pieces.finish(parallel)
    }
}

/// Bridges `k` items of `p` into `c` on `pool` (the current pool when `None`), no split finer
/// than `chunk`.
fn in_pool<P, C>(pool: Option<&Pool>, k: usize, p: P, c: C, chunk: usize) -> C::Result
where
    P: Producer,
    C: Consumer<P::Item>,
{
    let op = move || bridge_producer_consumer(k, MinLen::new(p, chunk), c);
    match pool {
        Some(pool) => pool.install(op),
        None => op(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rayon::iter::plumbing::UnindexedConsumer;
    use rayon::prelude::*;
    use std::sync::{Arc, Mutex};

    /// A pipeline driven with a fixed plan after a sample of `sample` single items, as if the
    /// sample had measured `item_time` per item: what reaches the closed loop's segment
    /// whatever this machine measures.
    struct Forced<P> {
        base: P,
        plan: Plan,
        item_time: Seconds,
        sample: usize,
        seen: Arc<Mutex<Option<PipelineRun>>>,
    }

    struct ForcedCallback<C> {
        consumer: C,
        len: usize,
        plan: Plan,
        item_time: Seconds,
        sample: usize,
        seen: Arc<Mutex<Option<PipelineRun>>>,
    }

    impl<T, C: Consumer<T>> ProducerCallback<T> for ForcedCallback<C> {
        type Output = C::Result;
        fn callback<P: Producer<Item = T>>(self, producer: P) -> C::Result {
            let mut pieces = Pieces {
                producer,
                consumer: self.consumer,
                left: self.len,
                done: Vec::new(),
            };
            let sample = self.sample.min(self.len);
            for _ in 0..sample {
                pieces = pieces.fold_front(1).0;
            }
            let mut run = PipelineRun {
                basis: Basis::Sample,
                plan: self.plan.clone(),
                items: self.len,
                sampled: sample,
                serial_rate: None,
                parallel_items: 0,
                serial_items: 0,
                workers: 1,
                check: None,
                nested: false,
                pool_error: None,
                wall: Duration::ZERO,
            };
            let result = run_rest(
                pieces,
                &self.plan,
                self.item_time,
                &Options::new(),
                &mut run,
            );
            *self.seen.lock().unwrap() = Some(run);
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
                item_time: self.item_time,
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

    use rayon::iter::IndexedParallelIterator;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        // Whether the segment sheds the workers or not (it depends on this machine's speed),
        // the results are rayon's and every item is accounted for once.
        #[test]
        fn the_checked_segment_keeps_results_in_order(
            n in 0usize..20_000,
            workers in 2usize..5,
            chunk in 1usize..50,
            sample in 0usize..12,
            item_time in prop::sample::select(vec![1e-9, 1e-7, 1e-5, 1e-3, 1.0]),
        ) {
            let plan = Plan::fixed(NonZeroUsize::new(workers).unwrap(), NonZeroUsize::new(chunk).unwrap());
            let seen = Arc::new(Mutex::new(None));
            let v: Vec<u64> = (0..n as u64).collect();
            let forced = |seen: &Arc<Mutex<Option<PipelineRun>>>| Forced {
                base: v.par_iter().map(|x| x * 3),
                plan: plan.clone(),
                item_time,
                sample,
                seen: Arc::clone(seen),
            };
            let out: Vec<u64> = forced(&seen).collect();
            prop_assert_eq!(out, v.iter().map(|x| x * 3).collect::<Vec<_>>());
            let sum: u64 = forced(&seen).sum();
            prop_assert_eq!(sum, v.iter().map(|x| x * 3).sum::<u64>());
            let run = seen.lock().unwrap().take().unwrap();
            prop_assert_eq!(run.sampled + run.parallel_items + run.serial_items, n);
            if let Some(check) = &run.check {
                prop_assert!(check.items >= 1 && run.parallel_items >= check.items);
                prop_assert_eq!(check.shed, run.serial_items > 0);
            }
        }
    }
}
