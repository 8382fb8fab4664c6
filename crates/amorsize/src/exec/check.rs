//! The closed loop of a parallel run: each worker tallies the chunks it finishes; once every
//! worker has finished a few (or a few milliseconds have passed), the worker that finishes the
//! next chunk compares the workers' throughput together with the serial rate the sample
//! measured, and [`judge`](crate::model::shed::judge) decides whether the run keeps its workers
//! or sheds some. A shed worker stops claiming after the chunk it holds, so every item still
//! runs exactly once. Worker 0 is never shed: the calling thread in a nested run, else
//! the first worker of the pool (the caller waits for it, as it waits for any run).

use crate::model::shed::{judge, Verdict};
use crate::Plan;
use serde::Serialize;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Chunks per worker finished before the run checks itself: two, so that the first chunk's
/// cold caches and late wake-ups do not decide alone.
pub(crate) const CHECK_CHUNKS: u64 = 2;

/// The shortest first window: 2 ms, so that a few chunks of heavy-tailed items (a log-normal
/// cost, a rare slow item) do not decide alone.
pub(crate) const CHECK_MIN_WINDOW: Duration = Duration::from_millis(2);

/// How long a run goes before it checks itself when some worker has not finished
/// [`CHECK_CHUNKS`] chunks (a worker stalled on a lock, or waiting for a core): 5 ms, a few
/// wake-ups' worth, short against any run worth parallelizing.
pub(crate) const CHECK_AFTER: Duration = Duration::from_millis(5);

/// The workers' throughput together, measured on the wall clock over windows: the items
/// finished in the window, plus half the change of those in flight (a chunk in flight is half
/// done on average), over the window's time. A worker stalled on a lock, or waiting for a core,
/// counts for what it did: nothing. The first window ends when its caller says so; each later
/// one is twice as long as the one before, so that a run that degrades as it goes (a lock
/// that turns contended) is caught, at a cost that stays logarithmic in the run's length.
pub(crate) struct Meter {
    start: Instant,
    done: u64,
    in_flight: u64,
    /// `None`: the first window.
    length: Option<Duration>,
}

impl Meter {
    /// A first window from `start`, when `done` items were finished.
    pub(crate) fn new(start: Instant, done: u64) -> Meter {
        Meter {
            start,
            done,
            in_flight: 0,
            length: None,
        }
    }

    /// Starts a first window again (after a shed), from the figures of the last reading.
    pub(crate) fn restart(&mut self) {
        self.length = None;
    }

    /// Whether the window may have ended (without reading anything else).
    pub(crate) fn may_be_due(&self) -> bool {
        self.length.map_or(true, |l| self.start.elapsed() >= l)
    }

    /// The throughput over the window, in items per second, when it is over: a later
    /// window once its length has passed, the first one when `first_over`, or after
    /// [`CHECK_AFTER`]. `done` counts the items finished since the run began, `in_flight` those
    /// handed out and not finished. The next window starts here.
    pub(crate) fn read(&mut self, done: u64, in_flight: u64, first_over: bool) -> Option<f64> {
        let elapsed = self.start.elapsed();
        let over = match self.length {
            None => (first_over && elapsed >= CHECK_MIN_WINDOW) || elapsed >= CHECK_AFTER,
            Some(length) => elapsed >= length,
        };
        if !over {
            return None;
        }
        let items = done.saturating_sub(self.done) as f64
            + (in_flight as f64 - self.in_flight as f64) / 2.0;
        self.start = Instant::now();
        self.done = done;
        self.in_flight = in_flight;
        self.length = Some(elapsed.max(CHECK_AFTER) * 2);
        let seconds = elapsed.as_secs_f64();
        (seconds > 0.0).then(|| items.max(0.0) / seconds)
    }
}

/// The most the sample's doubt raises the serial time per item a run is compared with: a
/// quarter. Beyond it a sample of a few heavy-tailed items would excuse any slowdown; a run
/// slower than the loop by more than that sheds whatever the sample's spread.
pub(crate) const MAX_DOUBT: f64 = 0.25;

