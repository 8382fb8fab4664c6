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

mod engine;
mod serial;

use super::check::Phase;
use super::pool;
use crate::report::RunReport;
use crate::{plan, sample, Options, Plan};
use engine::{Engine, Next, Resume};
use serial::Serial;
use std::fmt;
use std::num::NonZeroUsize;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The longest predicted duration of one chunk of a stream. A stream sizes its chunks by
/// time, not by the input's length (which may be unknown or unbounded), so that its memory
/// (about [`CHUNKS_AHEAD`] chunks per worker) does not grow with the input. Handing out a
/// chunk costs a few µs on threads, so 5 ms keeps that cost near 0.1 % of the work.
pub(crate) const STREAM_CHUNK_TIME_MAX: Duration = Duration::from_millis(5);

/// The most items in one chunk of a stream, whatever the prediction: for items so cheap that
/// [`STREAM_CHUNK_TIME_MAX`] holds more, this bounds the memory held (64 Ki items; below about
/// 75 ns per item, where this binds, a chunk still takes several times its dispatch cost).
pub(crate) const STREAM_CHUNK_ITEMS_MAX: usize = 1 << 16;

/// Chunks per worker a stream keeps in flight by default: one running and the rest queued, so
/// that the workers keep busy while the pulling thread is away (busy with the results, or
/// descheduled on a loaded machine).
pub const CHUNKS_AHEAD: usize = 4;

/// The input length a stream plans for when its iterator gives no upper bound: a stand-in
/// (reported in [`RunReport::assumed_items`]). It decides whether the work is large enough to
/// be worth parallel workers; it is also the longest input a stream plans its chunk size for,
/// so that a longer input holds no more memory (chunks are bounded by
/// [`STREAM_CHUNK_TIME_MAX`] too).
pub(crate) const UNKNOWN_LENGTH_ITEMS: usize = 1 << 20;

/// How long a serial stream runs before it plans again. A plan rests on what was measured
/// when it was made, the load of other programs included; a long stream outlives that load,
/// so a serial one asks again now and then, and turns parallel when that now pays. Planning
/// takes well under a millisecond, so this costs under 1 % of the stream's time.
pub(crate) const STREAM_REPLAN_EVERY: Duration = Duration::from_millis(100);

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
/// 100 ms (`STREAM_REPLAN_EVERY`) and turns parallel once that pays.
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::atomic::Ordering::Relaxed;

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
