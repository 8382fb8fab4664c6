//! The closed loop of a parallel run: each worker tallies the chunks it finishes; once every
//! worker has finished a few (or a few milliseconds have passed), the worker that finishes the
//! next chunk compares the workers' throughput together with the serial rate the sample
//! measured, and [`judge`](crate::model::shed::judge) decides whether the run keeps its workers
//! or sheds some. A shed worker stops claiming after the chunk it holds, so every item still
//! runs exactly once. Worker 0 is never shed: the calling thread in a nested run, else
//! the first worker of the pool (the caller waits for it, as it waits for any run). The run's
//! first window is its warm-up and sheds only a run far slower than the loop
//! ([`WARM_UP_SHED_BELOW`]): threads just started or woken by it can wait a scheduler tick for
//! an idle core, and such a window can read a run that pays 2× as slower than the loop
//! (`examples/first_calls.rs`; figures in `docs/BENCH.md`).
//!
//! The sample's serial rate was measured on a few items, often cold ones (isolated, or the
//! first of the input), and can be slower than the loop runs them warm: a run whose workers
//! contend (the allocator, memory bandwidth) may then look faster than serial while it is not.
//! It can also be faster than the input's mean: a few items sampled from an input where one
//! in fifty costs 100× the others read as slower than the loop a run that pays 2×. So a run
//! that would shed, or that pays far less than predicted ([`TRIAL_BELOW`]), tries once first:
//! the other workers pause while worker 0 runs a window alone, on the run's own warm items,
//! and the workers' throughput together is judged against that serial rate instead
//! ([`Trial`]). Work that contends loses nothing to it: the window alone is what a shed to
//! one worker would run.

use crate::model::shed::{judge, Verdict};
pub(crate) use crate::report::{Phase, Shed};
use crate::Plan;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
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

/// Below this measured speedup a run sheds on its first window, the warm-up, too: half the
/// serial rate. Workers that share one core for a while (the worst a start-up gives) run at
/// about the serial rate: 0.7–1.0× on 2 cores (`examples/first_calls.rs`), while workers
/// that contend on a lock run at 0.3–0.5×.
pub(crate) const WARM_UP_SHED_BELOW: f64 = 0.5;

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

/// The serial time per item a run is compared with, and its relative standard error: the rate
/// an earlier run of a reused plan measured on its own items on one worker
/// ([`Plan::serial_alone`]) and that window's noise, else the sample's mean and cv ÷ √items.
/// `None` without either.
fn serial_item(plan: &Plan) -> Option<(f64, f64)> {
    if let Some(alone) = plan.serial_alone() {
        return Some((alone.item_time, alone.noise));
    }
    let noise = plan
        .sample()
        .filter(|s| s.count > 0 && s.cv.is_finite())
        .map_or(0.0, |s| s.cv / (s.count as f64).sqrt());
    plan.item_time()
        .map(|d| (d.as_secs_f64(), noise))
        .filter(|(t, _)| t.is_finite() && *t > 0.0)
}

/// The serial time per item a whole run is compared with ([`serial_item`]) raised by its
/// doubt: two standard errors, at most [`MAX_DOUBT`] more, the slowest serial rate the
/// measurement allows, so that a run sheds only when it is slower than the loop beyond the
/// doubt of what the serial rate rests on (a few items of a heavy-tailed cost).
pub(crate) fn serial_item_high(plan: &Plan) -> Option<f64> {
    serial_item(plan).map(|(t, noise)| t * (1.0 + doubt(&[noise])))
}

/// What one worker finished: items and chunks, and what the chunks' times say of the spread
/// of the time per item ([`Spread`]). Only its worker writes it.
#[derive(Default)]
struct Tally {
    items: AtomicU64,
    chunks: AtomicU64,
    /// Σ chunk time, in nanoseconds.
    busy: AtomicU64,
    /// Σ chunk time² ÷ chunk items, in nanoseconds², as `f64` bits.
    squares: AtomicU64,
    /// Σ chunk items².
    sizes: AtomicU64,
}

/// A tally read at one moment.
#[derive(Clone, Copy, Default)]
struct Snapshot {
    items: u64,
    chunks: u64,
    busy: u64,
    squares: f64,
    sizes: u64,
}

impl Tally {
    fn read(&self) -> Snapshot {
        Snapshot {
            items: self.items.load(Relaxed),
            chunks: self.chunks.load(Relaxed),
            busy: self.busy.load(Relaxed),
            squares: f64::from_bits(self.squares.load(Relaxed)),
            sizes: self.sizes.load(Relaxed),
        }
    }

