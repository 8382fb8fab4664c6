//! Streams: a lazy parallel map over an iterator, with memory bounded by the items in flight.
//!
//! The thread that pulls from the [`Stream`] does all the bookkeeping: it pulls input items,
//! hands chunks of them to the pool (one rayon job per chunk), receives each chunk's results
//! on one channel, puts them in order, adapts the chunk size and reports progress. The only
//! state shared with the workers is that channel and a stop flag, so the synchronization is a
//! channel and a flag:
//!
//! - every dispatched chunk sends exactly one message, whatever happens to it (results, a
//!   panic, or "stopped");
//! - the puller counts chunks dispatched minus messages received (`outstanding`); when the
//!   stream is dropped it sets the stop flag, and receives until `outstanding` is 0. Workers
//!   check the flag before each item, so this takes at most one item's time per worker, and
//!   afterwards no job of the stream is left running.

use super::adapt::Adapter;
use super::check::{Meter, Phase, Shed, CHECK_CHUNKS};
use super::pool::{self, Pool};
use super::progress::Reporter;
use crate::model::shed::{judge, Verdict};
use crate::report::RunReport;
use crate::{plan, sample, Error, Options, Plan};
use crossbeam_channel::{Receiver, Sender};
use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The longest predicted duration of one chunk of a stream. A stream sizes its chunks by
/// time, not by the input's length (which may be unknown or unbounded), so that its memory
/// (about [`CHUNKS_AHEAD`] chunks per worker) does not grow with the input. Handing out a
/// chunk costs a few µs on threads, so 5 ms keeps that cost near 0.1 % of the work.
pub const STREAM_CHUNK_TIME_MAX: Duration = Duration::from_millis(5);

/// The most items in one chunk of a stream, whatever the prediction: for items so cheap that
/// [`STREAM_CHUNK_TIME_MAX`] holds more, this bounds the memory held (64 Ki items; below about
/// 75 ns per item, where this binds, a chunk still takes several times its dispatch cost).
pub const STREAM_CHUNK_ITEMS_MAX: usize = 1 << 16;

/// Chunks per worker a stream keeps in flight by default: one running and the rest queued, so
/// that the workers keep busy while the pulling thread is away (busy with the results, or
/// descheduled on a loaded machine).
pub const CHUNKS_AHEAD: usize = 4;

/// The input length a stream plans for when its iterator gives no upper bound: a stand-in
/// (reported in [`RunReport::assumed_items`]). It decides whether the work is large enough to
/// be worth parallel workers; it is also the longest input a stream plans its chunk size for,
/// so that a longer input holds no more memory (chunks are bounded by
/// [`STREAM_CHUNK_TIME_MAX`] too).
pub const UNKNOWN_LENGTH_ITEMS: usize = 1 << 20;

/// How long a serial stream runs before it plans again. A plan rests on what was measured
/// when it was made, the load of other programs included; a long stream outlives that load,
/// so a serial one asks again now and then, and turns parallel when that now pays. Planning
/// takes well under a millisecond, so this costs under 1 % of the stream's time.
pub const STREAM_REPLAN_EVERY: Duration = Duration::from_millis(100);

/// The most items a serial stream runs between two readings of the clock (for
/// [`STREAM_REPLAN_EVERY`]): reading it per item would cost as much as a tiny item (~20 ns).
const CLOCK_EVERY_ITEMS: u32 = 1024;

/// The predicted time between two readings of the clock in a serial stream, when its items
/// are slow enough to need fewer than [`CLOCK_EVERY_ITEMS`] for it.
const CLOCK_EVERY: Duration = Duration::from_millis(1);

/// Items between two readings of the clock in a serial stream whose items are predicted to
/// take `item` each.
fn clock_every(item: Option<Duration>) -> u32 {
    let most = CLOCK_EVERY_ITEMS as usize;
    u32::try_from(items_within(CLOCK_EVERY, item, most)).unwrap_or(CLOCK_EVERY_ITEMS)
}

/// How many items predicted to take `item` each fit in `time`: between 1 and `most`, and
/// `most` when the item time is unknown or zero.
fn items_within(time: Duration, item: Option<Duration>, most: usize) -> usize {
    match item {
        Some(item) if !item.is_zero() => {
            let items = time.as_secs_f64() / item.as_secs_f64();
            items.clamp(1.0, most as f64) as usize
        }
        _ => most,
    }
}

/// Maps `f` over `items` in parallel, lazily: results come out as an iterator, in input order
/// (or in completion order after [`Stream::unordered`]), while at most about
/// [`CHUNKS_AHEAD`] chunks per worker are held at once. The input is pulled only as results
/// are taken (the first items for the sample, and a parallel stream's chunks ahead), so it may
/// be unbounded.
///
/// This is [`Options::stream`] with the default options.
///
/// The plan is made on the first [`next`](Iterator::next), from a sample of the first items;
/// a stream planned serial (on a loaded machine, say) plans again every
/// [`STREAM_REPLAN_EVERY`] and turns parallel once that pays.
///
/// # Examples
///
/// ```
/// // An unbounded input: only what is taken is computed (and the sample's items).
/// let firsts: Vec<u64> = amorsize::stream(1u64.., |x| x * x).take(5).collect();
/// assert_eq!(firsts, [1, 4, 9, 16, 25]);
/// ```
///
/// # Panics
///
/// When `f` panics on an item, the stream stops its workers, and the next call of
/// [`next`](Iterator::next) panics with a message naming the item's index.
pub fn stream<I, R, F>(items: I, f: F) -> Stream<I::IntoIter, R, F>
where
    I: IntoIterator,
    I::Item: Send + 'static,
    R: Send + 'static,
    F: Fn(&I::Item) -> R + Send + Sync + 'static,
{
    Options::default().stream(items, f)
}

impl Options {
    /// [`stream`] with these options ([`Options::in_flight`] bounds the items held).
    pub fn stream<I, R, F>(&self, items: I, f: F) -> Stream<I::IntoIter, R, F>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        R: Send + 'static,
        F: Fn(&I::Item) -> R + Send + Sync + 'static,
    {
        Stream {
            ready: Vec::new().into_iter(),
            ordered: true,
            options: self.clone(),
            state: State::Start(items.into_iter(), f),
        }
    }
}

