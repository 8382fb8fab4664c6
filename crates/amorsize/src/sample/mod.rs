//! Runs the user's function on a few items and measures it. Sampled results are kept, so that
//! execution never runs an item twice.
//!
//! Per item: wall time (its spread as the coefficient of variation); over the sample: the
//! thread's CPU time (CPU ÷ wall tells CPU-bound from waiting work) and the process's CPU time
//! (above the thread's, the function runs threads of its own). Sampling adapts
//! ([`SampleBounds`]): at least 3 items, more until 100 µs have been measured, never more than
//! 5 % of the input nor 1000 items, and never longer than 5 % of the input's estimated serial
//! time (which may stop it before 3 items when they are slow, or early when the sampler's own
//! cost per item dwarfs items of nanoseconds). A slice is sampled at indices spread across it
//! (inputs are often sorted by size), or, when a first glance finds its items under
//! 1 µs (`CONTIGUOUS_BELOW`), in one block from its start, as a loop runs them; an iterator by its
//! prefix.

use crate::units::Seconds;
use crate::Result;
use serde::{Deserialize, Serialize};
use std::time::Duration;

mod clock;
pub(crate) mod meter;
mod transfer;

pub(crate) use meter::Meter;
pub(crate) use meter::NESTED_PARALLELISM_RATIO;
pub use meter::{MIN_NESTED_SPAN, WAITING_SPAN};

pub use clock::{Clock, Reading, SystemClock};
pub use meter::ItemMemory;
pub use transfer::{measure_transfer, Transfer};

/// What the sample measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Sample {
    /// Items measured.
    pub count: usize,
    /// Mean wall time of one item.
    pub item_time: Seconds,
    /// Coefficient of variation of the per-item wall time.
    pub cv: f64,
    /// Thread CPU time ÷ wall time, in `0..=1`.
    #[serde(default = "one")]
    pub cpu_fraction: f64,
    /// Process CPU time ÷ thread CPU time over the sample, at least 1.
    #[serde(default = "one")]
    pub self_parallelism: f64,
    /// Bytes one result holds: `size_of` the result type, plus the heap bytes it keeps
    /// (`memory.retained`) when the counting allocator measured them.
    #[serde(default)]
    pub result_bytes: u64,
    /// What the counting allocator counted per item; `None` when it is not installed
    /// (see [`crate::alloc`]).
    #[serde(default)]
    pub memory: Option<ItemMemory>,
    /// Wall time measured in all.
    #[serde(default)]
    pub measured: Seconds,
    /// Whether the sample ran every item of the input.
    #[serde(default)]
    pub complete: bool,
    /// The CPU clocks were not read ([`SampleBounds::wall_only_below`]): `cpu_fraction` and
    /// `self_parallelism` are the neutral 1.0, not measurements.
    #[serde(default)]
    pub cpu_skipped: bool,
}

fn one() -> f64 {
    1.0
}

impl Default for Sample {
    /// An empty sample: no item measured, figures of CPU-bound single-threaded work.
    fn default() -> Self {
        Sample {
            count: 0,
            item_time: 0.0,
            cv: 0.0,
            cpu_fraction: 1.0,
            self_parallelism: 1.0,
            result_bytes: 0,
            memory: None,
            measured: 0.0,
            complete: false,
            cpu_skipped: false,
        }
    }
}

/// The results of the sampled items, with their input indices, and the measurements.
#[derive(Debug)]
#[non_exhaustive]
pub struct Sampled<R> {
    /// `(input index, result)` in increasing index order.
    pub results: Vec<(usize, R)>,
    /// What the sample measured.
    pub figures: Sample,
}

/// How many items a sample takes and how long it measures.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use amorsize::sample::SampleBounds;
/// let b = SampleBounds::default().items(5, 5); // the original library's fixed 5 items
/// assert_eq!(b.limit(Some(1000)), 5);
/// assert_eq!(SampleBounds::default().limit(Some(2)), 2);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleBounds {
    /// Items measured at least: 3, enough for a spread; fewer only when the input is shorter
    /// or they already cost the budget of `max_fraction`.
    pub min_items: usize,
    /// Items measured at most: 1000, so that very fast functions reach the target time without
    /// a long serial prelude.
    pub max_items: usize,
    /// Measuring stops once this much wall time has been measured (and `min_items` run):
    /// 100 µs, thousands of times the clocks' resolution and overhead.
    pub target_time: Duration,
    /// Never more than this fraction of a known-length input (beyond `min_items`), nor longer
    /// than this fraction of its estimated serial time, the sampler's own overhead counted
    /// (beyond one item after the glance): 5 %, so that the serial sample costs at most about a
    /// twentieth of the work.
    pub max_fraction: f64,
    /// While the sample's estimate of the whole input's serial time stays below this, only the
    /// wall clock is read: the CPU clocks are system calls (about a microsecond each in a
    /// virtual machine), and the planner sets this bound where no parallel plan can win
    /// whatever the CPU figures say. `None` (the default): the CPU clocks are always read.
    pub wall_only_below: Option<Duration>,
}

impl Default for SampleBounds {
    fn default() -> Self {
        SampleBounds {
            min_items: 3,
            max_items: 1000,
            target_time: Duration::from_micros(100),
            max_fraction: 0.05,
            wall_only_below: None,
        }
    }
}

impl SampleBounds {
    /// Between `min` and `max` items (`max` at least `min`, `min` at least 1).
    pub fn items(mut self, min: usize, max: usize) -> Self {
        self.min_items = min.max(1);
        self.max_items = max.max(self.min_items);
        self
    }

