//! Timing of sampled items: one by one while items are slow enough to time alone, in growing
//! batches once an item takes less than the clock's own overhead many times over. The items
//! are run by the meter ([`Meter::run`], the slice and iterator samplers) or, several at once,
//! by the caller ([`Meter::run_block`], a piece of a rayon pipeline folded through its
//! consumer); the running figures, when to stop and the sample's figures are the same.

use super::{Clock, Reading, Sample, SampleBounds};
use crate::units::Seconds;
use crate::Result;
use serde::{Deserialize, Serialize};

/// What the sample counted of one item's memory (with [`Counting`](crate::alloc::Counting)
/// installed), in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ItemMemory {
    /// Mean bytes allocated per item.
    pub allocated: u64,
    /// The most bytes one item had live at once: what each item in flight needs.
    pub peak: u64,
    /// Mean heap bytes an item's result keeps (still live when the function returned).
    pub retained: u64,
}

/// A timed batch should last this many times the clock's overhead before the overhead's
/// jitter is a small error (2 %): below it, the next batch holds twice the items.
const BATCH_OVER_OVERHEAD: f64 = 50.0;

/// ...and at least this long, for clocks whose overhead reads as zero.
const MIN_BATCH_TIME: Seconds = 1e-6;

/// The shortest CPU-timed span, and the least CPU time of the sampling thread in it, over which
/// the process's CPU time beyond the sampling thread's is taken for threads of the function's
/// own: 1 ms. Other threads of the process burn CPU
/// during the span too — a thread pool that has just finished a job spins before it sleeps
/// (rayon's workers, for tens to hundreds of µs) — and over a span of microseconds that alone
/// reads as two or more CPUs per call; a function's own threads keep the ratio up however long
/// the span.
pub const MIN_NESTED_SPAN: Seconds = 1e-3;

/// Above this ratio of process CPU to thread CPU the function is taken to run threads of its
/// own; below it, other threads of the process (a logger, an allocator's background thread)
/// may explain the difference.
pub(crate) const NESTED_PARALLELISM_RATIO: f64 = 1.5;

/// A sample whose CPU-timed span reads the thread waiting (thread CPU under half the wall
/// time, with blocking) goes on until the span lasts [`WAITING_SPAN`], within the budget.
const WAITING_CPU: f64 = 0.5;

/// The CPU-timed span a sample of waiting items reaches before it stops, budget permitting:
/// 5 ms. Waiting work's worker count is the cores ÷ its CPU share, and over the usual few
/// items (a millisecond) one wake-up delayed by another program, or a pool that spins down
/// beside it, doubles the share read: 7 workers planned where 20 were right.
pub const WAITING_SPAN: Seconds = 5e-3;

/// The least share of a batch's time [`Meter::net`] leaves to the items: half. The sampler's
/// step and the executor's (each stores a result per item) are taken to cost about the same;
/// an estimate, not a measurement.
const ITEM_SHARE_KEPT: f64 = 0.5;

/// Times items and keeps the running figures.
pub(crate) struct Meter<'c, C> {
    clock: &'c C,
    bounds: &'c SampleBounds,
    limit: usize,
    overhead: Seconds,
    /// The sampler's own cost per item, subtracted ([`Meter::net`]).
    item_overhead: Seconds,
    /// Items in the whole input, when known: with [`SampleBounds::wall_only_below`], what the
    /// running estimate of the input's serial time is made from.
    total: Option<usize>,
    /// All clocks at the start of the CPU-timed span; `None` while only the wall clock is read.
    start: Option<Reading>,
    /// Items run inside the CPU-timed span.
    in_span: usize,
    count: usize,
    /// Items per timed batch now.
    batch: usize,
    /// The open batch: when it started, items so far.
    open: Option<(Seconds, usize)>,
    /// Closed batches: net wall time, items.
    batches: Vec<(Seconds, usize)>,
    measured: Seconds,
    /// Wall time the sample has cost so far, its own overhead included: the glance's time and
    /// the meter's since its first batch opened. Updated when a batch closes.
    spent: Seconds,
    /// The wall clock when `spent` was last updated (`None` before the first batch).
    began: Option<Seconds>,
    /// What the counting allocator counted over the items run here; `None` when it is not
    /// installed.
    memory: Option<MemoryTally>,
}