/// The iterator [`stream`] returns. Dropping it stops its workers promptly (each finishes at
/// most the item it is on) and waits for them.
pub struct Stream<I: Iterator, R, F> {
    /// Results computed and not yet taken, in order: the sample's, then a parallel stream's
    /// chunks one by one.
    ready: std::vec::IntoIter<R>,
    ordered: bool,
    options: Options,
    state: State<I, R, F>,
}

enum State<I: Iterator, R, F> {
    /// Nothing pulled yet: planning happens on the first `next`.
    Start(I, F),
    Serial(Box<Serial<I, R, F>>),
    Parallel(Box<Engine<I, R, F>>),
    /// The input is exhausted (with the final report), or planning failed.
    Finished(Option<Box<RunReport>>),
}

impl<I: Iterator, R, F> Stream<I, R, F>
where
    I::Item: Send + 'static,
    R: Send + 'static,
    F: Fn(&I::Item) -> R + Send + Sync + 'static,
{
    /// Yields results as their chunks complete rather than in input order.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut out: Vec<u32> = amorsize::stream(0..100u32, |x| x + 1).unordered().collect();
    /// out.sort();
    /// assert_eq!(out, (1..=100).collect::<Vec<_>>());
    /// ```
    pub fn unordered(mut self) -> Self {
        self.ordered = false;
        self
    }

    /// The plan the stream runs, once the first item has been pulled.
    pub fn plan(&self) -> Option<&Plan> {
        match &self.state {
            State::Serial(s) => Some(s.plan(&self.options)),
            State::Parallel(e) => Some(&e.plan),
            State::Start(..) | State::Finished(_) => None,
        }
    }

    /// What the stream has measured so far (`items` counts the items whose results are
    /// computed), or in all once it is finished; `None` before the first item is pulled.
    pub fn report(&self) -> Option<RunReport> {
        match &self.state {
            State::Serial(s) => Some(s.report(&self.options)),
            State::Parallel(e) => Some(e.report()),
            State::Finished(report) => report.as_deref().cloned(),
            State::Start(..) => None,
        }
    }

    /// Everything but handing out a result already computed and computing a serial
    /// stream's next item: starting, reading the clock, receiving a parallel stream's next
    /// chunk, the end.
    #[inline(never)]
    fn next_slow(&mut self) -> Option<R> {
        if let State::Start(..) = self.state {
            self.begin();
        }
        loop {
            if let Some(r) = self.ready.next() {
                return Some(r);
            }
            match &mut self.state {
                State::Serial(s) if s.exhausted => return None,
                State::Serial(s) => {
                    if s.computes_next() || !s.due() {
                        return s.compute();
                    }
                    // Between two items: nothing computed is held back.
                    self.replan();
                }
                State::Parallel(e) => match e.next_batch() {
                    Next::Batch(batch) => self.ready = batch.into_iter(),
                    Next::Shed => self.go_serial(),
                    Next::End => {
                        // Drops the engine: nothing is left in flight once it has no batch
                        // left. A serial stream stays as it is, so that its plan is built
                        // only if asked for.
                        self.state = State::Finished(self.report().map(Box::new));
                        return None;
                    }
                },
                State::Start(..) | State::Finished(_) => return None,
            }
        }
    }

    fn begin(&mut self) {
        let State::Start(mut iter, f) = std::mem::replace(&mut self.state, State::Finished(None))
        else {
            return;
        };
        let len = match iter.size_hint() {
            (lower, Some(upper)) if lower == upper => Some(lower),
            _ => None,
        };
        // A glance at the first items settles the smallest streams serial at once; otherwise
        // the sample goes on from them.
        let glanced =
            plan::quick::look_iter(&mut iter, &f, &self.options, len).and_then(|(prefix, look)| {
                match look {
                    plan::quick::Look::Serial(glance, proof) => {
                        // Settled only for a known length (`look_iter`).
                        let n = len.unwrap_or(prefix.len());
                        Ok((plan::settled_sample(n, glance), Some((n, proof)), None))
                    }
                    plan::quick::Look::Plan(glance) => {
                        let bounds = plan::sample_bounds(&self.options);
                        let known = len.map(|n| (n, glance.item_time()));
                        sample::sample_iter_after(&mut iter, &f, &bounds, len, prefix, glance)
                            .map(|(_, sampled)| (sampled, None, known))
                    }
                }
            });
        // Settled by the glance: the length and the proof. Sampled, for an input that tells its
        // length: the length and the glance's time per item, to note the decision with.
        let (sampled, settled, known) = match glanced {
            Ok(found) => found,
            Err(e) => panic!("{e}"),
        };
        let k = sampled.results.len();
        let (lower, upper) = iter.size_hint();
        let assumed = upper.is_none().then_some(lower.max(UNKNOWN_LENGTH_ITEMS));
        let length = k.saturating_add(upper.unwrap_or(lower.max(UNKNOWN_LENGTH_ITEMS)));
        let total = (Some(lower) == upper).then(|| k.saturating_add(lower));
        let nested = pool::nested();
        self.ready = sampled
            .results
            .into_iter()
            .map(|(_, r)| r)
            .collect::<Vec<R>>()
            .into_iter();
        let Some(plan) = (match settled {
            Some(_) => None,
            None => Some(plan::plan_stream(
                &sampled.figures,
                length.saturating_sub(k),
                &self.options,
                &f,
                known,
            )),
        }) else {
            // Settled serial by the glance: the plan is built only if asked for.
            self.state = State::Serial(Box::new(Serial::new(
                iter,
                Arc::new(f),
                k,
                OnceLock::new(),
                settled,
                sampled.figures,
                nested,
                total,
                assumed,
            )));
            return;
        };
        let pool = if plan.is_parallel() && plan.workers().get() > 1 && !nested {
            pool::pool(plan.workers().get()).ok()
        } else {
            None
        };
        self.state = match pool {
            Some(pool) => State::Parallel(Box::new(Engine::new(
                iter,
                Arc::new(f),
                stream_chunk(&plan, &sampled.figures, length - k, &self.options),
                plan,
                pool,
                Resume {
                    sampled: k,
                    index: k,
                    start: Instant::now(),
                    busy: Duration::ZERO,
                    phases: Vec::new(),
                    sheds: Vec::new(),
                    replan_every: STREAM_REPLAN_EVERY,
                    figures: sampled.figures.clone(),
                },
                total,
                assumed,
                self.ordered,
                &self.options,
            ))),
            None => State::Serial(Box::new(Serial::new(
                iter,
                Arc::new(f),
                k,
                OnceLock::from(plan),
                None,
                sampled.figures,
                nested,
                total,
                assumed,
            ))),
        };
    }

    /// Plans a serial stream again for the items left (see [`STREAM_REPLAN_EVERY`]), and
    /// turns it parallel when the plan now says so.
    #[inline(never)]
    fn replan(&mut self) {
        let State::Serial(s) = &mut self.state else {
            return;
        };
        s.planned = Instant::now();
        let rest = match s.total {
            Some(total) => total.saturating_sub(s.index),
            None => s.assumed.unwrap_or(UNKNOWN_LENGTH_ITEMS),
        };
        let plan = plan::plan_sample(&s.figures, rest, &self.options);
        self.go_parallel(plan);
    }

    /// Hands a serial stream, whose sampled prefix is all taken, over to `plan`'s workers
    /// (when `plan` is parallel and its pool can be had): the rest of the input goes to them.
    fn go_parallel(&mut self, plan: Plan) {
        let State::Serial(s) = &self.state else {
            return;
        };
        if !plan.is_parallel() || plan.workers().get() < 2 || s.nested || s.exhausted {
            return;
        }
        let Ok(pool) = pool::pool(plan.workers().get()) else {
            return;
        };
        let rest = match s.total {
            Some(total) => total.saturating_sub(s.index),
            None => s.assumed.unwrap_or(UNKNOWN_LENGTH_ITEMS),
        };
        let chunk = stream_chunk(&plan, &s.figures, rest, &self.options);
        let State::Serial(s) = std::mem::replace(&mut self.state, State::Finished(None)) else {
            return;
        };
        // The sample's results not yet taken stay in `ready` and come out first.
        let mut phases = s.phases;
        let before: usize = phases.iter().map(|p| p.items).sum();
        phases.push(Phase::new(
            1,
            (s.index - s.sampled).saturating_sub(before),
            s.start.elapsed().saturating_sub(s.started_at),
        ));
        let resume = Resume {
            sampled: s.sampled,
            index: s.index,
            start: s.start,
            busy: s.start.elapsed(),
            phases,
            sheds: s.sheds,
            replan_every: s.replan_every,
            figures: s.figures,
        };
        self.state = State::Parallel(Box::new(Engine::new(
            s.iter,
            s.f,
            chunk,
            plan,
            pool,
            resume,
            s.total,
            s.assumed,
            self.ordered,
            &self.options,
        )));
    }
}