    /// Stop measuring after `d` (once `min_items` have run).
    pub fn target_time(mut self, d: Duration) -> Self {
        self.target_time = d;
        self
    }

    /// The most items a sample of an input of `len` items (unknown: `None`) takes.
    pub fn limit(&self, len: Option<usize>) -> usize {
        let max = self.max_items.max(self.min_items);
        match len {
            Some(n) => {
                let by_fraction = (n as f64 * self.max_fraction).floor() as usize;
                by_fraction.clamp(self.min_items, max).min(n)
            }
            None => max,
        }
    }
}

/// Below this much measured wall time a sample that did not cover its input is reported as too
/// small to trust: a few clock readings' worth of noise would be a large share of it.
pub const MIN_TRUSTED_SAMPLE: Seconds = 10e-6;

/// Samples a slice at indices spread across it, with the real clocks.
///
/// # Errors
///
/// [`ErrorKind::Panicked`](crate::ErrorKind::Panicked) naming the item when `f` panics.
///
/// # Examples
///
/// ```
/// use amorsize::sample::{sample_slice, SampleBounds};
/// let items: Vec<u64> = (0..1000).collect();
/// let s = sample_slice(&items, &|x: &u64| x * 2, &SampleBounds::default()).unwrap();
/// assert!(s.figures.count >= 3);
/// assert!(s.results.iter().all(|(i, r)| *r == items[*i] * 2));
/// ```
pub fn sample_slice<T, R, F>(items: &[T], f: &F, bounds: &SampleBounds) -> Result<Sampled<R>>
where
    F: Fn(&T) -> R,
{
    sample_slice_with(items, f, bounds, &SystemClock)
}

/// [`sample_slice`] reading time from `clock`.
///
/// # Errors
///
/// As [`sample_slice`].
pub fn sample_slice_with<T, R, F, C>(
    items: &[T],
    f: &F,
    bounds: &SampleBounds,
    clock: &C,
) -> Result<Sampled<R>>
where
    F: Fn(&T) -> R,
    C: Clock,
{
    sample_slice_from(items, f, bounds, clock, Glance::default())
}

/// A first glance at a slice: the first few items of the sample's order (spread across the
/// input), run and timed together with one pair of wall-clock readings, which costs next to
/// nothing. What it ran is kept: the sample goes on from it
/// ([`sample_slice_after`]), so no item runs twice.
#[derive(Debug)]
pub(crate) struct Glance<R> {
    /// Results of the items run, with their input indices.
    pub(crate) results: Vec<(usize, R)>,
    /// Wall time of the items together, less one empty interval of the clock.
    pub(crate) elapsed: Seconds,
}

impl<R> Default for Glance<R> {
    fn default() -> Self {
        Glance {
            results: Vec::new(),
            elapsed: 0.0,
        }
    }
}

impl<R> Glance<R> {
    /// Mean wall time of the items run (0 when none ran).
    pub(crate) fn item_time(&self) -> Seconds {
        if self.results.is_empty() {
            0.0
        } else {
            self.elapsed / self.results.len() as f64
        }
    }
}

/// Runs the first `count` items of the sample's order over `items` (see [`Glance`]), or
/// fewer: it stops after the item that brings the time to `enough`, so that slow items are
/// left to the sample, whose CPU figures they need. `first`, when given, is the first item's
/// result and wall time, run already (the sample's order starts at index 0).
///
/// # Errors
///
/// [`ErrorKind::Panicked`](crate::ErrorKind::Panicked) with the item's index when `f` panics.
pub(crate) fn glance_slice<T, R, F>(
    items: &[T],
    f: &F,
    bounds: &SampleBounds,
    (count, enough): (usize, Seconds),
    first: Option<(R, Seconds)>,
) -> Result<Glance<R>>
where
    F: Fn(&T) -> R,
{
    let n = items.len();
    let mut indices = spread(n, bounds.limit(Some(n))).take(count);
    let mut results = Vec::with_capacity(count.min(n));
    let mut before = 0.0;
    if let Some((result, took)) = first {
        indices.next();
        results.push((0, result));
        before = took;
        if took >= enough {
            return Ok(Glance {
                results,
                elapsed: took,
            });
        }
    }
    let mut watch = Stopwatch::start();
    for index in indices {
        results.push((index, run_caught(index, &items[index], f)?));
        if watch.lap().is_some_and(|t| before + t >= enough) {
            break;
        }
    }
    Ok(Glance {
        results,
        elapsed: before + watch.finish(),
    })
}

