//! A batch over a slice, on threads: the serial path is a plain loop; the parallel path runs
//! workers on a rayon pool that claim chunks from a shared cursor.
//!
//! Claiming chunks from one atomic cursor (rather than splitting the input up front) is what
//! lets the chunk size change in the middle of a run ([`adapt`](super::adapt)); rayon still
//! runs the workers. Each result is written straight into its own slot of the output
//! ([`slots`](super::slots)), beside the results the sample already computed, so nothing is
//! copied into order afterwards.

use super::adapt::Adapter;
use super::check::{Check, Ruling};
use super::check::{Phase, Shed};
use super::pool::{self, Pool};
use super::progress::Reporter;
use super::settings::ExecOptions;
use super::slots::{Slots, Writer};
use crate::report::ChunkAdjustment;
use crate::{Plan, Result};
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Why a run stopped early: the first failure seen (lowest index among those seen).
pub(crate) struct Failure<O> {
    /// Index of the item in the caller's input.
    pub(crate) index: usize,
    pub(crate) cause: Cause<O>,
}

/// A panic payload, or a result the caller counts as a failure (an `Err`), or the deadline of
/// [`ExecOptions::deadline`] passed.
pub(crate) enum Cause<O> {
    Panic(Box<dyn Any + Send>),
    Value(O),
    Deadline,
}

impl<O> Failure<O> {
    /// The failure as an error; `value` turns a failing result into one.
    pub(crate) fn into_error(self, value: impl FnOnce(usize, O) -> crate::Error) -> crate::Error {
        match self.cause {
            Cause::Panic(payload) => crate::Error::panicked(self.index, payload.as_ref()),
            Cause::Value(o) => value(self.index, o),
            Cause::Deadline => crate::Error::new(
                crate::ErrorKind::InvalidInput,
                "the run passed its deadline and stopped before the end",
            ),
        }
    }
}

/// One batch to run.
pub(crate) struct Batch<'a, T, O, F, P> {
    /// The items still to run, and those the sample ran.
    pub(crate) items: &'a [T],
    /// Results the sample computed: indices into `items`, increasing.
    pub(crate) sampled: Vec<(usize, O)>,
    /// Index of `items[0]` in the caller's input; items before it are already done.
    pub(crate) base: usize,
    /// The user's function.
    pub(crate) f: &'a F,
    /// Which results count as failures that stop the run (never, for a plain map).
    pub(crate) fails: P,
    /// Whether `fails` can ever be true: when not, the serial path runs each stretch between
    /// sampled items as `extend(map(f))`, the plain loop the compiler optimizes best.
    pub(crate) fallible: bool,
}

/// A finished batch: results in input order and what the run measured.
pub(crate) struct Done<O> {
    pub(crate) results: Vec<O>,
    pub(crate) stats: Stats,
}

/// What a run measured.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) workers: usize,
    pub(crate) chunks: usize,
    pub(crate) wall: Duration,
    pub(crate) busy: Duration,
    pub(crate) nested: bool,
    pub(crate) adjustments: Vec<ChunkAdjustment>,
    /// The run's phases: on the workers it started with, then after each shed.
    pub(crate) phases: Vec<Phase>,
    /// Each change of the worker count the closed loop made, in order.
    pub(crate) sheds: Vec<Shed>,
    /// Whether the closed loop ruled on a window of the run while it ran.
    pub(crate) judged: bool,
    /// The window a trial ran on one worker, the others paused: the serial rate on the run's
    /// own items, and its noise.
    pub(crate) alone: Option<(Phase, f64)>,
}

/// Runs `batch` as `plan` says.
pub(crate) fn run<T, O, F, P>(
    batch: Batch<'_, T, O, F, P>,
    plan: &Plan,
    settings: &ExecOptions,
) -> Result<std::result::Result<Done<O>, Failure<O>>>
where
    T: Sync,
    O: Send,
    F: Fn(&T) -> O + Sync,
    P: Fn(&O) -> bool + Sync,
{
    run_in(batch, plan, settings, None)
}