/// Sums of the counting allocator's figures per item.
#[derive(Default)]
struct MemoryTally {
    items: u64,
    allocated: u64,
    peak: u64,
    retained: u64,
}

impl MemoryTally {
    fn add(&mut self, c: crate::alloc::Counted) {
        self.items += 1;
        self.allocated = self.allocated.saturating_add(c.allocated);
        self.peak = self.peak.max(c.peak);
        self.retained = self.retained.saturating_add(c.retained);
    }

    /// Means per item, and the largest peak (every item in flight may need as much).
    fn figures(&self) -> Option<ItemMemory> {
        (self.items > 0).then(|| ItemMemory {
            allocated: self.allocated / self.items,
            peak: self.peak,
            retained: self.retained / self.items,
        })
    }
}

impl<'c, C: Clock> Meter<'c, C> {
    /// A meter that takes at most `limit` items of an input of `total` items (when known),
    /// subtracting `item_overhead` seconds of the sampler's own per item.
    pub(crate) fn with_item_overhead(
        clock: &'c C,
        bounds: &'c SampleBounds,
        limit: usize,
        item_overhead: Seconds,
        total: Option<usize>,
    ) -> Self {
        let wall_only = bounds.wall_only_below.is_some() && total.is_some();
        Meter {
            clock,
            bounds,
            limit,
            item_overhead,
            total,
            overhead: clock.overhead(),
            start: (!wall_only).then(|| clock.now()),
            in_span: 0,
            count: 0,
            batch: 1,
            open: None,
            batches: Vec::new(),
            measured: 0.0,
            spent: 0.0,
            began: None,
            memory: crate::alloc::installed().then(MemoryTally::default),
        }
    }

    /// Counts `items` already run and timed together (`elapsed`, the clock's own overhead
    /// already taken off) as the first closed batch.
    pub(crate) fn seed(&mut self, items: usize, elapsed: Seconds) {
        if items == 0 {
            return;
        }
        let net = self.net(elapsed, items);
        self.count += items;
        self.batches.push((net, items));
        self.measured += net;
        self.spent += elapsed;
        // Batches grow from the seed's size when it was too short to time alone, and start at
        // the size that times well when its items were too short to time one by one: batches
        // of 1, 2, 4… items of nanoseconds each would read mostly the clock's jitter.
        let floor = self.batch_floor();
        if net < floor {
            self.batch = items.saturating_mul(2);
        } else if net < floor * items as f64 {
            self.batch = (floor * items as f64 / net).ceil() as usize;
        }
        self.start_cpu_span_when_it_matters();
    }

    /// Whether the sample has enough: the item limit, or the minimum items and the target time,
    /// or the sample's budget spent.
    pub(crate) fn done(&self) -> bool {
        // Once the CPU clocks are read, at least one item must run between their readings
        // (items seeded from a glance ran before), or the CPU figures say nothing.
        let cpu_seen = self.start.is_none() || self.in_span > 0;
        if self.count >= self.limit {
            return true;
        }
        if self.open.is_some() || !cpu_seen {
            return false;
        }
        if self.over_budget() {
            return true;
        }
        self.count >= self.bounds.min_items
            && self.measured >= self.bounds.target_time.as_secs_f64()
            && !self.waiting_span_short()
    }

    /// Whether the CPU-timed span so far reads waiting items and is shorter than
    /// [`WAITING_SPAN`] (one reading of the clocks, only when the sample would stop otherwise).
    fn waiting_span_short(&self) -> bool {
        let Some(start) = self.start else {
            return false;
        };
        let span = self.clock.now() - start;
        span.wall < WAITING_SPAN && span.blocked > 0 && span.thread_cpu < WAITING_CPU * span.wall
    }

    /// Whether the sample has cost [`SampleBounds::max_fraction`] of the estimated serial time
    /// of the whole input: a larger share of the work run serially (slow items, few of them)
    /// or spent on the sampler's own overhead (items of nanoseconds, each fetched from across
    /// the input and timed) would cost more than a finer estimate can win back.
    fn over_budget(&self) -> bool {
        let Some(total) = self.total else {
            return false;
        };
        if self.count == 0 || self.measured <= 0.0 {
            return false;
        }
        let estimate = self.measured / self.count as f64 * total as f64;
        self.spent >= self.bounds.max_fraction * estimate
    }