/// Times a contiguous block from the start of `items` for a glance whose items, run one by
/// one across the input, averaged under [`CONTIGUOUS_BELOW`]: such items cost the loop far
/// less than isolated ones (each a miss to memory). The block doubles (8, 16, … items) until it
/// has run for [`BLOCK_GLANCE_TIME`] or [`BLOCK_GLANCE_ITEMS`] items; its results join the
/// glance's (none runs twice), and the glance's time per item becomes the block's: that of its
/// last batch when faster than the mean, since the first items pay what the loop pays once
/// (page faults on fresh memory, cold caches) and the later ones what it pays for each.
///
/// # Errors
///
/// [`ErrorKind::Panicked`](crate::ErrorKind::Panicked) with the item's index when `f` panics.
pub(crate) fn glance_block<T, R, F>(
    items: &[T],
    f: &F,
    bounds: &SampleBounds,
    glance: &mut Glance<R>,
) -> Result<()>
where
    F: Fn(&T) -> R,
{
    let n = items.len();
    // Within the sample's own bound on the items it may run.
    let most = bounds
        .limit(Some(n))
        .min(BLOCK_GLANCE_ITEMS)
        .saturating_sub(glance.results.len());
    if glance.results.is_empty()
        || glance.item_time() >= CONTIGUOUS_BELOW
        || n <= 2 * GLANCE_BLOCK_START
    {
        return Ok(());
    }
    let mut done: Vec<usize> = glance.results.iter().map(|(i, _)| *i).collect();
    done.sort_unstable();
    let clock = SystemClock;
    let overhead = clock.overhead();
    let (mut ran, mut spent, mut index, mut batch) = (0usize, 0.0, 0usize, GLANCE_BLOCK_START);
    // The last batch's time per item: the largest and warmest.
    let mut last = None;
    while index < n && ran < most && spent < BLOCK_GLANCE_TIME {
        let end = (index + batch.min(most - ran)).min(n);
        let before = ran;
        glance.results.reserve(end - index);
        touch_pages(&mut glance.results);
        let t0 = clock.wall();
        // The items between those the glance ran, each stretch as the loop runs it.
        let mut from = index;
        for stop in done
            .iter()
            .copied()
            .filter(|&d| d >= index && d < end)
            .chain([end])
        {
            ran += run_stretch(&items[from..stop], from, f, &mut glance.results)?;
            from = stop + 1;
        }
        let took = (clock.wall() - t0 - overhead).max(0.0);
        spent += took;
        if ran - before >= GLANCE_BLOCK_START {
            last = Some(took / (ran - before) as f64);
        }
        index = end;
        batch *= 2;
    }
    if ran > 0 {
        let mean = spent / ran as f64;
        let per_item = last.map_or(mean, |l| l.min(mean));
        glance.elapsed = per_item * glance.results.len() as f64;
    }
    Ok(())
}

/// The first batch of [`glance_block`].
pub(crate) const GLANCE_BLOCK_START: usize = 8;

/// How long [`glance_block`] runs at most: 20 µs, enough to time items of a few ns over
/// thousands of them, past the page faults and cold caches of the first ones (a fault costs
/// about a µs). Not a cost: the block's items are the call's own, none runs again.
pub(crate) const BLOCK_GLANCE_TIME: Seconds = 20e-6;

/// The most items [`glance_block`] runs: 4096, thousands of clock readings' worth for items
/// of a nanosecond. Each result is kept with its index (16 bytes for a `u64` result) until the
/// run copies it over, a cost that grows with the block while the timing gains little past
/// a few thousand items. (It was 16384; lowering it did not measurably change `tiny`'s warm
/// calls, whose slowness came from a full sample per call: `docs/BENCH.md`.)
pub(crate) const BLOCK_GLANCE_ITEMS: usize = 4096;

/// [`sample_slice`], going on from what `glance` ran (its items count as the sample's first
/// timed batch).
///
/// # Errors
///
/// As [`sample_slice`].
pub(crate) fn sample_slice_after<T, R, F>(
    items: &[T],
    f: &F,
    bounds: &SampleBounds,
    glance: Glance<R>,
) -> Result<Sampled<R>>
where
    F: Fn(&T) -> R,
{
    sample_slice_from(items, f, bounds, &SystemClock, glance)
}

fn sample_slice_from<T, R, F, C>(
    items: &[T],
    f: &F,
    bounds: &SampleBounds,
    clock: &C,
    glance: Glance<R>,
) -> Result<Sampled<R>>
where
    F: Fn(&T) -> R,
    C: Clock,
{
    let n = items.len();
    let limit = bounds.limit(Some(n));
    if !glance.results.is_empty()
        && glance.item_time() < CONTIGUOUS_BELOW
        && limit.saturating_mul(2) < n
    {
        return sample_block(items, f, bounds, clock, glance);
    }
    let mut meter = Meter::with_item_overhead(clock, bounds, limit, clock.item_overhead(), Some(n));
    // Heavy items: what one more serial item would teach costs more than waking the workers
    // for the rest, which then start at once.
    // With the counting allocator installed, one more item runs to count its memory (the
    // glance's was not counted), which a memory cap on heavy items needs.
    let heavy = heavy_glance(glance.results.len(), glance.elapsed, n);
    let mut results = glance.results;
    meter.seed(results.len(), glance.elapsed);
    if heavy {
        let results = in_index_order(results, n, limit);
        return Ok(Sampled {
            results,
            figures: meter.finish::<R>(false),
        });
    }
    // The indices are drawn before timing starts, so that drawing them is not timed; the
    // glance ran the first of them (and, for fast items, a block from the start).
    let done: std::collections::HashSet<usize> = results.iter().map(|(i, _)| *i).collect();
    let indices: Vec<usize> = spread(n, limit).filter(|i| !done.contains(i)).collect();
    prefetch(items, &indices);
    for index in indices {
        if meter.done() {
            break;
        }
        results.push((index, meter.run(index, &items[index], f)?));
    }
    let results = in_index_order(results, n, limit);
    let complete = results.len() == n;
    Ok(Sampled {
        results,
        figures: meter.finish::<R>(complete),
    })
}