impl<I: Iterator, R, F> Stream<I, R, F>
where
    F: Fn(&I::Item) -> R,
{
    /// Hands a parallel stream whose workers did not pay back to the pulling thread, once
    /// every chunk it handed out has come back and been taken: the rest of the input runs
    /// serially, and the stream plans again only after a longer wait than before (a back-off,
    /// so that a machine that frees up is still noticed).
    fn go_serial(&mut self) {
        let State::Parallel(mut e) = std::mem::replace(&mut self.state, State::Finished(None))
        else {
            return;
        };
        let Some(iter) = e.iter.take() else {
            return;
        };
        let wall = e.start.elapsed();
        let mut phases = std::mem::take(&mut e.phases);
        let before: usize = phases.iter().map(|p| p.items).sum();
        phases.push(Phase::new(
            e.plan.workers().get(),
            (e.computed - e.sampled).saturating_sub(before),
            wall.saturating_sub(phases.iter().map(|p| p.wall).sum()),
        ));
        let mut serial = Serial::new(
            iter,
            Arc::clone(&e.f),
            e.sampled,
            OnceLock::from(e.plan.clone()),
            None,
            e.figures.clone(),
            false,
            e.total,
            e.assumed,
        );
        serial.index = e.computed;
        serial.check_at = serial.index.saturating_add(serial.clock_every);
        serial.start = e.start;
        serial.started_at = wall;
        serial.phases = phases;
        serial.sheds = std::mem::take(&mut e.sheds);
        serial.replan_every = e.replan_every.saturating_mul(SHED_BACKOFF);
        serial.reporter = e.reporter.take();
        self.state = State::Serial(Box::new(serial));
    }
}

/// How much longer a stream that shed its workers waits before it plans again than it waited
/// before: 8 times ([`STREAM_REPLAN_EVERY`], then 0.8 s, 6.4 s, …), so that work that does
/// not pay in parallel spends at most a small share of its time finding it out again.
const SHED_BACKOFF: u32 = 8;

impl<I: Iterator, R, F> Iterator for Stream<I, R, F>
where
    I::Item: Send + 'static,
    R: Send + 'static,
    F: Fn(&I::Item) -> R + Send + Sync + 'static,
{
    type Item = R;

    #[inline]
    fn next(&mut self) -> Option<R> {
        // The path of almost every item, kept small: the rest of the machinery (planning,
        // the parallel engine) has a large stack frame, which costs every call that enters
        // it several ns.
        if let Some(r) = self.ready.next() {
            return Some(r);
        }
        if let State::Serial(s) = &mut self.state {
            if s.computes_next() {
                return s.compute();
            }
        }
        self.next_slow()
    }

    /// `for_each`, `sum`, `count` and the other consumers that fold: a serial stream's items
    /// are computed in a loop of its own between two readings of the clock, with one catch
    /// of a panic per stretch rather than a call of `next` per item.
    fn fold<B, G>(mut self, init: B, mut g: G) -> B
    where
        G: FnMut(B, R) -> B,
    {
        let mut acc = init;
        loop {
            acc = self.ready.by_ref().fold(acc, &mut g);
            if let State::Serial(s) = &mut self.state {
                if s.computes_next() {
                    acc = s.fold_stretch(acc, &mut g);
                    continue;
                }
            }
            match self.next_slow() {
                Some(r) => acc = g(acc, r),
                None => return acc,
            }
        }
    }

    /// Every input item gives one result, so before the workers start the bounds are the
    /// input's (with the sample's results still to hand out); a collecting caller then
    /// allocates once. Once parallel, items in flight are not counted: no bound is claimed.
    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.state {
            State::Start(iter, _) => iter.size_hint(),
            State::Serial(s) if s.exhausted => (self.ready.len(), Some(self.ready.len())),
            State::Serial(s) => {
                let (lower, upper) = s.iter.size_hint();
                let held = self.ready.len();
                (
                    lower.saturating_add(held),
                    upper.and_then(|u| u.checked_add(held)),
                )
            }
            State::Parallel(_) => (self.ready.len(), None),
            State::Finished(_) => (self.ready.len(), Some(self.ready.len())),
        }
    }
}