    /// Runs `f` on `item` (input index `index`), timing it alone or within the open batch.
    pub(super) fn run<T, R, F: Fn(&T) -> R>(&mut self, index: usize, item: &T, f: &F) -> Result<R> {
        let (since, items) = match self.open {
            Some(open) => open,
            None => {
                let now = self.clock.wall();
                self.began.get_or_insert(now);
                (now, 0)
            }
        };
        let result = match self.memory.as_mut() {
            Some(tally) => {
                let (result, counted) = crate::alloc::measure(|| super::run_caught(index, item, f));
                tally.add(counted);
                result?
            }
            None => super::run_caught(index, item, f)?,
        };
        self.count += 1;
        if self.start.is_some() {
            self.in_span += 1;
        }
        self.open = Some((since, items + 1));
        if items + 1 >= self.batch || self.count >= self.limit {
            self.close();
        }
        Ok(result)
    }

    /// Items the next block run by the caller should hold: the batch the meter has grown to
    /// (doubled while batches are too short to time), within the sample's limit; at least 1.
    pub(crate) fn next_block(&self) -> usize {
        self.batch.min(self.limit.saturating_sub(self.count)).max(1)
    }

    /// Runs `block`, which runs `items` items at once (a piece of a pipeline folded through its
    /// consumer), and times it as one batch. A panic in `block` unwinds through the meter,
    /// which then counts nothing of it. The counting allocator is not read: a block's peak
    /// is its items' and their partial result's together, not one item's.
    pub(crate) fn run_block<X>(&mut self, items: usize, block: impl FnOnce() -> X) -> X {
        self.close();
        let now = self.clock.wall();
        self.began.get_or_insert(now);
        let out = block();
        self.count += items;
        if self.start.is_some() {
            self.in_span += items;
        }
        self.open = Some((now, items));
        self.close();
        out
    }

    /// The items' own time in a batch of `items` that took `elapsed` (the clock's overhead
    /// already off): less the sampler's own step per item, but never less than
    /// [`ITEM_SHARE_KEPT`] of it. An item cheaper than the sampler's step (a push of its
    /// result) is as cheap as the loop's own step, which the executor pays too; taking the
    /// whole batch for the sampler's would time such items at nothing, and a plan would then
    /// say its work takes 0 s.
    fn net(&self, elapsed: Seconds, items: usize) -> Seconds {
        let elapsed = elapsed.max(0.0);
        (elapsed - items as f64 * self.item_overhead).max(elapsed * ITEM_SHARE_KEPT)
    }

    fn close(&mut self) {
        let Some((since, items)) = self.open.take() else {
            return;
        };
        let now = self.clock.wall();
        let net = self.net(now - since - self.overhead, items);
        self.batches.push((net, items));
        self.measured += net;
        if let Some(began) = self.began.replace(now) {
            self.spent += now - began;
        }
        if net < self.batch_floor() {
            self.batch = self.batch.saturating_mul(2);
        }
        self.start_cpu_span_when_it_matters();
    }

    /// Starts reading the CPU clocks once the estimate of the whole input's serial time reaches
    /// [`SampleBounds::wall_only_below`]: from then on the CPU figures may change the decision.
    fn start_cpu_span_when_it_matters(&mut self) {
        if self.start.is_some() || self.count == 0 {
            return;
        }
        let (Some(below), Some(total)) = (self.bounds.wall_only_below, self.total) else {
            return;
        };
        let estimate = self.measured / self.count as f64 * total as f64;
        if estimate >= below.as_secs_f64() {
            self.start = Some(self.clock.now());
        }
    }