/// A first item that takes at least this long ends the serial sample: 1 ms, 200 times the
/// least a parallel section costs ([`PARALLEL_FLOOR`](crate::calibrate::PARALLEL_FLOOR)),
/// so that waking the workers for the rest costs under 1 % of one item, while each further
/// serial item would delay them by a whole item (for 3 items of 75 ms, a second sampled item
/// turns 150 ms on 2 cores into 225). The plan is then made from that one item, as a sample
/// too small to trust (a higher threshold), and the run checks itself as every parallel run
/// does.
///
/// Only for inputs short enough that one more serial item would cost more than a
/// [`HEAVY_SHARE_INVERSE`]th of their parallel time (fewer items than that many per core): a
/// longer input can afford the sample, which also tells waiting items from computing ones.
pub(crate) const HEAVY_ITEM: Seconds = 1e-3;

/// How long a call's first item runs alone on the calling thread before the others start on
/// workers, when the input is short against the cores: 1 ms, the first item that ends the
/// serial sample (`HEAVY_ITEM`), 200 times what waking a worker costs; so the item that would
/// end the sample is the one that never made the others wait.
pub const SPILL_AFTER: Seconds = HEAVY_ITEM;

/// Whether a glance that ran `glanced` items in `elapsed` seconds, of an input of `n`, ends
/// the sample ([`HEAVY_ITEM`]): one item that long, an input short against the cores.
pub(crate) fn heavy_glance(glanced: usize, elapsed: Seconds, n: usize) -> bool {
    glanced == 1
        && elapsed >= HEAVY_ITEM
        && n > 2
        && (n as f64) < HEAVY_SHARE_INVERSE * crate::probe::cores_bound() as f64
        && !crate::alloc::installed()
}

/// See [`HEAVY_ITEM`]: 20, so that a further serial item is over 5 % of the parallel run.
pub(crate) const HEAVY_SHARE_INVERSE: f64 = 20.0;

/// Glanced items faster than this on average are sampled as one contiguous block from the
/// start of the input, as the loop that runs them would, rather than one by one across it:
/// 1 µs. Fetching an isolated item from across the input costs a miss to memory or several
/// (100 ns each, more when other threads have just touched the input), which a loop streaming
/// through the input does not pay; that is a large error on items of nanoseconds and a small
/// one from here up.
pub(crate) const CONTIGUOUS_BELOW: Seconds = 1e-6;

/// Glanced items of a pipeline faster than this on average are also timed as a block from the
/// front of the input ([`after_block`]): 20 µs, a few page faults' worth. A pipeline's consumer
/// writes each result in place (a `collect` into a fresh `Vec`), so an item run alone across
/// the input touches a fresh page of the output: measured, 23 items of a 1 ns hash collected
/// from 200 000 were timed at 4.5 µs each, where the loop takes 10 ns an item, faults included;
/// the plan then held the run to that rate and the closed loop could not see it lose.
pub(crate) const LOCALITY_BELOW: Seconds = 20e-6;

/// How many times faster per item a block from the front must run than the item at the front
/// run alone, and than the items run alone across the input, for the block's time to stand
/// for them all: 4, well past the spread of items of one workload, well short of what a page
/// fault per item costs items of nanoseconds. An estimate.
pub(crate) const LOCALITY_FACTOR: f64 = 4.0;

/// Whether a block from the front times the items of a glance, and at what per item: the
/// glance ran `spread` = (items, seconds, the first's seconds) alone across the input, the
/// first at its front, and `block` = (items, seconds) as a block from the front, whose last
/// batch took `last` per item. The block's time (its last batch's when faster: the first items
/// pay what the loop pays once) stands for the items
///
/// - when the spread items were fast enough to be sampled as a block anyway
///   ([`CONTIGUOUS_BELOW`]);
/// - when it ran [`LOCALITY_FACTOR`] times faster per item than both the front item alone and
///   the spread items: they paid for their places (a page fault each), not their work, since
///   the block's items lie right beside the front one.
///
/// Otherwise (`None`) the spread items' time stands, and the block's items are not timing
/// evidence: a block from the front says nothing of the rest of an input sorted by cost,
/// whose front is its cheapest or dearest part.
pub(crate) fn after_block(
    spread: (usize, Seconds, Seconds),
    block: (usize, Seconds),
    last: Option<Seconds>,
) -> Option<Seconds> {
    let (count, elapsed, first) = spread;
    let (ran, spent) = block;
    if ran == 0 {
        return None;
    }
    let mean = spent / ran as f64;
    let block_item = last.map_or(mean, |l| l.min(mean));
    if count == 0 {
        return Some(block_item);
    }
    let spread_item = elapsed / count as f64;
    let far_faster = |alone: Seconds| block_item * LOCALITY_FACTOR <= alone;
    (spread_item < CONTIGUOUS_BELOW || (far_faster(first) && far_faster(spread_item)))
        .then_some(block_item)
}