/// [`run`] on `pool` (which has the plan's workers) rather than a shared one: what a caller
/// that keeps pools of its own uses ([`tune`](super::tune)).
pub(crate) fn run_on<T, O, F, P>(
    batch: Batch<'_, T, O, F, P>,
    plan: &Plan,
    settings: &ExecOptions,
    pool: &Pool,
) -> Result<std::result::Result<Done<O>, Failure<O>>>
where
    T: Sync,
    O: Send,
    F: Fn(&T) -> O + Sync,
    P: Fn(&O) -> bool + Sync,
{
    run_in(batch, plan, settings, Some(pool))
}

/// [`run`], on `given` when there is one, else on the shared pool of the plan's size (or the
/// current pool, nested).
fn run_in<T, O, F, P>(
    batch: Batch<'_, T, O, F, P>,
    plan: &Plan,
    settings: &ExecOptions,
    given: Option<&Pool>,
) -> Result<std::result::Result<Done<O>, Failure<O>>>
where
    T: Sync,
    O: Send,
    F: Fn(&T) -> O + Sync,
    P: Fn(&O) -> bool + Sync,
{
    let mut batch = batch;
    // A glance's results are two sorted runs (its spread items, then its block), which a
    // stable sort merges in one pass.
    batch.sampled.sort_by_key(|(i, _)| *i);
    if let Some(at) = batch.sampled.iter().position(|(_, o)| (batch.fails)(o)) {
        let (index, o) = batch.sampled.swap_remove(at);
        return Ok(Err(Failure {
            index: batch.base + index,
            cause: Cause::Value(o),
        }));
    }
    let remaining = batch.items.len() - batch.sampled.len();
    let parallel = plan.is_parallel() && plan.workers().get() > 1 && remaining > 1;
    if !parallel {
        return Ok(serial(batch, plan, settings));
    }
    let pool = match given {
        Some(pool) => Some(pool.clone()),
        None if pool::nested() => None,
        None => Some(pool::pool_at_least(plan.workers().get())?),
    };
    Ok(parallel_run(batch, plan, settings, pool))
}

/// The index a deadline's stop is filed under: after every item, so that a real failure seen
/// in the same run (a lower index) wins.
const DEADLINE_INDEX: usize = usize::MAX;

/// The serial path: a plain loop (in chunks only when someone watches the progress).
fn serial<T, O, F, P>(
    batch: Batch<'_, T, O, F, P>,
    plan: &Plan,
    settings: &ExecOptions,
) -> std::result::Result<Done<O>, Failure<O>>
where
    F: Fn(&T) -> O,
    P: Fn(&O) -> bool,
{
    let start = Instant::now();
    let Batch {
        items,
        sampled,
        base,
        f,
        fails,
        fallible,
    } = batch;
    let n = items.len();
    let mut reporter = settings
        .progress
        .as_ref()
        .map(|p| Reporter::new(p, base + sampled.len(), Some(base + n)));
    let step = if reporter.is_some() || settings.deadline.is_some() {
        plan.chunk_size().get()
    } else {
        n.max(1)
    };
    let mut out = Vec::with_capacity(n);
    let reused_total = sampled.len();
    let mut sampled = sampled.into_iter();
    // The next sampled index, so that the loop pays one comparison per stretch for them.
    let next = |rest: &std::vec::IntoIter<(usize, O)>| {
        rest.as_slice().first().map_or(usize::MAX, |(i, _)| *i)
    };
    let mut next_sampled = next(&sampled);
    let mut failed = None;
    let mut chunks = 0;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut lo = 0;
        while lo < n {
            let hi = lo.saturating_add(step).min(n);
            let mut reused = 0;
            let mut i = lo;
            while i < hi {
                if i == next_sampled {
                    // A run of sampled items (a glance's block is thousands) moves over in
                    // one copy, at the cost of reading their indices.
                    let run = sampled
                        .as_slice()
                        .iter()
                        .take(hi - i)
                        .enumerate()
                        .take_while(|(k, (index, _))| *index == i + k)
                        .count();
                    out.extend(sampled.by_ref().take(run).map(|(_, o)| o));
                    next_sampled = next(&sampled);
                    reused += run;
                    i += run;
                    continue;
                }
                // A stretch with no sampled item in it.
                let end = next_sampled.min(hi);
                if fallible {
                    for item in &items[i..end] {
                        let o = f(item);
                        if fails(&o) {
                            failed = Some(Failure {
                                index: base + out.len(),
                                cause: Cause::Value(o),
                            });
                            return;
                        }
                        out.push(o);
                    }
                } else {
                    // On a panic `out` keeps the results written so far, so its length is
                    // the index of the item that panicked.
                    out.extend(items[i..end].iter().map(f));
                }
                i = end;
            }
            chunks += 1;
            if let Some(r) = reporter.as_mut() {
                r.add(hi - lo - reused);
            }
            lo = hi;
            if lo < n && settings.deadline.is_some_and(|d| Instant::now() > d) {
                failed = Some(Failure {
                    index: DEADLINE_INDEX,
                    cause: Cause::Deadline,
                });
                return;
            }
        }
    }));
    if let Err(payload) = outcome {
        return Err(Failure {
            // The item that panicked is the one after the last result.
            index: base + out.len(),
            cause: Cause::Panic(payload),
        });
    }
    if let Some(failure) = failed {
        return Err(failure);
    }
    let wall = start.elapsed();
    let ran = out.len() - reused_total;
    Ok(Done {
        results: out,
        stats: Stats {
            workers: 1,
            chunks,
            wall,
            busy: wall,
            nested: false,
            adjustments: Vec::new(),
            phases: vec![Phase::new(1, ran, wall)],
            sheds: Vec::new(),
            judged: false,
            alone: None,
        },
    })
}

