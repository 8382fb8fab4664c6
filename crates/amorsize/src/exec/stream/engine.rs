//! A parallel stream's engine: chunks handed to the pool, their results put in order, the
//! chunk size adapted and the closed loop checked, all on the pulling thread.

use super::{CHUNKS_AHEAD, STREAM_CHUNK_ITEMS_MAX};
use crate::exec::adapt::Adapter;
use crate::exec::check::{Meter, Phase, Shed, CHECK_CHUNKS};
use crate::exec::pool::{self, Pool};
use crate::exec::progress::Reporter;
use crate::model::shed::{judge, Verdict};
use crate::report::RunReport;
use crate::{sample, Error, Options, Plan};
use crossbeam_channel::{Receiver, Sender};
use std::any::Any;
use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where a parallel stream takes over: after the sampled prefix, or after a serial stretch
/// (see [`STREAM_REPLAN_EVERY`](super::STREAM_REPLAN_EVERY)).
pub(super) struct Resume {
    /// Results reused from the sample.
    pub(super) sampled: usize,
    /// The input index of the first item the workers get (items before it are done).
    pub(super) index: usize,
    /// When the stream started running.
    pub(super) start: Instant,
    /// Time spent computing before the workers take over.
    pub(super) busy: Duration,
    /// Phases before the workers take over (a serial stretch after a shed), and the sheds.
    pub(super) phases: Vec<Phase>,
    pub(super) sheds: Vec<Shed>,
    /// How long a serial stretch waits before it plans again.
    pub(super) replan_every: Duration,
    /// The sample's figures, to plan again with.
    pub(super) figures: sample::Sample,
}

/// What [`Engine::next_batch`] gives.
pub(super) enum Next<R> {
    /// The next results.
    Batch(Vec<R>),
    /// The workers did not pay: every chunk handed out is back and taken, and the rest of the
    /// input is for the pulling thread ([`Stream::go_serial`](super::Stream::go_serial)).
    Shed,
    /// The input is done.
    End,
}

/// How a dispatched chunk ended.
pub(super) enum Outcome<R> {
    Done(Vec<R>),
    /// The stop flag was seen: the stream is being dropped.
    Stopped,
    /// The function panicked on the item with this input index.
    Panicked(usize, Box<dyn Any + Send>),
}

/// The one message each dispatched chunk sends back.
pub(super) struct Message<R> {
    pub(super) seq: u64,
    pub(super) outcome: Outcome<R>,
    pub(super) took: Duration,
}

/// A parallel stream's bookkeeping, all on the pulling thread.
pub(super) struct Engine<I: Iterator, R, F> {
    pub(super) iter: Option<I>,
    pub(super) f: Arc<F>,
    pub(super) pool: Pool,
    pub(super) plan: Plan,
    pub(super) ordered: bool,
    pub(super) tx: Sender<Message<R>>,
    pub(super) rx: Receiver<Message<R>>,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) chunk: usize,
    /// The chunk size planned at the start: the in-flight bound keeps room for
    /// [`CHUNKS_AHEAD`] chunks of it per worker even after adaptation shrinks the chunks.
    pub(super) first_chunk: usize,
    /// The input's length, when its iterator tells it exactly.
    pub(super) total: Option<usize>,
    /// The bound on `in_flight` set by the caller (items or bytes), if any.
    pub(super) limit: Option<usize>,
    /// Items dispatched whose results have not yet been handed to the stream.
    pub(super) in_flight: usize,
    /// Chunks dispatched whose message has not been received.
    pub(super) outstanding: usize,
    pub(super) next_seq: u64,
    pub(super) next_index: usize,
    pub(super) next_out: u64,
    pub(super) arrived: BTreeMap<u64, Vec<R>>,
    pub(super) adapter: Option<Adapter>,
    pub(super) reporter: Option<Reporter>,
    pub(super) sampled: usize,
    pub(super) computed: usize,
    pub(super) chunks: usize,
    pub(super) busy: Duration,
    pub(super) start: Instant,
    pub(super) assumed: Option<usize>,
    pub(super) figures: sample::Sample,
    /// Phases and sheds before this parallel stretch, and this stretch's own shed.
    pub(super) phases: Vec<Phase>,
    pub(super) sheds: Vec<Shed>,
    pub(super) replan_every: Duration,
    /// The closed loop's windows, and the chunks received in this parallel stretch.
    pub(super) meter: Meter,
    pub(super) stretch_chunks: usize,
    /// The check shed the workers: nothing more is handed out.
    pub(super) draining: bool,
    /// Whether the closed loop may shed the workers ([`Options::shed_workers`]).
    pub(super) shed: bool,
    /// When this parallel stretch began, since `start`.
    pub(super) began: Duration,
}

impl<I, R, F> Engine<I, R, F>
where
    I: Iterator,
    I::Item: Send + 'static,
    R: Send + 'static,
    F: Fn(&I::Item) -> R + Send + Sync + 'static,
{
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
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
        let limit = crate::exec::budget::in_flight_limit(options, &plan, size_of::<I::Item>());
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
    pub(super) fn next_batch(&mut self) -> Next<R> {
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
    pub(super) fn limit(&self) -> usize {
        let chunk = self.chunk.max(self.first_chunk);
        self.limit
            .unwrap_or_else(|| CHUNKS_AHEAD * self.plan.workers().get() * chunk)
    }

    /// Hands out chunks while the in-flight bound allows (always at least one when nothing is
    /// in flight, so that a bound below one chunk still makes progress).
    pub(super) fn dispatch(&mut self) {
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
    pub(super) fn take_arrived(&mut self) -> Option<Vec<R>> {
        if self.ordered {
            let results = self.arrived.remove(&self.next_out)?;
            self.next_out += 1;
            Some(results)
        } else {
            self.arrived.pop_first().map(|(_, results)| results)
        }
    }

    pub(super) fn accept(&mut self, message: Message<R>) {
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
    pub(super) fn check(&mut self) {
        let workers = self.plan.workers();
        if (self.stretch_chunks as u64) < CHECK_CHUNKS * workers.get() as u64
            || !self.meter.may_be_due()
        {
            return;
        }
        // As a batch's check (`check::serial_item_high`): the slowest serial rate the sample
        // allows.
        let Some(serial) = crate::exec::check::serial_item_high(&self.plan) else {
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

    pub(super) fn report(&self) -> RunReport {
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
            serial_alone: None,
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
    pub(super) fn receive(&self) -> Option<Message<R>> {
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
    pub(super) fn shut_down(&mut self) {
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
pub(super) fn run_chunk<T, R, F: Fn(&T) -> R>(
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