/// Samples a slice of items too fast to time one by one (see [`CONTIGUOUS_BELOW`]) as the loop
/// that runs them would: in order from the start, in timed batches, with the results written
/// one after the other, so that the time per item includes streaming the input and storing
/// the results, and nothing of the cache misses of isolated items. Items of a few ns also cost
/// the sampler little each, so the block may be longer than the spread sample's 1000 items:
/// up to [`SampleBounds::max_fraction`] of the input, and the sample's time budget. The
/// glance's spread items stand for the rest of the input (they saw nothing slower).
fn sample_block<T, R, F, C>(
    items: &[T],
    f: &F,
    bounds: &SampleBounds,
    clock: &C,
    glance: Glance<R>,
) -> Result<Sampled<R>>
where
    F: Fn(&T) -> R,
    C: Clock,
{
    let n = items.len();
    let spread_limit = bounds.limit(Some(n));
    let limit = ((n as f64 * bounds.max_fraction).floor() as usize)
        .max(spread_limit)
        .min(n);
    // With the counting allocator installed the items run one by one, each counted; otherwise
    // in stretches between the glance's items, each stretch one timed batch, as the loop runs
    // them: the meter's own step per item (a push, a panic guard, a count) costs more than
    // items of nanoseconds.
    let one_by_one = crate::alloc::installed();
    let item_overhead = if one_by_one {
        clock.item_overhead()
    } else {
        0.0
    };
    let mut meter = Meter::with_item_overhead(clock, bounds, limit, item_overhead, Some(n));
    meter.seed(glance.results.len(), glance.elapsed);
    let mut glanced = in_index_order(glance.results, n, spread_limit)
        .into_iter()
        .peekable();
    let mut results = Vec::with_capacity(limit);
    touch_pages(&mut results);
    let mut index = 0;
    while index < n && !meter.done() {
        // An item the glance ran takes its place in order; the others run now.
        if let Some(done) = glanced.next_if(|(i, _)| *i == index) {
            results.push(done);
            index += 1;
        } else if one_by_one {
            results.push((index, meter.run(index, &items[index], f)?));
            index += 1;
        } else {
            let next_glanced = glanced.peek().map_or(n, |(i, _)| *i);
            let end = (index + meter.next_block()).min(next_glanced).min(n);
            let stretch = &items[index..end];
            meter.run_block(end - index, || run_stretch(stretch, index, f, &mut results))?;
            index = end;
        }
    }
    results.extend(glanced);
    let complete = results.len() == n;
    Ok(Sampled {
        results,
        figures: meter.finish::<R>(complete),
    })
}

/// Writes a byte to every page of `v`'s spare capacity, before any item is timed: a fresh
/// vector's pages are mapped on their first write (a page fault, about a µs each), which the
/// sample's own buffer of `(index, result)` pairs would otherwise charge to the items. The
/// loop's output, reused from the allocator on later calls, pays none: measured, 200 000 items
/// of 1.8 ns each were sampled at 3.2 ns with the faults of a fresh buffer of 9 350 pairs.
/// (Where the output is fresh memory on every call, the items' time then leaves its faults
/// out: the estimate errs towards the loop.)
fn touch_pages<T>(v: &mut Vec<T>) {
    /// The smallest page of the platforms supported: touching every 4 KiB touches every page.
    const PAGE: usize = 4096;
    let stride = (PAGE / std::mem::size_of::<T>().max(1)).max(1);
    let spare = v.spare_capacity_mut();
    for slot in spare.iter_mut().step_by(stride) {
        *slot = std::mem::MaybeUninit::zeroed();
    }
    std::hint::black_box(spare);
}

/// Samples the first items of `iter` (whose length is `len` when known); returns the items
/// pulled, in order (input indices `0..`), beside the results, so that none is lost.
///
/// # Errors
///
/// [`ErrorKind::Panicked`](crate::ErrorKind::Panicked) naming the item when `f` panics.
///
/// # Examples
///
/// ```
/// use amorsize::sample::{sample_iter, SampleBounds};
/// let mut iter = 0..100u64;
/// let (prefix, s) = sample_iter(&mut iter, &|x: &u64| x + 1, &SampleBounds::default(), Some(100)).unwrap();
/// assert_eq!(prefix.len(), s.results.len());
/// assert_eq!(prefix.len() + iter.count(), 100);
/// ```
pub fn sample_iter<I, R, F>(
    iter: &mut I,
    f: &F,
    bounds: &SampleBounds,
    len: Option<usize>,
) -> Result<(Vec<I::Item>, Sampled<R>)>
where
    I: Iterator,
    F: Fn(&I::Item) -> R,
{
    sample_iter_with(iter, f, bounds, len, &SystemClock)
}

/// [`sample_iter`] reading time from `clock`.
///
/// # Errors
///
/// As [`sample_iter`].
pub fn sample_iter_with<I, R, F, C>(
    iter: &mut I,
    f: &F,
    bounds: &SampleBounds,
    len: Option<usize>,
    clock: &C,
) -> Result<(Vec<I::Item>, Sampled<R>)>
where
    I: Iterator,
    F: Fn(&I::Item) -> R,
    C: Clock,
{
    sample_prefix(
        iter,
        f,
        bounds,
        len,
        clock,
        None,
        Vec::new(),
        Glance::default(),
    )
}

/// [`glance_slice`] for an iterator: runs its first items (at most `count`, fewer once the
/// time reaches `enough`), and returns them, in order, beside the glance.
///
/// # Errors
///
/// [`ErrorKind::Panicked`](crate::ErrorKind::Panicked) with the item's index when `f` panics.
pub(crate) fn glance_iter<I, R, F>(
    iter: &mut I,
    f: &F,
    count: usize,
    enough: Seconds,
) -> Result<(Vec<I::Item>, Glance<R>)>
where
    I: Iterator,
    F: Fn(&I::Item) -> R,
{
    let mut prefix = Vec::with_capacity(count);
    let mut results = Vec::with_capacity(count);
    // Pulling the items is timed too, as it is part of the work.
    let mut watch = Stopwatch::start();
    while prefix.len() < count {
        let Some(item) = iter.next() else {
            break;
        };
        results.push((prefix.len(), run_caught(prefix.len(), &item, f)?));
        prefix.push(item);
        if watch.lap().is_some_and(|t| t >= enough) {
            break;
        }
    }
    Ok((
        prefix,
        Glance {
            results,
            elapsed: watch.finish(),
        },
    ))
}