impl<I: Iterator, R, F> fmt::Debug for Stream<I, R, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Start(..) => "not started",
            State::Serial(s) if s.exhausted && self.ready.len() == 0 => "finished (serial)",
            State::Serial(_) => "serial",
            State::Parallel(_) => "parallel",
            State::Finished(_) => "finished",
        };
        f.debug_struct("Stream")
            .field("ordered", &self.ordered)
            .field("state", &state)
            .finish()
    }
}

/// The chunk size a parallel stream starts with: the plan's, within [`STREAM_CHUNK_TIME_MAX`]
/// and [`STREAM_CHUNK_ITEMS_MAX`], and for an input longer than [`UNKNOWN_LENGTH_ITEMS`] the
/// one planned for that many items.
///
/// The planner makes chunks longer for longer inputs (fewer dispatches, with the tail still
/// short beside the whole), and a stream holds [`CHUNKS_AHEAD`] chunks per worker: planned
/// for the whole length, the memory of a stream over 10M items would exceed that of one over
/// 1M. Chunks planned for 1M items already cost a negligible share of dispatch (items of 1 µs
/// get chunks of about 1 ms, against a few µs to hand one out), so beyond that length the
/// memory stays what it is at that length.
fn stream_chunk(
    plan: &Plan,
    figures: &sample::Sample,
    rest: usize,
    options: &Options,
) -> NonZeroUsize {
    let mut chunk = plan.chunk_size();
    if rest > UNKNOWN_LENGTH_ITEMS {
        let planned = plan::plan_sample(figures, UNKNOWN_LENGTH_ITEMS, options).chunk_size();
        chunk = chunk.min(planned);
    }
    let mut chunk = chunk.get().min(STREAM_CHUNK_ITEMS_MAX);
    if let Some(item) = plan.item_time().filter(|t| !t.is_zero()) {
        let most = (STREAM_CHUNK_TIME_MAX.as_secs_f64() / item.as_secs_f64()).max(1.0);
        chunk = chunk.min(most as usize);
    }
    NonZeroUsize::new(chunk).unwrap_or(NonZeroUsize::MIN)
}

/// A serial stream: the lazy map itself, on the pulling thread, an item per `next`.
struct Serial<I, R, F> {
    iter: I,
    f: Arc<F>,
    sampled: usize,
    /// The input index of the next item to compute.
    index: usize,
    /// `next` computes items itself while `index` is below this; at it, the stream's slow path
    /// reads the clock (to plan again, see [`STREAM_REPLAN_EVERY`]). 0 once the input has
    /// ended.
    check_at: usize,
    /// The input has ended (it is not asked again: an iterator may go on after `None`).
    exhausted: bool,
    /// How long the stream took to compute its last item, once the input has ended.
    took: Option<Duration>,
    plan: OnceLock<Plan>,
    /// For a stream the glance settled: its length and the proof, to build the plan from when
    /// it is asked for.
    settled: Option<(usize, plan::quick::Proof)>,
    /// The sample's figures, to plan again with.
    figures: sample::Sample,
    nested: bool,
    total: Option<usize>,
    assumed: Option<usize>,
    start: Instant,
    /// When the stream was last planned.
    planned: Instant,
    /// How long it runs before it plans again: [`STREAM_REPLAN_EVERY`], longer after a shed.
    replan_every: Duration,
    /// Phases and sheds before this serial stretch (a parallel one that shed its workers).
    phases: Vec<Phase>,
    sheds: Vec<Shed>,
    /// When this serial stretch began, since `start`.
    started_at: Duration,
    /// Progress, for a serial stretch after a shed of a stream with a progress callback:
    /// reported at each reading of the clock and at the end.
    reporter: Option<Reporter>,
    /// Items between two readings of the clock.
    clock_every: usize,
    /// The type of the results, which `f` gives.
    results: PhantomData<fn() -> R>,
}