    /// Its worker finished a chunk of `items` items in `took`.
    fn add(&self, items: usize, took: Duration) {
        let n = items as u64;
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.items.fetch_add(n, Relaxed);
        self.chunks.fetch_add(1, Relaxed);
        self.busy.fetch_add(ns, Relaxed);
        self.sizes.fetch_add(n.saturating_mul(n), Relaxed);
        if n > 0 {
            // One writer: a load and a store add without a race.
            let squares = f64::from_bits(self.squares.load(Relaxed));
            let ns = ns as f64;
            self.squares
                .store((squares + ns * ns / n as f64).to_bits(), Relaxed);
        }
    }
}

/// The chunks some workers finished over a window, as sums ([`Tally`]'s, since a base).
#[derive(Clone, Copy, Default)]
struct Spread {
    items: u64,
    chunks: u64,
    busy: f64,
    squares: f64,
    sizes: u64,
}

impl Spread {
    /// The chunks of `now` since `base`, worker by worker (since the run's start for a worker
    /// `base` lacks).
    fn since(now: &[Snapshot], base: &[Snapshot]) -> Spread {
        let zero = Snapshot::default();
        let base = base.iter().chain(std::iter::repeat(&zero));
        now.iter()
            .zip(base)
            .fold(Spread::default(), |sum, (n, b)| Spread {
                items: sum.items + n.items.saturating_sub(b.items),
                chunks: sum.chunks + n.chunks.saturating_sub(b.chunks),
                busy: sum.busy + n.busy.saturating_sub(b.busy) as f64,
                squares: sum.squares + (n.squares - b.squares).max(0.0),
                sizes: sum.sizes + n.sizes.saturating_sub(b.sizes),
            })
    }

    /// The spread of the time per item as its chunks' times show it: the coefficient of
    /// variation of one item's time. Chunks of `n` items whose items spread by σ about a mean
    /// `m` vary by σ² ÷ n about it, so the items-weighted variance `v` of the chunks' times
    /// per item is about σ² × (chunks, equal in effect) ÷ items: σ² ≈ `v` × Σ n² ÷ items.
    /// 0 with fewer than two chunks (nothing to tell a spread from).
    fn cv(&self) -> f64 {
        if self.chunks < 2 || self.items == 0 || self.sizes == 0 || self.busy <= 0.0 {
            return 0.0;
        }
        let n = self.items as f64;
        let mean = self.busy / n;
        let variance = (self.squares / n - mean * mean).max(0.0);
        let cv = (variance * self.sizes as f64 / n).sqrt() / mean;
        if cv.is_finite() {
            cv
        } else {
            0.0
        }
    }
}

/// The relative standard error of the mean time per item over a window of `items` items, when
/// one item's time varies by `cv`: which items a window happened to run moves its rate by
/// about this much (one item in fifty costing 100× the others, a cv of about 5: a third over
/// two hundred items). `cv` comes from the chunks of the whole run so far ([`Spread::cv`]),
/// which show the input's spread better than one short window, that may hold none of its
/// costly items.
fn noise(cv: f64, items: u64) -> f64 {
    if items == 0 {
        0.0
    } else {
        cv / (items as f64).sqrt()
    }
}

/// How much the windows' own noise (each [`noise`]) raises a speedup measured as the
/// ratio of their rates before it is judged: two standard errors of the ratio, at most
/// [`MAX_DOUBT`], so that a run sheds only when it is slower than the loop beyond what the
/// items each window ran can explain.
fn doubt(noises: &[f64]) -> f64 {
    let variance: f64 = noises.iter().map(|e| e * e).sum();
    (2.0 * variance.sqrt()).min(MAX_DOUBT)
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
    /// The trial running, and whether one ran.
    trial: Option<Trial>,
    tried: bool,
    /// Whether the run's first window has passed ([`Check::check`] judges none before).
    warmed: bool,
    /// The serial time per item a trial measured on the run's own items, and its window's
    /// noise ([`noise`]): later windows are judged against it rather than the sample's.
    trial_item: Option<(f64, f64)>,
    /// The trial's window alone, when one ran to its end, and its noise ([`noise`]).
    alone: Option<(Phase, f64)>,
    /// Whether [`judge`] has ruled on a window of the run: kept its workers or shed some
    /// (the warm-up passes unjudged, and a trial that the run's end cut short rules nothing).
    judged: bool,
}

/// A run whose measured speedup (against the sample) is below this share of the prediction
/// measures the serial rate on its own items ([`Trial`]) before it goes on: 0.8, so that a
/// plan that pays about what it predicted (within the sample's noise) never pays the trial,
/// while a run at 1.1× of a predicted 1.5× does.
pub(crate) const TRIAL_BELOW: f64 = 0.8;