/// State the workers share.
struct Shared<'a, T, O, F, P> {
    items: &'a [T],
    /// Sampled indices: skipped, their results are already known.
    skip: Vec<usize>,
    base: usize,
    f: &'a F,
    fails: &'a P,
    /// Whether `fails` can be true (see [`Batch::fallible`]).
    fallible: bool,
    /// Where results go: each in its own slot, in input order.
    out: Writer<'a, O>,
    cursor: AtomicUsize,
    chunk: AtomicUsize,
    /// Chunks of the planned size to the end (see [`ExecOptions::fixed_chunks`]).
    fixed: bool,
    deadline: Option<Instant>,
    stop: AtomicBool,
    workers: usize,
    adapter: Option<Mutex<Adapter>>,
    failure: Mutex<Option<Failure<O>>>,
    finished: Mutex<Finished>,
    /// The closed loop: what each worker measured, and the workers still allowed to claim.
    check: Check,
}

/// What the workers hand back when they end.
struct Finished {
    /// Stretches of slots written (`start..end`).
    stretches: Vec<(usize, usize)>,
    busy: Duration,
    count: usize,
}

/// How a chunk ended.
enum ChunkEnd<O> {
    /// Every item ran; this many (the chunk less its sampled items).
    Complete(usize),
    Stopped,
    Failed(Failure<O>),
}

fn lock<X>(m: &Mutex<X>) -> std::sync::MutexGuard<'_, X> {
    // Only amorsize's own code runs under these locks (never the user's function), so a
    // poisoned lock holds consistent data.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T, O, F, P> Shared<'_, T, O, F, P>