/// Runs `items` (the first at input index `first`) in a plain loop into `out`, as the serial
/// loop runs them: one `catch_unwind` for the stretch, not one per item, and the results
/// written by `extend` from an iterator of known length, so that, like a `collect`, no write
/// checks the vector's capacity (a `push` per item cost about 5 % more on items of 1.7 ns,
/// measured with warm buffers); the number run.
///
/// # Errors
///
/// [`ErrorKind::Panicked`](crate::ErrorKind::Panicked) with the index of the item that panicked.
fn run_stretch<T, R, F: Fn(&T) -> R>(
    items: &[T],
    first: usize,
    f: &F,
    out: &mut Vec<(usize, R)>,
) -> Result<usize> {
    let mut at = first;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        out.extend(items.iter().map(|item| {
            let result = (at, f(item));
            at += 1;
            result
        }));
    }))
    .map_err(|payload| crate::Error::panicked(at, payload.as_ref()))?;
    Ok(items.len())
}

/// Runs `f` on `item`; a panic becomes an error naming the item's `index`.
fn run_caught<T, R, F: Fn(&T) -> R>(index: usize, item: &T, f: &F) -> Result<R> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(item)))
        .map_err(|payload| crate::Error::panicked(index, payload.as_ref()))
}

/// The glance's timing: the wall clock read at the start and after the 1st, 2nd, 4th, 8th…
/// item (and after the last): early enough to stop after the first of slow items, with half
/// the readings of one per item, each as costly as an item of tens of ns.
struct Stopwatch {
    start: Seconds,
    overhead: Seconds,
    items: usize,
    /// Readings after the start.
    reads: usize,
    /// Items when the clock was last read.
    read_at: usize,
    /// Wall time since the start, less what the readings cost.
    elapsed: Seconds,
}

impl Stopwatch {
    fn start() -> Self {
        let clock = SystemClock;
        Stopwatch {
            overhead: clock.overhead(),
            start: clock.wall(),
            items: 0,
            reads: 0,
            read_at: 0,
            elapsed: 0.0,
        }
    }

    /// Counts one more item; when the count is a power of two, reads the clock and returns
    /// the time so far.
    fn lap(&mut self) -> Option<Seconds> {
        self.items += 1;
        self.items.is_power_of_two().then(|| self.read())
    }

    fn read(&mut self) -> Seconds {
        self.reads += 1;
        self.read_at = self.items;
        // An empty interval's cost (two readings) for every two readings, the first one
        // included, is the clock's, not the items'.
        let readings = self.reads as f64 + 1.0;
        self.elapsed = (SystemClock.wall() - self.start - self.overhead * readings / 2.0).max(0.0);
        self.elapsed
    }

    /// The time of all the items counted.
    fn finish(mut self) -> Seconds {
        if self.read_at < self.items {
            self.read();
        }
        self.elapsed
    }
}

/// [`sample_iter`], going on from what a glance pulled (`prefix`) and ran (`glance`).
///
/// # Errors
///
/// As [`sample_iter`].
pub(crate) fn sample_iter_after<I, R, F>(
    iter: &mut I,
    f: &F,
    bounds: &SampleBounds,
    len: Option<usize>,
    prefix: Vec<I::Item>,
    glance: Glance<R>,
) -> Result<(Vec<I::Item>, Sampled<R>)>
where
    I: Iterator,
    F: Fn(&I::Item) -> R,
{
    sample_prefix(iter, f, bounds, len, &SystemClock, None, prefix, glance)
}

/// The prefix sampler, with the sampler's own per-item cost given (`Some`, when measuring that
/// cost itself) or taken from the clock, going on from the items a glance pulled (`prefix`)
/// and ran (`glance`).
#[allow(clippy::too_many_arguments)]
fn sample_prefix<I, R, F, C>(
    iter: &mut I,
    f: &F,
    bounds: &SampleBounds,
    len: Option<usize>,
    clock: &C,
    item_overhead: Option<Seconds>,
    prefix: Vec<I::Item>,
    glance: Glance<R>,
) -> Result<(Vec<I::Item>, Sampled<R>)>
where
    I: Iterator,
    F: Fn(&I::Item) -> R,
    C: Clock,
{
    let limit = bounds.limit(len);
    let item_overhead = item_overhead.unwrap_or_else(|| clock.item_overhead());
    let mut meter = Meter::with_item_overhead(clock, bounds, limit, item_overhead, len);
    let mut prefix = prefix;
    let mut results = glance.results;
    meter.seed(results.len(), glance.elapsed);
    // A glance that pulled fewer items than it could found the end of the input.
    let mut exhausted = len.is_some_and(|n| prefix.len() >= n);
    while !meter.done() {
        let Some(item) = iter.next() else {
            exhausted = true;
            break;
        };
        let index = prefix.len();
        results.push((index, meter.run(index, &item, f)?));
        prefix.push(item);
    }
    let complete = exhausted || len == Some(prefix.len());
    Ok((
        prefix,
        Sampled {
            results,
            figures: meter.finish::<R>(complete),
        },
    ))
}