impl<I: Iterator, R, F: Fn(&I::Item) -> R> Serial<I, R, F> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        iter: I,
        f: Arc<F>,
        sampled: usize,
        plan: OnceLock<Plan>,
        settled: Option<(usize, plan::quick::Proof)>,
        figures: sample::Sample,
        nested: bool,
        total: Option<usize>,
        assumed: Option<usize>,
    ) -> Self {
        let item = Duration::try_from_secs_f64(figures.item_time).ok();
        let now = Instant::now();
        let clock_every = clock_every(item) as usize;
        Serial {
            iter,
            f,
            sampled,
            index: sampled,
            check_at: sampled.saturating_add(clock_every),
            exhausted: false,
            took: None,
            plan,
            settled,
            figures,
            nested,
            total,
            assumed,
            start: now,
            planned: now,
            replan_every: STREAM_REPLAN_EVERY,
            phases: Vec::new(),
            sheds: Vec::new(),
            started_at: Duration::ZERO,
            reporter: None,
            clock_every,
            results: PhantomData,
        }
    }

    /// What the stream has measured so far, or in all once its input has ended.
    fn report(&self, options: &Options) -> RunReport {
        let wall = self.took.unwrap_or_else(|| self.start.elapsed());
        let mut phases = self.phases.clone();
        let before: usize = phases.iter().map(|p| p.items).sum();
        phases.push(Phase::new(
            1,
            (self.index - self.sampled).saturating_sub(before),
            wall.saturating_sub(self.started_at),
        ));
        RunReport {
            plan: self.plan(options).clone(),
            items: self.index,
            reused_from_sample: self.sampled,
            workers: 1,
            chunks: 0,
            wall,
            busy: wall,
            nested: self.nested,
            adjustments: Vec::new(),
            assumed_items: self.assumed,
            phases,
            sheds: self.sheds.clone(),
        }
    }

    /// The plan the stream runs: built now when the glance settled it and nobody asked yet.
    fn plan(&self, options: &Options) -> &Plan {
        self.plan.get_or_init(|| match self.settled {
            Some((n, proof)) => plan::settled_plan(n, &self.figures, proof, options),
            // Not reached: a stream the glance did not settle starts with its plan.
            None => plan::plan_sample(&self.figures, self.index, options),
        })
    }

    /// Tells the progress callback, if any, of the items computed since it last heard.
    fn report_progress(&mut self) {
        if let Some(r) = self.reporter.as_mut() {
            let done = r.done();
            if self.index > done {
                r.add(self.index - done);
            }
        }
    }

    /// Whether the next item is computed by `next` itself, without the slow path.
    #[inline]
    fn computes_next(&self) -> bool {
        self.index < self.check_at
    }

    /// Reads the clock (the slow path's part, every [`Serial::clock_every`] items): whether
    /// it is time to plan again, [`STREAM_REPLAN_EVERY`] after the last plan. Never for a
    /// nested stream, which runs serially whatever the plan.
    fn due(&mut self) -> bool {
        self.check_at = self.index.saturating_add(self.clock_every);
        self.report_progress();
        !self.nested && self.planned.elapsed() >= self.replan_every
    }

    /// Computes the next item; `None` at the end of the input. A panic of `f` is raised
    /// with the item's index; one of the input iterator, as it was.
    ///
    /// One item at a time, in the caller's loop: whatever the caller does with a result
    /// (`collect` writes it) overlaps with computing the next one. Computing a batch ahead
    /// instead would hand each result out in a second pass, which for items of a few ns
    /// costs about as much as the items.
    #[inline]
    fn compute(&mut self) -> Option<R> {
        let Some(item) = self.iter.next() else {
            return self.end();
        };
        let index = self.index;
        self.index += 1;
        match catch_unwind(AssertUnwindSafe(|| (*self.f)(&item))) {
            Ok(r) => Some(r),
            Err(payload) => raise(index, payload),
        }
    }

    /// Folds the results of the items up to the next reading of the clock (or the input's
    /// end) into `acc` with `g`. A panic of `f` is raised with its item's index; one of the
    /// input iterator or of `g`, as it was.
    fn fold_stretch<B, G>(&mut self, acc: B, g: &mut G) -> B
    where
        G: FnMut(B, R) -> B,
    {
        let stretch = self.check_at - self.index;
        let (iter, f) = (&mut self.iter, &*self.f);
        // Items pulled from the input, and those `f` returned from: on a panic, whether it
        // is `f`'s.
        let (mut pulled, mut computed) = (0usize, 0usize);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let mut acc = acc;
            for item in iter.by_ref().take(stretch) {
                pulled += 1;
                let r = f(&item);
                computed += 1;
                acc = g(acc, r);
            }
            acc
        }));
        self.index += pulled;
        match outcome {
            Ok(acc) => {
                if pulled < stretch {
                    self.end();
                }
                acc
            }
            Err(payload) if computed < pulled => raise(self.index - 1, payload),
            Err(payload) => std::panic::resume_unwind(payload),
        }
    }

    #[cold]
    #[inline(never)]
    fn end(&mut self) -> Option<R> {
        self.report_progress();
        self.exhausted = true;
        self.check_at = 0;
        self.took = Some(self.start.elapsed());
        None
    }
}

/// Raises the panic of `f` on the item with input index `index`.
#[cold]
#[inline(never)]
fn raise(index: usize, payload: Box<dyn Any + Send>) -> ! {
    panic!("{}", Error::panicked(index, payload.as_ref()))
}

/// Where a parallel stream takes over: after the sampled prefix, or after a serial stretch
/// (see [`STREAM_REPLAN_EVERY`]).
struct Resume {
    /// Results reused from the sample.
    sampled: usize,
    /// The input index of the first item the workers get (items before it are done).
    index: usize,
    /// When the stream started running.
    start: Instant,
    /// Time spent computing before the workers take over.
    busy: Duration,
    /// Phases before the workers take over (a serial stretch after a shed), and the sheds.
    phases: Vec<Phase>,
    sheds: Vec<Shed>,
    /// How long a serial stretch waits before it plans again.
    replan_every: Duration,
    /// The sample's figures, to plan again with.
    figures: sample::Sample,
}

/// What [`Engine::next_batch`] gives.
enum Next<R> {
    /// The next results.
    Batch(Vec<R>),
    /// The workers did not pay: every chunk handed out is back and taken, and the rest of the
    /// input is for the pulling thread ([`Stream::go_serial`]).
    Shed,
    /// The input is done.
    End,
}

/// How a dispatched chunk ended.
enum Outcome<R> {
    Done(Vec<R>),
    /// The stop flag was seen: the stream is being dropped.
    Stopped,
    /// The function panicked on the item with this input index.
    Panicked(usize, Box<dyn Any + Send>),
}

/// The one message each dispatched chunk sends back.
struct Message<R> {
    seq: u64,
    outcome: Outcome<R>,
    took: Duration,
}