where
    F: Fn(&T) -> O,
    P: Fn(&O) -> bool,
{
    /// Claims the next chunk: `start..end` of the items, or `None` when none is left.
    fn claim(&self) -> Option<(usize, usize)> {
        let n = self.items.len();
        let c = self.chunk.load(Relaxed);
        let start = self
            .cursor
            .fetch_update(Relaxed, Relaxed, |s| {
                (s < n).then(|| s + self.claim_size(c, n - s))
            })
            .ok()?;
        Some((start, start + self.claim_size(c, n - start)))
    }

    /// Items to claim of `remaining` with chunks of `chunk`: [`claim_size`], or the chunk
    /// itself when chunks are fixed.
    fn claim_size(&self, chunk: usize, remaining: usize) -> usize {
        if self.fixed {
            chunk.clamp(1, remaining.max(1))
        } else {
            claim_size(chunk, remaining, self.workers)
        }
    }

    /// Runs the items `start..end` (less the sampled ones) into their slots, recording each
    /// stretch written in `stretches`, also when the chunk stops or fails.
    fn run_chunk(
        &self,
        start: usize,
        end: usize,
        stretches: &mut Vec<(usize, usize)>,
    ) -> ChunkEnd<O> {
        let lo = self.skip.partition_point(|&i| i < start);
        let mut skip = self.skip[lo..].iter().copied().peekable();
        let mut ran = 0;
        // The first item of the stretch being written, and how many of it were written when
        // a panic came: the panicking item is the next one.
        let mut current = start;
        let mut done = 0;
        // A stretch of single writes still to record (the fallible path).
        let mut open = (start, start);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let mut idx = start;
            while idx < end {
                if skip.next_if_eq(&idx).is_some() {
                    if open.1 > open.0 {
                        stretches.push(open);
                    }
                    idx += 1;
                    open = (idx, idx);
                    continue;
                }
                if self.stop.load(Relaxed) {
                    return Some(ChunkEnd::Stopped);
                }
                if !self.fallible {
                    // Nothing can fail but a panic: the stretch up to the next sampled item
                    // runs as one plain loop, the stop flag is seen between stretches.
                    let stretch = skip.peek().map_or(end, |&s| s.min(end));
                    current = idx;
                    // SAFETY: `idx..stretch` lies within the claimed chunk (`claim` hands out
                    // disjoint ranges of `0..n`, and the slots number `n`), and skipped
                    // sampled indices are never written.
                    let written = unsafe {
                        self.out
                            .write(idx, &self.items[idx..stretch], self.f, &mut done)
                    };
                    stretches.push(written);
                    ran += stretch - idx;
                    idx = stretch;
                    open = (idx, idx);
                    continue;
                }
                current = idx;
                done = 0;
                let o = (self.f)(&self.items[idx]);
                if (self.fails)(&o) {
                    return Some(ChunkEnd::Failed(Failure {
                        index: self.base + idx,
                        cause: Cause::Value(o),
                    }));
                }
                // SAFETY: as above, for the single slot `idx` of the claimed chunk.
                unsafe { self.out.put(idx, o) };
                open.1 = idx + 1;
                ran += 1;
                idx += 1;
            }
            None
        }));
        if open.1 > open.0 {
            stretches.push(open);
        }
        match outcome {
            Ok(Some(end)) => end,
            Ok(None) => ChunkEnd::Complete(ran),
            Err(payload) => ChunkEnd::Failed(Failure {
                index: self.base + current + done,
                cause: Cause::Panic(payload),
            }),
        }
    }

    /// Records a failure (the lowest index wins) and stops the other workers.
    fn fail(&self, failure: Failure<O>) {
        self.stop.store(true, Relaxed);
        let mut slot = lock(&self.failure);
        if slot.as_ref().map_or(true, |f| failure.index < f.index) {
            *slot = Some(failure);
        }
    }

    /// Worker `id`: claims and runs chunks until none is left, the run stops or the closed
    /// loop sheds it; `on_chunk` hears of each finished chunk's item count.
    fn work(&self, id: usize, mut on_chunk: impl FnMut(usize)) {
        let mut stretches = Vec::new();
        let mut busy = Duration::ZERO;
        let mut count = 0;
        while !self.stop.load(Relaxed) && self.check.allows(id) {
            let Some((start, end)) = self.claim() else {
                self.check.drained();
                break;
            };
            self.check.claimed(end - start);
            let t0 = Instant::now();
            let ran = match self.run_chunk(start, end, &mut stretches) {
                ChunkEnd::Complete(ran) => ran,
                ChunkEnd::Stopped => break,
                ChunkEnd::Failed(failure) => {
                    self.fail(failure);
                    break;
                }
            };
            let took = t0.elapsed();
            busy += took;
            count += 1;
            self.check.finished(id, ran, took);
            if let Some(adapter) = &self.adapter {
                let left = self.items.len().saturating_sub(self.cursor.load(Relaxed));
                if let Some(next) = lock(adapter).observe(ran, took, Some(left), self.workers) {
                    self.chunk.store(next, Relaxed);
                }
            }
            on_chunk(ran);
            if self.deadline.is_some_and(|d| Instant::now() > d)
                && self.cursor.load(Relaxed) < self.items.len()
            {
                self.fail(Failure {
                    index: DEADLINE_INDEX,
                    cause: Cause::Deadline,
                });
                break;
            }
        }
        let mut finished = lock(&self.finished);
        finished.stretches.append(&mut stretches);
        finished.busy += busy;
        finished.count += count;
    }
}