/// The sampler's own time per item: the median of a few samples of a function that does
/// nothing over a plain range, run through the same loop as every prefix sample.
pub(crate) fn noop_item_time<C: Clock>(clock: &C) -> Seconds {
    const ITEMS: usize = 256;
    let bounds = SampleBounds::default().items(ITEMS, ITEMS);
    let means: Vec<Seconds> = (0..5)
        .map(|_| {
            let noop = |x: &usize| std::hint::black_box(*x);
            sample_prefix(
                &mut (0..ITEMS),
                &noop,
                &bounds,
                Some(ITEMS),
                clock,
                Some(0.0),
                Vec::new(),
                Glance::default(),
            )
            .map_or(0.0, |(_, s)| s.figures.item_time)
        })
        .collect();
    crate::stats::median(&means).unwrap_or(0.0)
}

/// Indices of `0..n` spread across it: the van der Corput sequence (0, ½, ¼, ¾, …) scaled to
/// `n`, so that however early sampling stops the indices seen so far cover the input evenly;
/// when `limit` is most of the input, simply every index.
///
/// The scaled points never collide, so no index needs to be remembered: the first `L ≤ limit`
/// points of the sequence are distinct multiples of `2^-m` with `2^m` the power of two at or
/// above `L`, so scaled by `n` they are at least `n ÷ 2^m` apart; and `2^m < 2 L ≤ 2 limit ≤ n`
/// on this path, so that gap is at least 1 and their integer parts are distinct.
pub(crate) fn spread(n: usize, limit: usize) -> impl Iterator<Item = usize> {
    let count = limit.min(n);
    let dense = limit.saturating_mul(2) >= n;
    (0..count).map(move |k| {
        if dense {
            k
        } else {
            // ⌊vdc(k) × n⌋ in integers, exactly: vdc(k) = reverse_bits(k) ÷ 2^64.
            (((k as u64).reverse_bits() as u128 * n as u128) >> 64) as usize
        }
    })
}