/// The serial time per item a run is compared with: the sample's mean plus two standard errors
/// (at most [`MAX_DOUBT`] more), the slowest serial rate the sample allows, so that a run sheds
/// only when it is slower than the loop beyond the sample's own doubt (a few items of a
/// heavy-tailed cost). `None` without a sample's time.
pub(crate) fn serial_item_high(plan: &Plan) -> Option<f64> {
    let doubt = plan
        .sample()
        .filter(|s| s.count > 0 && s.cv.is_finite())
        .map_or(0.0, |s| {
            (2.0 * s.cv / (s.count as f64).sqrt()).min(MAX_DOUBT)
        });
    plan.item_time()
        .map(|d| d.as_secs_f64() * (1.0 + doubt))
        .filter(|t| t.is_finite() && *t > 0.0)
}

/// What one worker finished: items and chunks.
#[derive(Default)]
struct Tally {
    items: AtomicU64,
    chunks: AtomicU64,
}

/// A tally read at one moment.
#[derive(Clone, Copy, Default)]
struct Snapshot {
    items: u64,
    chunks: u64,
}

impl Tally {
    fn read(&self) -> Snapshot {
        Snapshot {
            items: self.items.load(Relaxed),
            chunks: self.chunks.load(Relaxed),
        }
    }
}

/// Where the current phase started, and what was measured before it.
struct State {
    /// Each worker's tally when the current phase started, and the items finished and
    /// claimed then.
    base: Vec<Snapshot>,
    /// The window of the next check.
    meter: Meter,
    /// Phases ended so far: workers, items finished by its end, and its end since the start.
    ended: Vec<(usize, u64, Duration)>,
    sheds: Vec<Shed>,
}

/// The closed loop of one parallel run.
pub(crate) struct Check {
    start: Instant,
    /// The sampled serial time per item, in seconds; the run checks nothing without it.
    serial_item: Option<f64>,
    predicted: Option<f64>,
    tallies: Vec<Tally>,
    /// Workers allowed to claim chunks: ids below it.
    allowed: AtomicUsize,
    /// Items claimed, counted while a check is pending.
    claimed: AtomicU64,
    /// Whether the run still checks itself: until it is down to one worker (and never without
    /// a serial rate to compare with).
    pending: AtomicUsize,
    state: Mutex<State>,
}

impl Check {
    /// The closed loop of a run of `plan` on `workers` workers that started at `start`; it
    /// checks nothing unless `shed`.
    pub(crate) fn new(workers: usize, plan: &Plan, start: Instant, shed: bool) -> Check {
        let serial_item = serial_item_high(plan).filter(|_| shed);
        Check {
            start,
            serial_item,
            predicted: plan.predicted_speedup(),
            tallies: (0..workers).map(|_| Tally::default()).collect(),
            allowed: AtomicUsize::new(workers),
            claimed: AtomicU64::new(0),
            pending: AtomicUsize::new(usize::from(serial_item.is_some() && workers > 1)),
            state: Mutex::new(State {
                base: vec![Snapshot::default(); workers],
                meter: Meter::new(start, 0),
                ended: Vec::new(),
                sheds: Vec::new(),
            }),
        }
    }

    /// Workers allowed to claim chunks now: those with ids below it.
    pub(crate) fn allowed(&self) -> usize {
        self.allowed.load(Relaxed)
    }

    /// Whether worker `id` may claim another chunk.
    pub(crate) fn allows(&self, id: usize) -> bool {
        id < self.allowed.load(Relaxed)
    }

    /// Worker `id` finished a chunk of `items` items; checks the run when it is due.
    pub(crate) fn finished(&self, id: usize, items: usize) {
        let Some(tally) = self.tallies.get(id) else {
            return;
        };
        tally.items.fetch_add(items as u64, Relaxed);
        tally.chunks.fetch_add(1, Relaxed);
        if self.pending.load(Relaxed) > 0 {
            self.check();
        }
    }

    /// Worker `id` claimed a chunk of `items` items (counted in the throughput as half done
    /// until it finishes).
    pub(crate) fn claimed(&self, items: usize) {
        if self.pending.load(Relaxed) > 0 {
            self.claimed.fetch_add(items as u64, Relaxed);
        }
    }