/// The noise ([`noise`]) a trial's window alone runs down to, when the run's items spread:
/// a tenth, so that which items the window happened to run moves the serial rate it measures
/// by about a tenth (two hundred items of a cv of 1.4; two thousand of a cv of 4.5), unless
/// [`TRIAL_LONGEST`] ends it first.
pub(crate) const TRIAL_NOISE: f64 = 0.1;

/// The longest a trial's window alone runs for its noise to come down ([`TRIAL_NOISE`]):
/// 20 ms, four times the longest first window ([`CHECK_AFTER`]), what a shed to one worker
/// would run anyway while work that contends sheds.
pub(crate) const TRIAL_LONGEST: Duration = Duration::from_millis(20);

/// How long the paused workers wait for a trial to end before they go on regardless: a trial
/// lasts a first window ([`CHECK_MIN_WINDOW`] to [`CHECK_AFTER`] and a few chunks, up to
/// [`TRIAL_LONGEST`] on items that spread) after at most half this for the others to pause;
/// when the run ends first, nothing judges it, and they must not wait forever.
pub(crate) const TRIAL_WAIT: Duration = Duration::from_millis(60);

/// How often a paused worker looks whether the trial has ended.
const TRIAL_POLL: Duration = Duration::from_micros(100);

/// A serial window on the run's own items: worker 0 alone, the others paused, to measure the
/// serial rate that the workers' throughput together is then judged against.
struct Trial {
    /// Workers before the trial, their throughput together, items per second, that window's
    /// noise ([`noise`]), and the spread of the time per item over the run so far
    /// ([`Spread::cv`]).
    workers: usize,
    throughput: f64,
    noise: f64,
    cv: f64,
    /// When the trial began.
    began: Instant,
    /// Worker 0's items finished when the others had all paused (its window alone starts
    /// there), and when; `None` until then.
    alone_from: Option<(u64, Instant)>,
}

/// The closed loop of one parallel run.
pub(crate) struct Check {
    start: Instant,
    /// The serial time per item, in seconds, and its noise ([`serial_item`]); the run checks
    /// nothing without it.
    serial_item: Option<(f64, f64)>,
    predicted: Option<f64>,
    tallies: Vec<Tally>,
    /// Workers allowed to claim chunks: ids below it.
    allowed: AtomicUsize,
    /// Items claimed, counted while a check is pending.
    claimed: AtomicU64,
    /// Whether the run still checks itself: until it is down to one worker (and never without
    /// a serial rate to compare with).
    pending: AtomicUsize,
    /// Items the run is for, when known: a trial only pays while much of them is left.
    items: Option<u64>,
    /// Whether a trial runs: workers other than 0 wait in [`allows`](Check::allows).
    trialing: AtomicBool,
    /// Workers waiting in [`allows`](Check::allows) for a trial to end.
    paused: AtomicUsize,
    /// Whether a worker found nothing left to claim: nobody waits for a trial then.
    drained: AtomicBool,
    state: Mutex<State>,
}

impl Check {
    /// The closed loop of a run of `plan` on `workers` workers that started at `start`; it
    /// checks nothing unless `shed`.
    pub(crate) fn new(workers: usize, plan: &Plan, start: Instant, shed: bool) -> Check {
        let serial_item = serial_item(plan).filter(|_| shed);
        Check {
            start,
            serial_item,
            predicted: plan.predicted_speedup(),
            tallies: (0..workers).map(|_| Tally::default()).collect(),
            allowed: AtomicUsize::new(workers),
            claimed: AtomicU64::new(0),
            pending: AtomicUsize::new(usize::from(serial_item.is_some() && workers > 1)),
            items: plan.items().map(|n| n as u64),
            trialing: AtomicBool::new(false),
            paused: AtomicUsize::new(0),
            drained: AtomicBool::new(false),
            state: Mutex::new(State {
                base: vec![Snapshot::default(); workers],
                meter: Meter::new(start, 0),
                ended: Vec::new(),
                sheds: Vec::new(),
                trial: None,
                tried: false,
                warmed: false,
                trial_item: None,
                alone: None,
                judged: false,
            }),
        }
    }

    /// Workers allowed to claim chunks now: those with ids below it.
    pub(crate) fn allowed(&self) -> usize {
        self.allowed.load(Relaxed)
    }