    /// The sample's figures, for results of type `R`; `complete` when it ran the whole input.
    pub(crate) fn finish<R>(mut self, complete: bool) -> Sample {
        self.close();
        // Without a CPU-timed span the CPU figures are the neutral ones (CPU-bound, single
        // threaded): the workload was too small for them to matter.
        let cpu_skipped = self.start.is_none();
        let total = match self.start {
            Some(start) => self.clock.now() - start,
            None => Reading::default(),
        };
        let count = self.count;
        let measured = self.measured;
        let mean = if count == 0 {
            0.0
        } else {
            measured / count as f64
        };
        let cv = crate::stats::batch_cv(&self.reliable_batches(), mean);
        // CPU figures come from the span of the whole sample (the CPU clocks are system calls,
        // too costly to read around every item); the sampler's own work in that span is CPU
        // time too, which leans the figure towards CPU-bound, the side that never
        // oversubscribes the cores. A thread that never blocked was not waiting, whatever the
        // gap between CPU and wall time (other processes preempting it on a busy machine).
        // Unknown figures read as CPU-bound single-threaded work.
        let cpu_fraction = if total.blocked > 0 && total.wall > 0.0 && total.thread_cpu > 0.0 {
            (total.thread_cpu / total.wall).clamp(0.0, 1.0)
        } else {
            1.0
        };
        // Process CPU counts every thread of the process over the same span as the thread's,
        // so the sampler's own work cancels out; below the nested-parallelism ratio the
        // difference is taken for other threads of the process, not for the function, and so
        // it is over a span too short to tell them apart (see `MIN_NESTED_SPAN`).
        // The function's own CPU time must span it too: for waiting items (a sleep, I/O) the
        // thread's CPU is tiny, and a pool spinning down after the previous run would read as
        // tens of CPUs per call.
        let ratio = if total.thread_cpu >= MIN_NESTED_SPAN && total.wall >= MIN_NESTED_SPAN {
            total.process_cpu / total.thread_cpu
        } else {
            1.0
        };
        let self_parallelism = if ratio >= NESTED_PARALLELISM_RATIO {
            ratio
        } else {
            1.0
        };
        let memory = self.memory.as_ref().and_then(MemoryTally::figures);
        Sample {
            count,
            item_time: mean,
            cv,
            cpu_fraction,
            self_parallelism,
            result_bytes: (std::mem::size_of::<R>() as u64)
                .saturating_add(memory.map_or(0, |m| m.retained)),
            memory,
            measured,
            complete,
            cpu_skipped,
        }
    }

    /// The shortest batch timed reliably: [`BATCH_OVER_OVERHEAD`] clock overheads, at least
    /// [`MIN_BATCH_TIME`].
    fn batch_floor(&self) -> Seconds {
        (BATCH_OVER_OVERHEAD * self.overhead).max(MIN_BATCH_TIME)
    }

    /// The batches long enough to time reliably, the only ones the spread counts: with fewer
    /// than two of them (items far below the clock's resolution, a sample cut short) the spread
    /// cannot be told from the clock's jitter and reads as 0 ([`crate::stats::batch_cv`]).
    fn reliable_batches(&self) -> Vec<(Seconds, usize)> {
        let floor = self.batch_floor();
        self.batches
            .iter()
            .copied()
            .filter(|(net, _)| *net >= floor)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{Meter, MIN_BATCH_TIME};
    use crate::sample::{Clock, Reading, SampleBounds};

    /// A clock that never moves: the batches' sizes follow from the seed alone.
    struct Still;

    impl Clock for Still {
        fn now(&self) -> Reading {
            Reading::default()
        }
    }

    fn seeded(items: usize, elapsed: f64) -> usize {
        let bounds = SampleBounds::default();
        let mut meter = Meter::with_item_overhead(&Still, &bounds, 100_000, 0.0, Some(1 << 20));
        meter.seed(items, elapsed);
        meter.next_block()
    }

    #[test]
    fn a_seed_of_items_too_short_to_time_alone_starts_the_batches_at_a_timeable_size() {
        // 1000 items in 10 µs: 10 ns each, a hundredth of the shortest batch timed well.
        let block = seeded(1000, 1000.0 * 10e-9);
        assert!((100..=101).contains(&block), "{block}");
        // Items that fill the shortest batch alone are still timed one by one.
        assert_eq!(seeded(3, 3.0 * MIN_BATCH_TIME), 1);
        // A seed too short to time as a whole: the batches double from its size.
        assert_eq!(seeded(8, MIN_BATCH_TIME / 2.0), 16);
    }
}