/// Asks the CPU to fetch the sampled items into its caches before they are timed. The loop
/// that runs the input streams it, and the hardware prefetches ahead of it; the sample's items
/// come from across the input, and without this each would be timed with a miss to memory
/// (tens of ns, more than an item of a few ns: after another pool's threads have touched the
/// input it read tens of times too slow). The loads overlap, so this costs a few µs for a
/// thousand items, and nothing where the input is dense.
fn prefetch<T>(items: &[T], indices: &[usize]) {
    #[cfg(target_arch = "x86_64")]
    if std::mem::size_of::<T>() > 0 && indices.len() < items.len() / 2 {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        for &i in indices {
            if let Some(item) = items.get(i) {
                // SAFETY: SSE, which the instruction needs, is part of every x86_64 CPU; a
                // prefetch is a hint that reads nothing the program sees and never faults.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(item).cast::<i8>()) };
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (items, indices);
}

/// Puts the results of the first `results.len()` indices of `spread(n, limit)`, in the order
/// drawn, into increasing index order, in linear time. Dense spreads are in order already.
/// Otherwise the `k`-th index is `⌊vdc(k) × n⌋`, increasing with `vdc(k)`; and for `k < 2^m`,
/// `vdc(k) × 2^m` is `k` with its `m` low bits reversed, so the drawn positions in increasing
/// order are the bit-reversals of `0, 1, …, 2^m − 1` that fall below the count.
///
/// Results in any other order (a glance that also timed a block from the start, see
/// [`glance_block`]) are sorted.
fn in_index_order<R>(mut results: Vec<(usize, R)>, n: usize, limit: usize) -> Vec<(usize, R)> {
    let sorted = |r: &[(usize, R)]| r.windows(2).all(|w| w[0].0 < w[1].0);
    let count = results.len();
    if count < 2 || sorted(&results) {
        return results;
    }
    if limit.saturating_mul(2) >= n {
        results.sort_unstable_by_key(|(i, _)| *i);
        return results;
    }
    let bits = count.next_power_of_two().trailing_zeros();
    let mut drawn: Vec<Option<(usize, R)>> = results.into_iter().map(Some).collect();
    let ordered: Vec<(usize, R)> = (0..1usize << bits)
        .filter_map(|j| {
            let k = j.reverse_bits() >> (usize::BITS - bits);
            drawn.get_mut(k).and_then(Option::take)
        })
        .collect();
    let mut ordered = ordered;
    if !sorted(&ordered) {
        ordered.sort_unstable_by_key(|(i, _)| *i);
    }
    ordered
}

#[cfg(test)]
mod tests {
    use super::{
        after_block, in_index_order, sample_slice_from, spread, touch_pages, Glance, SampleBounds,
        SystemClock, CONTIGUOUS_BELOW, LOCALITY_FACTOR,
    };

    #[test]
    fn a_block_far_faster_than_the_spread_items_stands_for_them() {
        // 8 items of 4.5 µs alone, the front one too (a page fault each), a block of 1000 at
        // 10 ns right after the front one: the block's.
        let item = after_block((8, 8.0 * 4.5e-6, 4.5e-6), (1000, 10e-6), Some(9e-9));
        assert!(item.is_some_and(|t| (t - 9e-9).abs() < 1e-15));
        // Cost rising along the input: the front item is as cheap as the block after it, the
        // spread items dear; the spread items' time stands.
        assert_eq!(
            after_block((2, 20e-6, 0.05e-6), (64, 64.0 * 0.3e-6), None),
            None
        );
        // Items of 5 µs either way: the spread items'.
        assert_eq!(
            after_block((8, 8.0 * 5e-6, 5e-6), (8, 8.0 * 4e-6), Some(4e-6)),
            None
        );
        // Just short of the factor: the spread items'.
        let spread = 2e-6;
        let block = spread / LOCALITY_FACTOR * 1.01;
        assert_eq!(
            after_block((4, 4.0 * spread, spread), (4, 4.0 * block), None),
            None
        );
        // Spread items under the contiguous bound are sampled as a block anyway.
        let item = after_block((8, 8.0 * 0.5e-6, 0.5e-6), (64, 64.0 * 0.4e-6), None);
        assert!(item.is_some_and(|t| (t - 0.4e-6).abs() < 1e-15));
        // No block: nothing to stand for them; a block alone: its own.
        assert_eq!(after_block((4, 4e-6, 1e-6), (0, 0.0), None), None);
        let alone = after_block((0, 0.0, 0.0), (10, 10e-6), None);
        assert!(alone.is_some_and(|t| (t - 1e-6).abs() < 1e-15));
    }

    /// Minor page faults of the calling thread so far (getrusage(2), `RUSAGE_THREAD`).
    #[cfg(target_os = "linux")]
    fn minor_faults() -> i64 {
        // SAFETY: all-zero bytes are a valid `rusage` (integers and timevals).
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `usage` is a valid, writable `rusage` for the duration of the call.
        assert_eq!(
            unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) },
            0
        );
        usage.ru_minflt
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_buffer_touched_beforehand_is_written_without_page_faults() {
        const ITEMS: usize = 1 << 16; // 1 MiB of pairs, 256 pages
        let mut pairs: Vec<(usize, u64)> = Vec::with_capacity(ITEMS);
        touch_pages(&mut pairs);
        let before = minor_faults();
        pairs.extend((0..ITEMS).map(|i| (i, i as u64)));
        let faults = minor_faults() - before;
        assert!(faults < 16, "{faults} page faults writing a touched buffer");
        assert_eq!(pairs[ITEMS - 1], (ITEMS - 1, ITEMS as u64 - 1));
    }

    #[test]
    fn a_panic_within_a_stretch_names_its_item() {
        let items: Vec<u64> = (0..100_000).collect();
        let f = |x: &u64| {
            assert!(*x != 777, "item 777");
            x * 7
        };
        let bounds = SampleBounds::default();
        let glance = Glance {
            results: vec![(0, 0)],
            elapsed: CONTIGUOUS_BELOW / 10.0,
        };
        let err = sample_slice_from(&items, &f, &bounds, &SystemClock, glance).unwrap_err();
        assert_eq!(err.item(), Some(777));
    }

    #[test]
    fn items_the_glance_found_fast_are_sampled_in_one_block_from_the_start() {
        let items: Vec<u64> = (0..100_000).collect();
        let f = |x: &u64| x * 7;
        let bounds = SampleBounds::default();
        let limit = bounds.limit(Some(items.len()));
        let glanced: Vec<usize> = spread(items.len(), limit).take(8).collect();
        let glance = Glance {
            results: glanced.iter().map(|&i| (i, f(&items[i]))).collect(),
            elapsed: 8.0 * CONTIGUOUS_BELOW / 10.0,
        };
        let s = sample_slice_from(&items, &f, &bounds, &SystemClock, glance).unwrap();
        let indices: Vec<usize> = s.results.iter().map(|(i, _)| *i).collect();
        assert!(indices.windows(2).all(|w| w[0] < w[1]), "in order");
        assert!(s.results.iter().all(|(i, r)| *r == f(&items[*i])));
        assert!(glanced.iter().all(|i| indices.contains(i)));
        // Besides the glance's, the items run are 0, 1, 2, … without a gap.
        let run: Vec<usize> = indices
            .iter()
            .copied()
            .filter(|i| !glanced.contains(i))
            .collect();
        assert!(!run.is_empty());
        let glanced_below = |i: usize| glanced.iter().filter(|&&g| g < i).count();
        assert!(run
            .iter()
            .enumerate()
            .all(|(k, &i)| i == k + glanced_below(i)));
    }
    use proptest::prelude::*;

    proptest! {
        /// The law the sampler relies on without remembering indices: every index is in the
        /// input, none repeats, and there are `min(limit, n)` of them.
        /// However many of a spread's indices were drawn, putting their results in order sorts
        /// them and keeps every one with its result.
        #[test]
        fn drawn_results_are_put_in_index_order(
            n in 1usize..100_000,
            limit in 1usize..2_000,
            take in 0usize..2_000,
        ) {
            let drawn: Vec<(usize, usize)> =
                spread(n, limit).take(take).map(|i| (i, i * 3)).collect();
            let mut want = drawn.clone();
            want.sort_unstable();
            prop_assert_eq!(in_index_order(drawn, n, limit), want);
        }

        #[test]
        fn spread_indices_are_distinct_and_in_range(n in 1usize..1_000_000, limit in 1usize..5_000) {
            let mut indices: Vec<usize> = spread(n, limit).collect();
            prop_assert_eq!(indices.len(), limit.min(n));
            prop_assert!(indices.iter().all(|&i| i < n));
            indices.sort_unstable();
            indices.dedup();
            prop_assert_eq!(indices.len(), limit.min(n));
        }
    }

    #[test]
    fn spread_starts_at_the_ends_and_the_middle() {
        let first: Vec<usize> = spread(1000, 10).take(4).collect();
        assert_eq!(first, [0, 500, 250, 750]);
    }
}