/// Items to claim next: the chunk size, but no more than an even share of half of what is
/// left, so that the last chunks shrink and the workers finish together (guided
/// self-scheduling, Polychronopoulos & Kuck 1987, with half shares for a gentler tail).
/// Always at least 1 and at most `remaining` (when anything remains).
pub(crate) fn claim_size(chunk: usize, remaining: usize, workers: usize) -> usize {
    let share = remaining.div_ceil(2 * workers.max(1));
    chunk.min(share).max(1).min(remaining.max(1))
}

/// Sets the stop flag if the coordinating thread unwinds (a panicking progress callback), so
/// that the workers end instead of finishing the whole batch first.
struct StopOnUnwind<'a>(&'a AtomicBool);

impl Drop for StopOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Relaxed);
        }
    }
}

/// The parallel path. `pool` is `None` for a nested run, which uses the current pool and the
/// calling thread (itself one of that pool's workers).
fn parallel_run<T, O, F, P>(
    batch: Batch<'_, T, O, F, P>,
    plan: &Plan,
    settings: &ExecOptions,
    pool: Option<Pool>,
) -> std::result::Result<Done<O>, Failure<O>>
where
    T: Sync,
    O: Send,
    F: Fn(&T) -> O + Sync,
    P: Fn(&O) -> bool + Sync,
{
    let start = Instant::now();
    let Batch {
        items,
        sampled,
        base,
        f,
        fails,
        fallible,
    } = batch;
    let n = items.len();
    let nested = pool.is_none();
    let chunk = plan.chunk_size();
    let workers = worker_count(plan, n, nested);
    let adapter = if settings.adapt {
        Adapter::new(plan.item_time(), chunk).map(Mutex::new)
    } else {
        None
    };
    let mut slots = Slots::new(n);
    let state = Shared {
        items,
        skip: sampled.iter().map(|(i, _)| *i).collect(),
        base,
        f,
        fails: &fails,
        fallible,
        out: slots.writer(),
        cursor: AtomicUsize::new(0),
        chunk: AtomicUsize::new(chunk.get()),
        fixed: settings.fixed_chunks,
        deadline: settings.deadline,
        stop: AtomicBool::new(false),
        workers,
        adapter,
        failure: Mutex::new(None),
        finished: Mutex::new(Finished {
            stretches: Vec::new(),
            busy: Duration::ZERO,
            count: 0,
        }),
        check: Check::new(workers, plan, start, settings.shed),
    };
    let mut reporter = settings
        .progress
        .as_ref()
        .map(|p| Reporter::new(p, base + sampled.len(), Some(base + n)));
    run_workers(&state, pool.as_ref(), reporter.as_mut());
    let wall = start.elapsed();
    let Ended {
        finished,
        failure,
        adjustments,
        check,
    } = state.end();
    // The slots own what the workers wrote from here on, and drop it if the run failed.
    slots.record(finished.stretches);
    if let Some(failure) = failure {
        return Err(failure);
    }
    let ran = n - sampled.len();
    let results = slots.finish(sampled);
    if let Some(r) = reporter.as_mut() {
        // A nested run may not have heard of the last chunks of the other workers.
        if r.done() < base + n {
            r.add(base + n - r.done());
        }
    }
    let Ruling {
        phases,
        sheds,
        judged,
        alone,
    } = check.into_ruling(ran, wall);
    Ok(Done {
        results,
        stats: Stats {
            workers,
            chunks: finished.count,
            wall,
            busy: finished.busy,
            nested,
            adjustments,
            phases,
            sheds,
            judged,
            alone,
        },
    })
}