    /// Checks the run if it is due ([`Meter`]) and no other worker is checking it; the first
    /// window of a phase ends once every worker has finished [`CHECK_CHUNKS`] chunks (or
    /// [`CHECK_AFTER`] has passed, with as many chunks finished in all).
    fn check(&self) {
        let Ok(mut state) = self.state.try_lock() else {
            return;
        };
        let (Some(serial_item), Some(workers)) = (
            self.serial_item,
            NonZeroUsize::new(self.allowed.load(Relaxed)),
        ) else {
            return;
        };
        if self.pending.load(Relaxed) == 0 {
            return;
        }
        if !state.meter.may_be_due() {
            return;
        }
        let now: Vec<Snapshot> = self.tallies.iter().map(Tally::read).collect();
        let chunks: Vec<u64> = now[..workers.get()]
            .iter()
            .zip(&state.base)
            .map(|(n, b)| n.chunks - b.chunks)
            .collect();
        let least = chunks.iter().copied().min().unwrap_or(0);
        let total: u64 = chunks.iter().sum();
        if total < CHECK_CHUNKS * workers.get() as u64 {
            return;
        }
        let done: u64 = now.iter().map(|s| s.items).sum();
        let in_flight = self.claimed.load(Relaxed).saturating_sub(done);
        let Some(throughput) = state.meter.read(done, in_flight, least >= CHECK_CHUNKS) else {
            return;
        };
        state.base = now.clone();
        let speedup = throughput * serial_item;
        let Verdict::Shed(to) = judge(workers, speedup, self.predicted) else {
            return;
        };
        let at = self.start.elapsed();
        state.ended.push((workers.get(), done, at));
        state.sheds.push(Shed {
            after_items: done as usize,
            at,
            from: workers.get(),
            to: to.get(),
            measured_speedup: speedup,
            predicted_speedup: self.predicted,
        });
        // The next window is a first one again: every remaining worker finishes its chunks.
        state.meter.restart();
        self.allowed.store(to.get(), Relaxed);
        if to.get() == 1 {
            self.pending.store(0, Relaxed);
        }
    }

    /// The run's phases, the last ending with the run: `ran` items in `wall`.
    pub(crate) fn phases(&self, ran: usize, wall: Duration) -> Vec<Phase> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut phases = Vec::with_capacity(state.ended.len() + 1);
        let (mut items, mut at) = (0u64, Duration::ZERO);
        for &(workers, done, end) in &state.ended {
            phases.push(Phase::new(
                workers,
                (done - items) as usize,
                end.saturating_sub(at),
            ));
            (items, at) = (done, end);
        }
        phases.push(Phase::new(
            self.allowed.load(Relaxed),
            ran.saturating_sub(items as usize),
            wall.saturating_sub(at),
        ));
        phases
    }

    /// The sheds the run made, in order.
    pub(crate) fn into_sheds(self) -> Vec<Shed> {
        self.state
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
            .sheds
    }
}

/// A stretch of a run on a fixed number of workers: the run's start on the workers it was
/// planned with, then each stretch after the closed loop shed workers.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Phase {
    /// Workers allowed to claim chunks during the phase.
    pub workers: usize,
    /// Items finished during the phase.
    pub items: usize,
    /// Wall time of the phase.
    pub wall: Duration,
}

impl Phase {
    pub(crate) fn new(workers: usize, items: usize, wall: Duration) -> Phase {
        Phase {
            workers,
            items,
            wall,
        }
    }

    /// Items finished per second of wall time; `None` for a phase with no time or no items.
    pub fn throughput(&self) -> Option<f64> {
        let wall = self.wall.as_secs_f64();
        (wall > 0.0 && self.items > 0).then(|| self.items as f64 / wall)
    }
}

/// A change of the worker count made while the run went, because the measured throughput of
/// the workers together did not pay (see [`judge`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Shed {
    /// Items finished (in finished chunks) when the run shed workers.
    pub after_items: usize,
    /// Time since the run's start.
    pub at: Duration,
    /// Workers before.
    pub from: usize,
    /// Workers after (1: one worker, as the serial loop).
    pub to: usize,
    /// The workers' throughput together ÷ the serial rate of the sample, as measured then.
    pub measured_speedup: f64,
    /// The speedup the plan predicted, when it predicted one.
    pub predicted_speedup: Option<f64>,
}