    /// Whether worker `id` may claim another chunk; during a trial, workers other than 0 wait
    /// here until it ends (at most [`TRIAL_WAIT`]).
    pub(crate) fn allows(&self, id: usize) -> bool {
        if id > 0 && self.trialing.load(Relaxed) {
            let began = Instant::now();
            self.paused.fetch_add(1, Relaxed);
            while self.trialing.load(Relaxed)
                && !self.drained.load(Relaxed)
                && began.elapsed() < TRIAL_WAIT
            {
                std::thread::sleep(TRIAL_POLL);
            }
            self.paused.fetch_sub(1, Relaxed);
            if self.drained.load(Relaxed) {
                return false;
            }
            if self.trialing.load(Relaxed) {
                // Nothing ended the trial: the run is over, or worker 0 is held up; going on
                // claims what is left, if anything.
                return true;
            }
        }
        id < self.allowed.load(Relaxed)
    }

    /// Whether a trial runs (worker 0 alone for a window; the workers come back after it,
    /// unless it sheds them).
    pub(crate) fn trialing(&self) -> bool {
        self.trialing.load(Relaxed)
    }

    /// A worker found nothing left to claim: workers paused for a trial stop waiting.
    pub(crate) fn drained(&self) {
        self.drained.store(true, Relaxed);
    }

    /// More work to claim (the next window of pieces): paused workers wait for a trial again.
    pub(crate) fn refilled(&self) {
        self.drained.store(false, Relaxed);
    }