/// The workers a parallel run of `n` items starts: the plan's (at most the current pool's
/// threads when `nested`), but no more than there are chunks to hand out, and at least one.
fn worker_count(plan: &Plan, n: usize, nested: bool) -> usize {
    let planned = if nested {
        plan.workers().get().min(pool::nested_threads())
    } else {
        plan.workers().get()
    };
    planned.min(n.div_ceil(plan.chunk_size().get())).max(1)
}

/// Starts the workers of `shared` on `pool` (or, nested, on the current pool and the calling
/// thread) and waits for them all, reporting their progress to `reporter` as chunks finish.
fn run_workers<T, O, F, P>(
    shared: &Shared<'_, T, O, F, P>,
    pool: Option<&Pool>,
    mut reporter: Option<&mut Reporter>,
) where
    T: Sync,
    O: Send,
    F: Fn(&T) -> O + Sync,
    P: Fn(&O) -> bool + Sync,
{
    let nested = pool.is_none();
    in_scope(pool, |scope| {
        let _guard = StopOnUnwind(&shared.stop);
        let (tx, rx) = match reporter {
            Some(_) => {
                let (tx, rx) = crossbeam_channel::unbounded::<usize>();
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        // Worker 0 is the one the closed loop keeps when it sheds the rest: the calling thread,
        // unless it relays a progress reporter's counts (then the first job). Working on the
        // calling thread rather than waiting for the pool spares the run a wake-up at each
        // end: the caller's share starts at once, and the caller does not sleep until the last
        // job ends, then wait for a core beside the pool's threads as they spin down. Measured
        // on 2 cores, a forced plan of 2 workers against the loop, 3 fresh processes each
        // (throwaway example, median call ÷ the loop's): 300 items of 0.9 µs, 0.92-1.36 with
        // every worker a pool job, 0.73-0.78 with the caller as worker 0; 200 000 items of
        // 2 ns, 1.10-1.24 and 0.91-0.96; 5 000 items of 4.5 µs, 0.59-0.80 and 0.54-0.56.
        let inline = nested || reporter.is_none();
        let first = usize::from(inline);
        for id in first..shared.workers {
            let tx = tx.clone();
            scope.spawn(move |_| {
                shared.work(id, |ran| {
                    if let Some(tx) = &tx {
                        // The receiver outlives the scope's jobs; a send cannot fail.
                        let _ = tx.send(ran);
                    }
                })
            });
        }
        drop(tx);
        match (inline, rx, reporter.as_mut()) {
            // This thread works too. Nested, it is a worker of the pool and reports what it has
            // heard at its own chunk boundaries: blocking on the channel here could starve the
            // jobs queued on this very thread.
            (true, rx, reporter) => {
                let mut reporter = reporter;
                let mut work = || {
                    shared.work(0, |ran| {
                        if let Some(r) = reporter.as_mut() {
                            let heard: usize = rx.iter().flat_map(|rx| rx.try_iter()).sum();
                            r.add(ran + heard);
                        }
                    });
                };
                match pool {
                    // Outside the pool, this thread counts as one of its workers meanwhile: a
                    // run the function starts is nested in this one.
                    Some(pool) => pool::working_in(pool, work),
                    None => work(),
                }
            }
            (false, Some(rx), Some(reporter)) => {
                for ran in rx {
                    reporter.add(ran);
                }
            }
            (false, _, _) => {}
        }
    });
}

/// What a parallel run's shared state holds once its workers are done.
struct Ended<O> {
    finished: Finished,
    /// The failure that stopped the run, if one did.
    failure: Option<Failure<O>>,
    adjustments: Vec<ChunkAdjustment>,
    check: Check,
}

impl<T, O, F, P> Shared<'_, T, O, F, P> {
    /// Takes what the workers left: the stretches written, the failure, the chunk
    /// adjustments and the closed loop's record.
    fn end(self) -> Ended<O> {
        let Shared {
            failure,
            finished,
            adapter,
            check,
            ..
        } = self;
        Ended {
            finished: finished
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner),
            failure: failure.into_inner().unwrap_or_else(PoisonError::into_inner),
            adjustments: adapter
                .map(|a| {
                    a.into_inner()
                        .unwrap_or_else(PoisonError::into_inner)
                        .into_adjustments()
                })
                .unwrap_or_default(),
            check,
        }
    }
}