/// A parallel stream's bookkeeping, all on the pulling thread.
struct Engine<I: Iterator, R, F> {
    iter: Option<I>,
    f: Arc<F>,
    pool: Pool,
    plan: Plan,
    ordered: bool,
    tx: Sender<Message<R>>,
    rx: Receiver<Message<R>>,
    stop: Arc<AtomicBool>,
    chunk: usize,
    /// The chunk size planned at the start: the in-flight bound keeps room for
    /// [`CHUNKS_AHEAD`] chunks of it per worker even after adaptation shrinks the chunks.
    first_chunk: usize,
    /// The input's length, when its iterator tells it exactly.
    total: Option<usize>,
    /// The bound on `in_flight` set by the caller (items or bytes), if any.
    limit: Option<usize>,
    /// Items dispatched whose results have not yet been handed to the stream.
    in_flight: usize,
    /// Chunks dispatched whose message has not been received.
    outstanding: usize,
    next_seq: u64,
    next_index: usize,
    next_out: u64,
    arrived: BTreeMap<u64, Vec<R>>,
    adapter: Option<Adapter>,
    reporter: Option<Reporter>,
    sampled: usize,
    computed: usize,
    chunks: usize,
    busy: Duration,
    start: Instant,
    assumed: Option<usize>,
    figures: sample::Sample,
    /// Phases and sheds before this parallel stretch, and this stretch's own shed.
    phases: Vec<Phase>,
    sheds: Vec<Shed>,
    replan_every: Duration,
    /// The closed loop's windows, and the chunks received in this parallel stretch.
    meter: Meter,
    stretch_chunks: usize,
    /// The check shed the workers: nothing more is handed out.
    draining: bool,
    /// Whether the closed loop may shed the workers ([`Options::shed_workers`]).
    shed: bool,
    /// When this parallel stretch began, since `start`.
    began: Duration,
}

impl<I, R, F> Engine<I, R, F>
where
    I: Iterator,
    I::Item: Send + 'static,
    R: Send + 'static,
    F: Fn(&I::Item) -> R + Send + Sync + 'static,
{
    #[allow(clippy::too_many_arguments)]
    fn new(
        iter: I,
        f: Arc<F>,
        chunk: NonZeroUsize,
        plan: Plan,
        pool: Pool,
        resume: Resume,
        total: Option<usize>,
        assumed: Option<usize>,
        ordered: bool,
        options: &Options,
    ) -> Self {
        let adapter = if options.exec.adapt && options.chunk.is_none() {
            // Growing the chunk beyond the item bound would grow the memory held with it.
            let most = NonZeroUsize::new(STREAM_CHUNK_ITEMS_MAX).unwrap_or(NonZeroUsize::MIN);
            Adapter::new(plan.item_time(), chunk).map(|a| a.at_most(most))
        } else {
            None
        };
        let reporter = options
            .exec
            .progress
            .as_ref()
            .map(|p| Reporter::new(p, resume.index, total));
        let (tx, rx) = crossbeam_channel::unbounded();
        let limit = super::budget::in_flight_limit(options, &plan, size_of::<I::Item>());
        Engine {
            iter: Some(iter),
            f,
            pool,
            plan,
            ordered,
            tx,
            rx,
            stop: Arc::new(AtomicBool::new(false)),
            chunk: chunk.get(),
            first_chunk: chunk.get(),
            total,
            limit,
            in_flight: 0,
            outstanding: 0,
            next_seq: 0,
            next_index: resume.index,
            next_out: 0,
            arrived: BTreeMap::new(),
            adapter,
            reporter,
            sampled: resume.sampled,
            computed: resume.index,
            chunks: 0,
            busy: resume.busy,
            began: resume.start.elapsed(),
            start: resume.start,
            assumed,
            figures: resume.figures,
            phases: resume.phases,
            sheds: resume.sheds,
            replan_every: resume.replan_every,
            meter: Meter::new(Instant::now(), resume.index as u64),
            stretch_chunks: 0,
            draining: false,
            shed: options.exec.shed,
        }
    }

    /// The next chunk's results, in order (or as they arrive, unordered); `None` once the
    /// input is done and every chunk handed out.
    fn next_batch(&mut self) -> Next<R> {
        loop {
            self.dispatch();
            if let Some(results) = self.take_arrived() {
                self.in_flight -= results.len();
                return Next::Batch(results);
            }
            if self.outstanding == 0 {
                // `dispatch` sends a chunk whenever nothing is in flight, unless the workers
                // were shed: otherwise the input is done.
                return if self.draining && self.iter.is_some() {
                    Next::Shed
                } else {
                    Next::End
                };
            }
            let Some(message) = self.receive() else {
                return Next::End;
            };
            self.accept(message);
        }
    }

    /// The bound on items in flight: the caller's, or [`CHUNKS_AHEAD`] chunks per worker, of
    /// the current chunk size or the first one, whichever is larger.
    ///
    /// Adaptation shrinks the chunks when they take longer than predicted, which on a loaded
    /// machine is also what preemption looks like. Were the bound to shrink with them, the
    /// work queued ahead would then cover less time just when the pulling thread waits longer
    /// for a core, and the workers would run dry between its visits (or, in order, behind a
    /// preempted worker's chunk). So the items in flight keep the first plan's room.
    fn limit(&self) -> usize {
        let chunk = self.chunk.max(self.first_chunk);
        self.limit
            .unwrap_or_else(|| CHUNKS_AHEAD * self.plan.workers().get() * chunk)
    }

    /// Hands out chunks while the in-flight bound allows (always at least one when nothing is
    /// in flight, so that a bound below one chunk still makes progress).
    fn dispatch(&mut self) {
        if self.draining {
            return;
        }
        while self.in_flight == 0 || self.in_flight + self.chunk <= self.limit() {
            let Some(iter) = self.iter.as_mut() else {
                return;
            };
            let items: Vec<I::Item> = iter.by_ref().take(self.chunk).collect();
            if items.is_empty() {
                self.iter = None;
                return;
            }
            let len = items.len();
            let seq = self.next_seq;
            let first = self.next_index;
            let (f, tx, stop) = (Arc::clone(&self.f), self.tx.clone(), Arc::clone(&self.stop));
            self.pool.spawn(move || {
                let t0 = Instant::now();
                let outcome = run_chunk(&*f, &items, first, &stop);
                // The receiver lives until every dispatched chunk has reported (see `Drop`).
                let _ = tx.send(Message {
                    seq,
                    outcome,
                    took: t0.elapsed(),
                });
            });
            self.next_seq += 1;
            self.next_index += len;
            self.in_flight += len;
            self.outstanding += 1;
        }
    }

    /// The next results to hand out: the next chunk in order, or any arrived one when
    /// unordered.
    fn take_arrived(&mut self) -> Option<Vec<R>> {
        if self.ordered {
            let results = self.arrived.remove(&self.next_out)?;
            self.next_out += 1;
            Some(results)
        } else {
            self.arrived.pop_first().map(|(_, results)| results)
        }
    }

    fn accept(&mut self, message: Message<R>) {
        self.outstanding -= 1;
        match message.outcome {
            Outcome::Done(results) => {
                let len = results.len();
                self.chunks += 1;
                self.busy += message.took;
                self.computed += len;
                self.stretch_chunks += 1;
                if self.shed && !self.draining {
                    self.check();
                }
                if let Some(adapter) = self.adapter.as_mut() {
                    let workers = self.plan.workers().get();
                    let left = self.total.map(|t| t.saturating_sub(self.next_index));
                    if let Some(next) = adapter.observe(len, message.took, left, workers) {
                        self.chunk = next;
                    }
                }
                if let Some(reporter) = self.reporter.as_mut() {
                    reporter.add(len);
                }
                self.arrived.insert(message.seq, results);
            }
            // Only after the stop flag was set, which `next` never sees.
            Outcome::Stopped => {}
            Outcome::Panicked(index, payload) => {
                let error = Error::panicked(index, payload.as_ref());
                self.shut_down();
                panic!("{error}");
            }
        }
    }

    /// The closed loop ([`Meter`]): the workers' throughput together over a window against
    /// the serial rate of the sample; the first window ends once every worker could have
    /// finished [`CHECK_CHUNKS`] chunks. Below the serial rate, the stream stops handing out
    /// chunks and goes on serially once those in flight are back. A stream keeps all its
    /// workers or none: its chunks go to whichever thread of the pool is free.
    fn check(&mut self) {
        let workers = self.plan.workers();
        if (self.stretch_chunks as u64) < CHECK_CHUNKS * workers.get() as u64
            || !self.meter.may_be_due()
        {
            return;
        }
        // As a batch's check (`check::serial_item_high`): the slowest serial rate the sample
        // allows.
        let Some(serial) = super::check::serial_item_high(&self.plan) else {
            return;
        };
        let in_flight = self.next_index.saturating_sub(self.computed) as u64;
        let Some(throughput) = self.meter.read(self.computed as u64, in_flight, true) else {
            return;
        };
        let speedup = throughput * serial;
        if judge(workers, speedup, self.plan.predicted_speedup())
            == Verdict::Shed(NonZeroUsize::MIN)
        {
            self.draining = true;
            self.sheds.push(Shed {
                after_items: self.computed - self.sampled,
                at: self.start.elapsed(),
                from: workers.get(),
                to: 1,
                measured_speedup: speedup,
                predicted_speedup: self.plan.predicted_speedup(),
            });
        }
    }

    fn report(&self) -> RunReport {
        let wall = self.start.elapsed();
        let mut phases = self.phases.clone();
        let before: usize = phases.iter().map(|p| p.items).sum();
        phases.push(Phase::new(
            self.plan.workers().get(),
            (self.computed - self.sampled).saturating_sub(before),
            wall.saturating_sub(self.began),
        ));
        RunReport {
            phases,
            sheds: self.sheds.clone(),
            plan: self.plan.clone(),
            items: self.computed,
            reused_from_sample: self.sampled,
            workers: self.plan.workers().get(),
            chunks: self.chunks,
            wall,
            busy: self.busy,
            nested: false,
            adjustments: self
                .adapter
                .as_ref()
                .map(|a| a.adjustments().to_vec())
                .unwrap_or_default(),
            assumed_items: self.assumed,
        }
    }
}