    /// Worker `id` finished a chunk of `items` items in `took`; checks the run when it is due.
    pub(crate) fn finished(&self, id: usize, items: usize, took: Duration) {
        let Some(tally) = self.tallies.get(id) else {
            return;
        };
        tally.add(items, took);
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
    /// [`CHECK_AFTER`] has passed, with as many chunks finished in all). The run's very first
    /// window is a warm-up ([`WARM_UP_SHED_BELOW`]).
    fn check(&self) {
        let Ok(mut state) = self.state.try_lock() else {
            return;
        };
        let (Some((serial_item, serial_noise)), Some(workers)) = (
            state.trial_item.or(self.serial_item),
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
        if state.trial.is_some() {
            self.end_trial(&mut state, &now);
            return;
        }
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
        let cv = Spread::since(&now, &[]).cv();
        let noise = noise(cv, Spread::since(&now, &state.base).items);
        state.base = now.clone();
        let speedup = throughput * serial_item;
        // The window's items, and those the serial rate rests on, may differ from the input's
        // by chance: the figure is judged at the top of what their noise allows (and a
        // verdict to shed measures a trial first).
        let doubt = 1.0 + doubt(&[noise, serial_noise]);
        let judged = speedup * doubt;
        if !state.warmed {
            // The run's first window is its warm-up: the next, twice as long, is judged.
            // Threads just started or woken can wait for a core while another idles (the
            // scheduler spreads them at its next balance, up to a tick later): such a window
            // reads a run that pays as about as slow as the loop. Only a run far slower than
            // that sheds on it, so that short calls of work that contends still shed.
            state.warmed = true;
            if judged >= WARM_UP_SHED_BELOW {
                return;
            }
        }
        let verdict = judge(workers, judged, self.predicted);
        let range = (speedup / doubt, judged);
        match verdict {
            _ if self.worth_a_trial(&state, workers.get(), (range, verdict), done) => {
                let at = self.start.elapsed();
                state.ended.push((workers.get(), done, at));
                state.tried = true;
                state.trial = Some(Trial {
                    workers: workers.get(),
                    throughput,
                    noise,
                    cv,
                    began: Instant::now(),
                    alone_from: None,
                });
                state.meter.restart();
                self.allowed.store(1, Relaxed);
                self.trialing.store(true, Relaxed);
            }
            Verdict::Shed(to) => {
                state.judged = true;
                let from = workers.get();
                self.shed(&mut state, (from, from), to, speedup, done);
            }
            Verdict::Keep => state.judged = true,
        }
    }

    /// Whether a run of `workers` measured at a speedup between `low` and `high` (against the
    /// sample, or a trial's rate; the range its noise allows) after `done` items, which
    /// [`judge`] gave `verdict`, should measure the serial rate on its own items first: once,
    /// with at least as much of the run left as done, when the figure says the serial rate
    /// may be off: a shed (the sample may have missed the input's costly items: a run of items
    /// heavier than sampled reads as slower than the loop, and a shed on that figure would
    /// run serially work that pays), far below the prediction ([`TRIAL_BELOW`]), or above what
    /// the workers could give (the sample slower than the loop). A trial runs worker 0 alone,
    /// as a shed to one would: work that contends loses nothing to it.
    fn worth_a_trial(
        &self,
        state: &State,
        workers: usize,
        ((low, high), verdict): ((f64, f64), Verdict),
        done: u64,
    ) -> bool {
        let Some(items) = self.items else {
            return false;
        };
        let shed = verdict != Verdict::Keep;
        let below = self.predicted.is_some_and(|p| high < TRIAL_BELOW * p);
        let beyond = low > workers as f64;
        !state.tried && (shed || below || beyond) && items.saturating_sub(done) >= done
    }

    /// Ends the trial once worker 0 has run a first window alone (from the chunk it finished
    /// after the others had all paused): the workers' throughput together before it ÷ worker
    /// 0's alone is the speedup the run measured on its own items, and [`judge`] decides on it.
    fn end_trial(&self, state: &mut State, now: &[Snapshot]) {
        let Some(trial) = &mut state.trial else {
            return;
        };
        let all_paused = self.paused.load(Relaxed) + 1 >= trial.workers;
        let Some((from, at)) = trial.alone_from else {
            // A worker that does not pause within half the wait is held up in a long chunk;
            // the window then starts with it still running, which only makes the serial rate
            // look slower (the run keeps its workers rather than shed them wrongly).
            if all_paused || trial.began.elapsed() >= TRIAL_WAIT / 2 {
                trial.alone_from = Some((now[0].items, Instant::now()));
                state.base[0] = now[0];
            }
            return;
        };
        let alone = now[0].items.saturating_sub(from);
        let elapsed = at.elapsed();
        let noise = noise(trial.cv, alone);
        let over = (alone > 0 && now[0].chunks >= state.base[0].chunks + CHECK_CHUNKS
            || elapsed >= CHECK_AFTER)
            && elapsed >= CHECK_MIN_WINDOW
            && (noise <= TRIAL_NOISE || elapsed >= TRIAL_LONGEST);
        if !over || alone == 0 {
            return;
        }
        let serial = alone as f64 / elapsed.as_secs_f64();
        let (workers, speedup) = (trial.workers, trial.throughput / serial);
        let judged = speedup * (1.0 + doubt(&[trial.noise, noise]));
        let done: u64 = now.iter().map(|s| s.items).sum();
        state.trial = None;
        state.judged = true;
        state.alone = Some((Phase::new(1, alone as usize, elapsed), noise));
        state.base = now.to_vec();
        let whole = NonZeroUsize::new(workers).unwrap_or(NonZeroUsize::MIN);
        match judge(whole, judged, self.predicted) {
            Verdict::Shed(to) => self.shed(state, (1, workers), to, speedup, done),
            Verdict::Keep => {
                state.trial_item = Some((1.0 / serial, noise));
                state.ended.push((1, done, self.start.elapsed()));
                let in_flight = self.claimed.load(Relaxed).saturating_sub(done);
                state.meter = Meter::new(Instant::now(), done);
                state.meter.in_flight = in_flight;
                self.allowed.store(workers, Relaxed);
            }
        }
        self.trialing.store(false, Relaxed);
    }

    /// Sheds to `to` workers from `(ran, from)`: the workers of the phase ending now, and those
    /// the run had in parallel (the same, but after a trial).
    fn shed(
        &self,
        state: &mut State,
        (ran, from): (usize, usize),
        to: NonZeroUsize,
        speedup: f64,
        done: u64,
    ) {
        let at = self.start.elapsed();
        state.ended.push((ran, done, at));
        state.sheds.push(Shed {
            after_items: done as usize,
            at,
            from,
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

    /// What the closed loop made of the run, once it has ended with `ran` items in `wall`.
    pub(crate) fn into_ruling(self, ran: usize, wall: Duration) -> Ruling {
        let workers = self.allowed.load(Relaxed);
        let state = self
            .state
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
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
            workers,
            ran.saturating_sub(items as usize),
            wall.saturating_sub(at),
        ));
        Ruling {
            phases,
            sheds: state.sheds,
            judged: state.judged,
            alone: state.alone,
        }
    }
}

/// What the closed loop made of a run ([`Check::into_ruling`]).
pub(crate) struct Ruling {
    /// The run's phases, the last ending with the run.
    pub(crate) phases: Vec<Phase>,
    /// The sheds it made, in order.
    pub(crate) sheds: Vec<Shed>,
    /// Whether it ruled on the run while it ran: a run too short for a window past the
    /// warm-up is judged whole once it has ended ([`learn`](super::batch::learn)).
    pub(crate) judged: bool,
    /// The serial rate a trial measured on the run's own items: its window alone, when one
    /// ran to its end, and its noise.
    pub(crate) alone: Option<(Phase, f64)>,
}