/// A scope on the calling thread whose jobs run in `pool`, or in the pool a nested run uses.
fn in_scope<'scope, R>(pool: Option<&Pool>, op: impl FnOnce(&rayon::Scope<'scope>) -> R) -> R {
    match pool {
        Some(pool) => pool.in_place_scope(op),
        None => pool::nested_scope(op),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_tail_shrinks_to_single_items() {
        assert_eq!(claim_size(100, 10_000, 4), 100);
        assert_eq!(claim_size(100, 800, 4), 100);
        assert_eq!(claim_size(100, 400, 4), 50);
        assert_eq!(claim_size(100, 3, 4), 1);
        assert_eq!(claim_size(100, 1, 4), 1);
    }

    /// Runs `items` on a fixed parallel plan of 2 workers × chunks of 3, with results for
    /// indices 0, 17 and the last taken from a (pretend) sample.
    fn run_fixed<F, P>(
        items: &[String],
        f: F,
        fails: P,
        fallible: bool,
    ) -> std::result::Result<Vec<String>, Failure<String>>
    where
        F: Fn(&String) -> String + Sync,
        P: Fn(&String) -> bool + Sync,
    {
        let two = std::num::NonZeroUsize::new(2).unwrap();
        let three = std::num::NonZeroUsize::new(3).unwrap();
        let last = items.len() - 1;
        let sampled = [0, 17, last].iter().map(|&i| (i, f(&items[i]))).collect();
        let batch = Batch {
            items,
            sampled,
            base: 0,
            f: &f,
            fails,
            fallible,
        };
        // No adaptation: the chunk sizes stay as planned whatever the clock says (under Miri
        // it runs slowly).
        let settings = ExecOptions {
            adapt: false,
            ..ExecOptions::default()
        };
        run(batch, &Plan::fixed(two, three), &settings)
            .unwrap()
            .map(|done| done.results)
    }

    // The executor writes results in place through `slots` (whose own tests run under Miri;
    // these pass under Miri too, but rayon-core's scope trips it now and then: see `.ci/miri`).
    #[test]
    fn parallel_results_fill_every_slot_in_order() {
        let items: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        let expected: Vec<String> = items.iter().map(|s| format!("<{s}>")).collect();
        let plain = run_fixed(&items, |s| format!("<{s}>"), |_| false, false);
        assert_eq!(plain.ok(), Some(expected.clone()));
        let checked = run_fixed(&items, |s| format!("<{s}>"), |o| o.is_empty(), true);
        assert_eq!(checked.ok(), Some(expected));
    }

    #[test]
    fn a_failing_or_panicking_item_is_named_and_written_results_are_dropped() {
        let items: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        let failed = run_fixed(&items, |s| format!("<{s}>"), |o| o == "<23>", true);
        assert!(
            matches!(failed, Err(Failure { index: 23, cause: Cause::Value(ref o) }) if o == "<23>")
        );
        for fallible in [false, true] {
            let panicked = run_fixed(
                &items,
                |s| {
                    assert!(s != "29", "item 29");
                    format!("<{s}>")
                },
                |_| false,
                fallible,
            );
            assert!(matches!(
                panicked,
                Err(Failure {
                    index: 29,
                    cause: Cause::Panic(_)
                })
            ));
        }
    }

    proptest! {
        #[test]
        fn claims_are_within_bounds(chunk in 1usize..10_000, remaining in 1usize..1_000_000, workers in 1usize..64) {
            let c = claim_size(chunk, remaining, workers);
            prop_assert!(c >= 1 && c <= chunk && c <= remaining);
        }
    }
}
