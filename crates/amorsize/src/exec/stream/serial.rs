//! A serial stream: the lazy map on the pulling thread, an item per `next`, reading the
//! clock now and then to plan again.

use super::STREAM_REPLAN_EVERY;
use crate::exec::check::{Phase, Shed};
use crate::exec::progress::Reporter;
use crate::report::RunReport;
use crate::{plan, sample, Error, Options, Plan};
use std::any::Any;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The most items a serial stream runs between two readings of the clock (for
/// [`STREAM_REPLAN_EVERY`]): reading it per item would cost as much as a tiny item (~20 ns).
pub(super) const CLOCK_EVERY_ITEMS: u32 = 1024;

/// The predicted time between two readings of the clock in a serial stream, when its items
/// are slow enough to need fewer than [`CLOCK_EVERY_ITEMS`] for it.
pub(super) const CLOCK_EVERY: Duration = Duration::from_millis(1);

/// Items between two readings of the clock in a serial stream whose items are predicted to
/// take `item` each.
pub(super) fn clock_every(item: Option<Duration>) -> u32 {
    let most = CLOCK_EVERY_ITEMS as usize;
    u32::try_from(items_within(CLOCK_EVERY, item, most)).unwrap_or(CLOCK_EVERY_ITEMS)
}

/// How many items predicted to take `item` each fit in `time`: between 1 and `most`, and
/// `most` when the item time is unknown or zero.
pub(super) fn items_within(time: Duration, item: Option<Duration>, most: usize) -> usize {
    match item {
        Some(item) if !item.is_zero() => {
            let items = time.as_secs_f64() / item.as_secs_f64();
            items.clamp(1.0, most as f64) as usize
        }
        _ => most,
    }
}

/// A serial stream: the lazy map itself, on the pulling thread, an item per `next`.
pub(super) struct Serial<I, R, F> {
    pub(super) iter: I,
    pub(super) f: Arc<F>,
    pub(super) sampled: usize,
    /// The input index of the next item to compute.
    pub(super) index: usize,
    /// `next` computes items itself while `index` is below this; at it, the stream's slow path
    /// reads the clock (to plan again, see [`STREAM_REPLAN_EVERY`]). 0 once the input has
    /// ended.
    pub(super) check_at: usize,
    /// The input has ended (it is not asked again: an iterator may go on after `None`).
    pub(super) exhausted: bool,
    /// How long the stream took to compute its last item, once the input has ended.
    pub(super) took: Option<Duration>,
    pub(super) plan: OnceLock<Plan>,
    /// For a stream the glance settled: its length and the proof, to build the plan from when
    /// it is asked for.
    pub(super) settled: Option<(usize, plan::quick::Proof)>,
    /// The sample's figures, to plan again with.
    pub(super) figures: sample::Sample,
    pub(super) nested: bool,
    pub(super) total: Option<usize>,
    pub(super) assumed: Option<usize>,
    pub(super) start: Instant,
    /// When the stream was last planned.
    pub(super) planned: Instant,
    /// How long it runs before it plans again: [`STREAM_REPLAN_EVERY`], longer after a shed.
    pub(super) replan_every: Duration,
    /// Phases and sheds before this serial stretch (a parallel one that shed its workers).
    pub(super) phases: Vec<Phase>,
    pub(super) sheds: Vec<Shed>,
    /// When this serial stretch began, since `start`.
    pub(super) started_at: Duration,
    /// Progress, for a serial stretch after a shed of a stream with a progress callback:
    /// reported at each reading of the clock and at the end.
    pub(super) reporter: Option<Reporter>,
    /// Items between two readings of the clock.
    pub(super) clock_every: usize,
    /// The type of the results, which `f` gives.
    pub(super) results: PhantomData<fn() -> R>,
}

impl<I: Iterator, R, F: Fn(&I::Item) -> R> Serial<I, R, F> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
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
    pub(super) fn report(&self, options: &Options) -> RunReport {
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
            serial_alone: None,
        }
    }

    /// The plan the stream runs: built now when the glance settled it and nobody asked yet.
    pub(super) fn plan(&self, options: &Options) -> &Plan {
        self.plan.get_or_init(|| match self.settled {
            Some((n, proof)) => plan::settled_plan(n, &self.figures, proof, options),
            // Not reached: a stream the glance did not settle starts with its plan.
            None => plan::plan_sample(&self.figures, self.index, options),
        })
    }

    /// Tells the progress callback, if any, of the items computed since it last heard.
    pub(super) fn report_progress(&mut self) {
        if let Some(r) = self.reporter.as_mut() {
            let done = r.done();
            if self.index > done {
                r.add(self.index - done);
            }
        }
    }

    /// Whether the next item is computed by `next` itself, without the slow path.
    #[inline]
    pub(super) fn computes_next(&self) -> bool {
        self.index < self.check_at
    }

    /// Reads the clock (the slow path's part, every [`Serial::clock_every`] items): whether
    /// it is time to plan again, [`STREAM_REPLAN_EVERY`] after the last plan. Never for a
    /// nested stream, which runs serially whatever the plan.
    pub(super) fn due(&mut self) -> bool {
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
    pub(super) fn compute(&mut self) -> Option<R> {
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
    pub(super) fn fold_stretch<B, G>(&mut self, acc: B, g: &mut G) -> B
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
    pub(super) fn end(&mut self) -> Option<R> {
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
pub(super) fn raise(index: usize, payload: Box<dyn Any + Send>) -> ! {
    panic!("{}", Error::panicked(index, payload.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