impl<I: Iterator, R, F> Engine<I, R, F> {
    /// Waits for a chunk's message.
    fn receive(&self) -> Option<Message<R>> {
        if !pool::nested() {
            // `self.tx` is alive, so this returns only with a message.
            return self.rx.recv().ok();
        }
        // On a pool thread (a stream moved into a parallel job): blocking could starve the
        // very jobs awaited, so run pending pool work while waiting.
        loop {
            if let Ok(message) = self.rx.try_recv() {
                return Some(message);
            }
            if rayon::yield_now() != Some(rayon::Yield::Executed) {
                if let Ok(message) = self.rx.recv_timeout(Duration::from_millis(1)) {
                    return Some(message);
                }
            }
        }
    }

    /// Stops the workers and waits until every dispatched chunk has reported.
    fn shut_down(&mut self) {
        self.stop.store(true, Relaxed);
        self.iter = None;
        while self.outstanding > 0 {
            match self.receive() {
                Some(_) => self.outstanding -= 1,
                None => break,
            }
        }
        self.arrived.clear();
    }
}

impl<I: Iterator, R, F> Drop for Engine<I, R, F> {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Runs one chunk on a worker: `first` is the input index of `items[0]`.
fn run_chunk<T, R, F: Fn(&T) -> R>(
    f: &F,
    items: &[T],
    first: usize,
    stop: &AtomicBool,
) -> Outcome<R> {
    let mut out = Vec::with_capacity(items.len());
    let mut current = first;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        for (i, item) in items.iter().enumerate() {
            if stop.load(Relaxed) {
                return false;
            }
            current = first + i;
            out.push(f(item));
        }
        true
    }));
    match outcome {
        Ok(true) => Outcome::Done(out),
        Ok(false) => Outcome::Stopped,
        Err(payload) => Outcome::Panicked(current, payload),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nz(n: usize) -> NonZeroUsize {
        NonZeroUsize::new(n).unwrap()
    }

    /// A stream planned serial (one worker at most), so that the test decides when it turns
    /// parallel.
    fn serial_stream<F>(n: u64, f: F) -> Stream<std::ops::Range<u64>, u64, F>
    where
        F: Fn(&u64) -> u64 + Send + Sync + 'static,
    {
        Options::new().max_workers(nz(1)).stream(0..n, f)
    }

    #[test]
    fn a_serial_stream_turned_parallel_midway_loses_and_repeats_nothing() {
        for ordered in [true, false] {
            for at in [0, 1, 999, 4999] {
                let mut s = serial_stream(5000, |x| x * 3 + 1);
                if !ordered {
                    s = s.unordered();
                }
                let mut out: Vec<u64> = s.by_ref().take(at).collect();
                if at > 0 {
                    assert!(matches!(s.state, State::Serial(_)), "{s:?}");
                }
                // Whatever is computed and not yet taken (the sample's results) goes over with
                // the rest; an input already run to its end stays serial.
                let exhausted = matches!(&s.state, State::Serial(x) if x.exhausted);
                assert!(!exhausted || at == 4999, "at {at}");
                s.go_parallel(Plan::fixed(nz(3), nz(7)));
                assert_eq!(
                    matches!(s.state, State::Parallel(_)),
                    at > 0 && !exhausted,
                    "at {at}"
                );
                out.extend(s.by_ref());
                if !ordered {
                    out.sort_unstable();
                }
                assert_eq!(out, (0..5000).map(|x| x * 3 + 1).collect::<Vec<_>>());
                let report = s.report().unwrap();
                assert_eq!(report.items, 5000);
                if at > 0 && at < 4000 {
                    assert!(report.chunks > 0, "{report}");
                }
            }
        }
    }

    #[test]
    fn the_clock_is_read_about_once_a_millisecond_and_never_per_tiny_item() {
        assert_eq!(clock_every(None), CLOCK_EVERY_ITEMS);
        assert_eq!(clock_every(Some(Duration::ZERO)), CLOCK_EVERY_ITEMS);
        assert_eq!(
            clock_every(Some(Duration::from_nanos(20))),
            CLOCK_EVERY_ITEMS
        );
        assert_eq!(clock_every(Some(Duration::from_micros(10))), 100);
        assert_eq!(clock_every(Some(Duration::from_millis(10))), 1);
    }

    #[test]
    fn a_serial_stream_computes_only_what_is_taken_and_raises_a_panic_on_its_item() {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let mut s = serial_stream(1_000_000, move |&x| {
            counted.fetch_add(1, Relaxed);
            x
        });
        assert_eq!(s.next(), Some(0));
        // The sample's items, computed on the first `next`.
        let sampled = calls.load(Relaxed);
        assert!(sampled < 1_000_000, "{sampled}");
        let taken = sampled + 1000;
        assert_eq!(s.by_ref().take(taken - 1).count(), taken - 1);
        assert_eq!(calls.load(Relaxed), taken);

        let mut s = serial_stream(100, |&x| {
            assert!(x != 40, "bad item");
            x
        });
        let taken: Vec<u64> = s.by_ref().take(40).collect();
        assert_eq!(taken, (0..40).collect::<Vec<_>>());
        let err = catch_unwind(AssertUnwindSafe(|| s.next())).unwrap_err();
        let msg = err.downcast_ref::<String>().unwrap();
        assert!(msg.contains("item 40") && msg.contains("bad item"), "{msg}");

        // A panic of the input iterator is raised as it was, after the results before it.
        let input = (0..100u64).inspect(|&x| assert!(x != 70, "input failed"));
        let mut s = Options::new().max_workers(nz(1)).stream(input, |x| x + 1);
        let taken: Vec<u64> = s.by_ref().take(70).collect();
        assert_eq!(taken, (1..=70).collect::<Vec<_>>());
        let err = catch_unwind(AssertUnwindSafe(|| s.next())).unwrap_err();
        assert_eq!(err.downcast_ref::<&str>(), Some(&"input failed"));
    }

    #[test]
    fn consumers_that_fold_get_every_result_once_and_the_same_panics() {
        let expected = |n: u64| (0..n).map(|x| x * 3 + 1).sum::<u64>();
        // Some results taken first, the rest summed.
        let mut s = serial_stream(100_000, |x| x * 3 + 1);
        let first: u64 = s.by_ref().take(10).sum();
        assert_eq!(first + s.sum::<u64>(), expected(100_000));
        assert_eq!(serial_stream(5000, |&x| x).count(), 5000);
        // Turned parallel midway, then folded.
        let mut s = serial_stream(5000, |x| x * 3 + 1);
        let mut out: Vec<u64> = s.by_ref().take(1500).collect();
        s.go_parallel(Plan::fixed(nz(2), nz(16)));
        assert!(matches!(s.state, State::Parallel(_)));
        s.for_each(|r| out.push(r));
        assert_eq!(out, (0..5000).map(|x| x * 3 + 1).collect::<Vec<_>>());

        // A panic of `f` names its item; one of the consumer or of the input is raised as it
        // was.
        let s = serial_stream(100_000, |&x| {
            assert!(x != 54_321, "bad item");
            x
        });
        let err = catch_unwind(AssertUnwindSafe(|| s.for_each(drop))).unwrap_err();
        let msg = err.downcast_ref::<String>().unwrap();
        assert!(
            msg.contains("item 54321") && msg.contains("bad item"),
            "{msg}"
        );
        let s = serial_stream(100_000, |&x| x);
        let err = catch_unwind(AssertUnwindSafe(|| {
            s.for_each(|r| assert!(r != 54_321, "consumer failed"));
        }))
        .unwrap_err();
        assert_eq!(err.downcast_ref::<&str>(), Some(&"consumer failed"));
        let input = (0..100_000u64).inspect(|&x| assert!(x != 54_321, "input failed"));
        let s = Options::new().max_workers(nz(1)).stream(input, |x| x + 1);
        let err = catch_unwind(AssertUnwindSafe(|| s.for_each(drop))).unwrap_err();
        assert_eq!(err.downcast_ref::<&str>(), Some(&"input failed"));
    }

    #[test]
    fn a_panic_after_turning_parallel_names_its_item() {
        let mut s = serial_stream(5000, |&x| {
            assert!(x != 3210, "bad item");
            x
        });
        assert_eq!(s.by_ref().take(1500).count(), 1500);
        s.go_parallel(Plan::fixed(nz(2), nz(16)));
        assert!(matches!(s.state, State::Parallel(_)));
        let err = catch_unwind(AssertUnwindSafe(|| s.count())).unwrap_err();
        let msg = err.downcast_ref::<String>().unwrap();
        assert!(
            msg.contains("item 3210") && msg.contains("bad item"),
            "{msg}"
        );
    }
}
