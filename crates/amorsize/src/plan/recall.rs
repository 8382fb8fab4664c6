//! The reuse and recall policy: what the planner takes from past runs, and when. The process's
//! disk cache ([`with_default`]) is read before planning and written after running, and the
//! process's memory beside it keeps decisions for calls close together, workloads too short to
//! be worth a write, and runs that shed their workers. Where the disk cache is not built in
//! (feature `cache`), off or unusable, or a call's options leave it out, what a run teaches is
//! kept in memory only. The cache only stores; the arithmetic of contention is the model's.

#[cfg(feature = "cache")]
use crate::cache::{with_default, RunFacts};
use crate::cache::{WorkloadHistory, WorkloadKey};
use crate::model::{Learned, RunContention, Workload};
use crate::sample::Sample;
use crate::Plan;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Workloads not recorded on disk (too short to be worth it, [`MIN_WORTH`], or with no disk
/// cache) whose contention this process remembers, at most; the least recently taught is
/// forgotten beyond it.
pub const SHORT_REMEMBERED: usize = 64;

/// What this process learned of a short workload, and when.
struct Short {
    key: WorkloadKey,
    learned: Learned,
    at: Instant,
}

/// Contention learned from runs not recorded on disk (too short to be worth a write to the
/// file, or with no disk cache): kept in memory, so that a workload called again in this
/// process (a loop of small batches) plans with what its last parallel run measured instead
/// of repeating a loss. Most recently taught last.
static SHORT: Mutex<Vec<Short>> = Mutex::new(Vec::new());

/// The contention this process learned in memory for the workload `key`, as it applies under the
/// load now (read only when there is something to apply it to); `None` when it learned none.
pub(crate) fn recall_short(key: &WorkloadKey, load_now: impl FnOnce() -> f64) -> Option<f64> {
    let (learned, age) = {
        let short = SHORT.lock().unwrap_or_else(PoisonError::into_inner);
        let s = short.iter().find(|s| s.key == *key)?;
        (s.learned, s.at.elapsed())
    };
    Some(crate::model::contention_now(
        learned.alpha,
        learned.load,
        age,
        load_now(),
    ))
}

/// What the run of `plan` over `items` items in `wall` says of the workload's contention, and
/// the contention its prediction included.
fn run_contention(plan: &Plan, wall: Duration, items: usize) -> (RunContention, f64) {
    let load = plan
        .caps()
        .and_then(|c| c.load.as_ref())
        .map_or(0.0, |l| l.competing);
    let prediction = plan.prediction().filter(|_| plan.is_parallel());
    let items = plan.items().unwrap_or(items);
    RunContention::of(prediction, items, wall.as_secs_f64(), load)
}

/// Learns in memory from a run of `key` not recorded on disk, by the rule the disk cache
/// follows ([`Learned::after`]).
fn remember_short(key: &WorkloadKey, plan: &Plan, wall: Duration, items: usize) {
    let (run, _) = run_contention(plan, wall, items);
    let mut short = SHORT.lock().unwrap_or_else(PoisonError::into_inner);
    let at = short.iter().position(|s| s.key == *key);
    let entry = match (at, run.estimate) {
        (Some(at), _) => short.remove(at),
        // Nothing learned and nothing to fade.
        (None, None) => return,
        (None, Some(_)) => Short {
            key: key.clone(),
            learned: Learned::nothing(0),
            at: Instant::now(),
        },
    };
    let learned = entry.learned.after(&run, 0);
    let at = if run.estimate.is_some() {
        Instant::now()
    } else {
        entry.at
    };
    short.push(Short {
        learned,
        at,
        ..entry
    });
    if short.len() > SHORT_REMEMBERED {
        short.remove(0);
    }
}

impl Plan {
    /// The run of this plan over `items` items in `wall` as the disk cache records it.
    #[cfg(feature = "cache")]
    pub fn run_facts(&self, wall: Duration, items: usize) -> RunFacts {
        let (contention, contention_used) = run_contention(self, wall, items);
        RunFacts {
            plan: serde_json::to_string(self).unwrap_or_default(),
            workers: self.workers().get(),
            chunk: self.chunk_size().get(),
            items,
            wall,
            predicted: self.predicted_time(),
            predicted_serial: self.predicted_serial_time(),
            contention,
            contention_used,
        }
    }
}

/// How long after its last use a decision from a full sample (serial or parallel) stands for
/// the same workload called again in this process: 2 s, short against how long a load on the
/// machine lasts, long against the pause between two calls of a loop that does other work
/// between them (a second or so: the other strategies between two calls of the bench's
/// `slow`). Each use checks the decision (the glance a serial one, the run a parallel one), so
/// the time runs from the last use. Past it, the next call samples and plans afresh.
pub const RECALL_FOR: Duration = Duration::from_secs(2);

/// Calls that may reuse one decision before the next one samples and plans afresh: 16,
/// so that a workload that has changed shape is seen within a few calls, while a loop of small
/// batches pays the sample on one call in 17.
pub const RECALL_TIMES: u32 = 16;

/// How much slower than at the decision the glance's items may be for the decision to stand:
/// twice. A glance times eight items across the input one by one, each often a miss to memory,
/// so its figure varies by that much from call to call without the work changing.
pub const RECALL_GLANCE_FACTOR: f64 = 2.0;

/// What a full sample decided, kept for the next calls of the same workload.
enum Decision {
    /// Parallelism refused for the work's size: the serial time of the input, the best
    /// speedup a parallel plan reached and the threshold it had to reach (the caller's, or
    /// higher for a sample too small to trust), with the glance's time per item when it was
    /// made. `unmeasured`: refused because the thread costs were not worth finding for it, with
    /// the most a parallel plan could have saved
    /// ([`Reason::NotWorthMeasuring`](crate::plan::Reason::NotWorthMeasuring)).
    Serial {
        glance_item: f64,
        serial: f64,
        best_speedup: f64,
        refused_at: f64,
        unmeasured: Option<f64>,
    },
    /// A parallel plan, reused as it is.
    Parallel(Box<Plan>),
}

/// A decision this process made from a full sample.
struct Recent {
    key: WorkloadKey,
    items: usize,
    threshold: f64,
    decision: Decision,
    /// When the decision was made.
    made: Instant,
    /// When it was made or last reused.
    used: Instant,
    reused: u32,
    /// A parallel plan's first run: its wall time per item, which the later runs are held to.
    ran: Option<f64>,
}

/// Decisions from full samples, most recent last, at most [`SHORT_REMEMBERED`].
static RECENT: Mutex<Vec<Recent>> = Mutex::new(Vec::new());

/// Parallel plans in [`RECENT`], read without the lock: while there are none (a program whose
/// every call runs serially), a call looks for one at the cost of one load.
static PARALLEL_NOTED: AtomicUsize = AtomicUsize::new(0);

/// Updates [`PARALLEL_NOTED`] after a change of `recent`.
fn count_parallel(recent: &[Recent]) {
    let parallel = recent
        .iter()
        .filter(|r| matches!(r.decision, Decision::Parallel(_)))
        .count();
    PARALLEL_NOTED.store(parallel, Ordering::Relaxed);
}

/// What [`recall_serial`] found: a serial decision that stands.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Recalled {
    /// The serial time of the input now, at the decision's time per item.
    pub(crate) serial: f64,
    /// The best speedup the decision found for a parallel plan.
    pub(crate) best_speedup: f64,
    /// The threshold that speedup had to reach.
    pub(crate) threshold: f64,
    /// For a decision made because the thread costs were not worth finding: the most a
    /// parallel plan could save now (to weigh against finding them again).
    pub(crate) unmeasured: Option<f64>,
    /// Seconds since the decision.
    pub(crate) age: f64,
    /// Calls that reused it, this one included.
    pub(crate) reused: u32,
}

/// Notes the serial rate a parallel run of `key`'s plan measured on its own items: the next
/// calls that reuse the plan ([`recall_parallel`]) carry it.
pub(crate) fn note_serial_alone(key: &WorkloadKey, serial: crate::plan::SerialAlone) {
    if PARALLEL_NOTED.load(Ordering::Relaxed) == 0 {
        return;
    }
    let mut recent = RECENT.lock().unwrap_or_else(PoisonError::into_inner);
    for r in recent.iter_mut().filter(|r| r.key == *key) {
        if let Decision::Parallel(plan) = &mut r.decision {
            plan.serial_alone = Some(serial);
        }
    }
}

/// Whether `plan`'s work is short enough that a full sample is a large share of its call
/// ([`MIN_WORTH`]): a refusal for contention is then recalled, so that its calls do not each
/// pay a sample; a longer call samples again, and the contention it learned fades with each
/// serial run ([`crate::model::contention`]) until parallel is tried again.
fn short(plan: &Plan) -> bool {
    plan.predicted_serial_time().is_some_and(|t| t < MIN_WORTH)
}

/// Notes the plan a full sample of `key` led to, for `items` items whose glance took
/// `glance_item` each, under the caller's `threshold`. A serial plan refused for the work's
/// size, or for the contention its workers were measured to meet when the work is short
/// ([`short`]) (not for a limit or the load of the moment, which change), is kept for
/// [`recall_serial`]; a parallel plan, when `reusable` (the options left the plan to the
/// sample), for [`recall_parallel`]; any other plan forgets the key's.
pub(crate) fn note_plan(
    key: &WorkloadKey,
    items: usize,
    glance_item: f64,
    threshold: f64,
    plan: &Plan,
    reusable: bool,
) {
    let decision = if plan.is_parallel() {
        reusable.then(|| Decision::Parallel(Box::new(plan.clone())))
    } else {
        let refused = match plan.reason() {
            crate::plan::Reason::TooSmall {
                serial,
                best_speedup,
                threshold,
                ..
            } => Some((*serial, *best_speedup, *threshold, None)),
            crate::plan::Reason::Contended { .. } if !short(plan) => None,
            crate::plan::Reason::TooFast {
                best_speedup,
                threshold,
                ..
            }
            | crate::plan::Reason::Contended {
                best_speedup,
                threshold,
            } => Some((
                plan.predicted_serial_time()
                    .map_or(0.0, |d| d.as_secs_f64()),
                *best_speedup,
                *threshold,
                None,
            )),
            crate::plan::Reason::NotWorthMeasuring { serial, gain, .. } => Some((
                *serial,
                *serial / (*serial - *gain).max(f64::MIN_POSITIVE),
                threshold,
                Some(*gain),
            )),
            _ => None,
        };
        // A refusal that held only because the sample ran most of the input (a few heavy
        // items) says nothing of the next call, whose input is whole again.
        let sample_left_enough = match (plan.sample(), plan.items()) {
            (Some(sample), Some(left)) => left >= sample.count,
            _ => true,
        };
        refused
            .filter(|_| sample_left_enough && glance_item.is_finite() && glance_item > 0.0)
            .map(
                |(serial, best_speedup, refused_at, unmeasured)| Decision::Serial {
                    glance_item,
                    serial,
                    best_speedup,
                    refused_at,
                    unmeasured,
                },
            )
    };
    let mut recent = RECENT.lock().unwrap_or_else(PoisonError::into_inner);
    recent.retain(|r| r.key != *key);
    if let Some(decision) = decision.filter(|_| items > 0) {
        recent.push(Recent {
            key: key.clone(),
            items,
            threshold,
            decision,
            made: Instant::now(),
            used: Instant::now(),
            reused: 0,
            ran: None,
        });
        if recent.len() > SHORT_REMEMBERED {
            recent.remove(0);
        }
    }
    count_parallel(&recent);
}

/// The decision noted for `key`, parallel or not, that stands for `items` items, with `fits`
/// judging it: one made or last reused within [`RECALL_FOR`], reused fewer than
/// [`RECALL_TIMES`] times, for at most a quarter more items. Counts the reuse, and returns it with the decision's age; a
/// decision that does not stand is forgotten, so that the next plan samples and notes afresh.
fn recall_decision<T>(
    key: &WorkloadKey,
    parallel: bool,
    items: usize,
    fits: impl FnOnce(&Recent) -> Option<T>,
) -> Option<(T, f64, u32)> {
    let mut recent = RECENT.lock().unwrap_or_else(PoisonError::into_inner);
    let at = recent
        .iter()
        .position(|r| r.key == *key && parallel == matches!(r.decision, Decision::Parallel(_)))?;
    let r = &mut recent[at];
    let found = (r.used.elapsed() < RECALL_FOR
        && r.reused < RECALL_TIMES
        && items.saturating_mul(4) <= r.items.saturating_mul(5))
    .then(|| fits(r))
    .flatten();
    let Some(found) = found else {
        recent.remove(at);
        count_parallel(&recent);
        return None;
    };
    r.reused += 1;
    r.used = Instant::now();
    Some((found, r.made.elapsed().as_secs_f64(), r.reused))
}

/// The serial decision that stands for `items` items of `key` whose glance took `glance_item`
/// each, as [`recall_decision`] judges it, under as high a threshold, while the glance finds
/// items at most [`RECALL_GLANCE_FACTOR`] times slower than when it was made.
pub(crate) fn recall_serial(
    key: &WorkloadKey,
    items: usize,
    glance_item: f64,
    threshold: f64,
) -> Option<Recalled> {
    let fits = |r: &Recent| match r.decision {
        Decision::Serial {
            glance_item: then,
            serial,
            best_speedup,
            refused_at,
            unmeasured,
        } if threshold >= r.threshold && glance_item <= then * RECALL_GLANCE_FACTOR => {
            let scale = items as f64 / r.items as f64;
            Some((
                serial * scale,
                best_speedup,
                refused_at,
                unmeasured.map(|gain| gain * scale),
            ))
        }
        _ => None,
    };
    let ((serial, best_speedup, threshold, unmeasured), age, reused) =
        recall_decision(key, false, items, fits)?;
    Some(Recalled {
        serial,
        best_speedup,
        threshold,
        unmeasured,
        age,
        reused,
    })
}

/// The parallel plan that stands for `items` items of the workload `key` (made only when this
/// process noted any parallel plan), as [`recall_decision`] judges it, under as low a
/// threshold, for at least four fifths of the items it was made for; returned as it applies
/// to `items` items ([`Plan::reused`]). Nothing runs to check it first: the run that follows
/// checks it ([`remember`] forgets a plan whose run took more than [`RECALL_DRIFT`] times as
/// long per item as the plan's first run, or less than its inverse).
///
/// A parallel plan made a moment ago stands for the same reasons as a serial one, and the
/// sample it spares runs serially: for a few slow items, one item of the sample is a round of
/// the whole parallel run.
pub(crate) fn recall_parallel(
    key: impl FnOnce() -> WorkloadKey,
    items: usize,
    threshold: f64,
) -> Option<Plan> {
    if PARALLEL_NOTED.load(Ordering::Relaxed) == 0 {
        return None;
    }
    let fits = |r: &Recent| match &r.decision {
        Decision::Parallel(plan)
            if threshold <= r.threshold && items.saturating_mul(5) >= r.items.saturating_mul(4) =>
        {
            Some(plan.clone())
        }
        _ => None,
    };
    let (plan, age, reused) = recall_decision(&key(), true, items, fits)?;
    Some(plan.reused(items, age, reused))
}

/// How far a run of a reused parallel plan may stray from the plan's first run, in time per
/// item, before the plan is forgotten: twice as long, or half. Within it the noise of a shared
/// machine (runs of the same work vary by ±10–30 % on a busy 2-core machine); beyond it, the
/// work has changed shape (items of another size under the same key) or the machine's load
/// has. The first run, not the prediction, is the reference: a sample that is off by a steady
/// factor (items timed one by one that stream from memory faster in a loop, or a few items
/// that caught one of a rare kind of slow item) would be off again if sampled afresh.
pub const RECALL_DRIFT: f64 = 2.0;

/// Holds a run of the parallel plan noted for `key` (`plan`, `items` items in `wall`) to the
/// plan's first run: the first run sets the reference, and a later one that strays from it by
/// more than [`RECALL_DRIFT`] forgets the plan.
fn check_noted(key: &WorkloadKey, plan: &Plan, wall: Duration, items: usize) {
    if PARALLEL_NOTED.load(Ordering::Relaxed) == 0 || !plan.is_parallel() || items == 0 {
        return;
    }
    let per_item = wall.as_secs_f64() / items as f64;
    let mut recent = RECENT.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(at) = recent
        .iter()
        .position(|r| r.key == *key && matches!(r.decision, Decision::Parallel(_)))
    else {
        return;
    };
    let entry = &mut recent[at];
    let Some(first) = entry.ran else {
        entry.ran = Some(per_item);
        return;
    };
    let ratio = per_item / first;
    if !(ratio.is_finite() && (1.0 / RECALL_DRIFT..=RECALL_DRIFT).contains(&ratio)) {
        recent.remove(at);
        count_parallel(&recent);
    }
}

/// How long a shed is remembered: a minute, long beside a loop of calls, short beside how
/// long the load of other programs lasts; afterwards the workload is planned afresh.
pub const SHED_REMEMBERED_FOR: Duration = Duration::from_secs(60);

/// What a parallel run that shed its workers taught about a workload.
struct ShedNote {
    key: WorkloadKey,
    /// The plan that shed, as it ran.
    plan: Box<Plan>,
    measured: f64,
    workers: usize,
    at: Instant,
    /// Serial time, in seconds, still to run before parallel is tried again.
    owed: f64,
    /// The span set at the last shed ([`crate::model::shed::backoff_span`]).
    span: f64,
    /// Calls that ran serially for it so far.
    calls: u32,
}

/// Workloads whose parallel runs shed their workers, most recent last, at most
/// [`SHORT_REMEMBERED`].
static SHED: Mutex<Vec<ShedNote>> = Mutex::new(Vec::new());

/// Notes in [`SHED`], read without the lock: while there are none, a call looks for one at
/// the cost of one load (and builds no key).
static SHED_NOTED: AtomicUsize = AtomicUsize::new(0);

/// [`recall_shed`], with the key built only when some workload has shed in this process.
pub(crate) fn recall_shed_if_any(key: impl FnOnce() -> WorkloadKey, items: usize) -> Option<Plan> {
    if SHED_NOTED.load(Ordering::Relaxed) == 0 {
        return None;
    }
    recall_shed(&key(), items)
}

/// Notes that a run of `plan` for `key` shed its workers: its `workers` workers together ran
/// at `measured` times the serial rate for `ran_for` before the shed. A parallel plan noted
/// for reuse is forgotten; the next calls run serially until the serial work since, this run's
/// included, spans what [`crate::model::shed::backoff_span`] asks for the loss (at least
/// doubled when the workload had shed before).
pub(crate) fn note_shed(
    key: &WorkloadKey,
    plan: &Plan,
    (measured, workers): (f64, usize),
    ran_for: std::time::Duration,
) {
    {
        let mut recent = RECENT.lock().unwrap_or_else(PoisonError::into_inner);
        recent.retain(|r| r.key != *key);
        count_parallel(&recent);
    }
    let lost = ran_for.as_secs_f64() * (1.0 - measured);
    let mut shed = SHED.lock().unwrap_or_else(PoisonError::into_inner);
    let earlier = shed
        .iter()
        .position(|s| s.key == *key)
        .map(|at| shed.remove(at).span);
    let Some(span) = crate::model::shed::backoff_span(lost, earlier) else {
        return;
    };
    let this_call = plan
        .predicted_serial_time()
        .map_or(0.0, |d| d.as_secs_f64());
    shed.push(ShedNote {
        key: key.clone(),
        plan: Box::new(plan.clone()),
        measured,
        workers,
        at: Instant::now(),
        owed: span - this_call,
        span,
        calls: 0,
    });
    if shed.len() > SHORT_REMEMBERED {
        shed.remove(0);
    }
    SHED_NOTED.store(shed.len(), Ordering::Relaxed);
}

/// Workloads whose last parallel run, too short for the closed loop to judge while it ran,
/// measured slower than the loop once, with no back-off before: one more such run starts one
/// ([`confirm_slower`]). Most recent last, at most [`SHORT_REMEMBERED`].
static STRUCK: Mutex<Vec<WorkloadKey>> = Mutex::new(Vec::new());

/// Entries in [`STRUCK`], read without the lock.
static STRUCK_NOTED: AtomicUsize = AtomicUsize::new(0);

/// Whether a whole run of `key` that measured slower than the loop once it ended (a run too
/// short for the closed loop's windows, a few ms at most), though not far slower
/// ([`CONFIRM_ABOVE`](crate::model::shed::CONFIRM_ABOVE)), starts a back-off
/// ([`note_shed`]): when the run before it measured slower too, or the workload backed off
/// before (its retry measured slower again). The first such run is only noted: a preemption
/// of a time slice (a few ms) or a pool's wake-up delayed by another program's spinning
/// threads doubles a run of a few hundred µs, and one outlier would otherwise send a workload
/// that pays back to the loop for many calls. Measured: in `amorsize bench --workloads
/// fast,small`, 1 of 12 runs of `small` took 372 µs where the others took 184–229 µs (the loop:
/// about 300 µs); its back-off and retries then kept the median call serial, 1.43× the best.
/// Real contention costs one more slow call before the back-off: a run this short loses
/// little.
pub(crate) fn confirm_slower(key: &WorkloadKey) -> bool {
    if SHED_NOTED.load(Ordering::Relaxed) > 0
        && SHED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|s| s.key == *key)
    {
        return true;
    }
    let mut struck = STRUCK.lock().unwrap_or_else(PoisonError::into_inner);
    let confirmed = match struck.iter().position(|k| k == key) {
        Some(at) => {
            struck.remove(at);
            true
        }
        None => {
            struck.push(key.clone());
            if struck.len() > SHORT_REMEMBERED {
                struck.remove(0);
            }
            false
        }
    };
    STRUCK_NOTED.store(struck.len(), Ordering::Relaxed);
    confirmed
}

/// Forgets what sheds taught about `key`: a parallel run of it paid.
pub(crate) fn forget_shed(key: &WorkloadKey) {
    if STRUCK_NOTED.load(Ordering::Relaxed) > 0 {
        let mut struck = STRUCK.lock().unwrap_or_else(PoisonError::into_inner);
        struck.retain(|k| k != key);
        STRUCK_NOTED.store(struck.len(), Ordering::Relaxed);
    }
    if SHED_NOTED.load(Ordering::Relaxed) == 0 {
        return;
    }
    let mut shed = SHED.lock().unwrap_or_else(PoisonError::into_inner);
    shed.retain(|s| s.key != *key);
    SHED_NOTED.store(shed.len(), Ordering::Relaxed);
}

/// The serial plan for `items` items of `key` while a shed's back-off lasts, counting this
/// call; `None` when no shed stands, or when this call (its serial time as the shed plan's
/// items predict it) is the one whose time completes the back-off: it plans afresh, and the
/// note stays so that another shed doubles the back-off.
pub(crate) fn recall_shed(key: &WorkloadKey, items: usize) -> Option<Plan> {
    let mut shed = SHED.lock().unwrap_or_else(PoisonError::into_inner);
    let at = shed.iter().position(|s| s.key == *key)?;
    let note = &mut shed[at];
    let age = note.at.elapsed();
    if age > SHED_REMEMBERED_FOR {
        shed.remove(at);
        SHED_NOTED.store(shed.len(), Ordering::Relaxed);
        return None;
    }
    let per_item = match (note.plan.predicted_serial_time(), note.plan.items()) {
        (Some(serial), Some(n)) if n > 0 => serial.as_secs_f64() / n as f64,
        _ => note.plan.item_time().map_or(0.0, |t| t.as_secs_f64()),
    };
    let this_call = per_item * items as f64;
    if note.owed <= this_call || this_call <= 0.0 {
        note.owed = 0.0;
        return None;
    }
    note.owed -= this_call;
    note.calls += 1;
    // Calls of this size still to run serially after this one, for the reason's text.
    let left = ((note.owed / this_call).ceil() - 1.0).clamp(0.0, f64::from(u32::MAX)) as u32;
    let mut plan = note
        .plan
        .as_ref()
        .clone()
        .reused(items, age.as_secs_f64(), note.calls);
    plan.refuse_from_bound(super::Reason::MeasuredSlower {
        measured: note.measured,
        workers: note.workers,
        age: age.as_secs_f64(),
        calls_left: left,
    });
    Some(plan)
}

/// Work shorter than this is neither looked up nor recorded: a recorded run costs a write
/// transaction (about half a millisecond on a loaded 2-core machine), which must stay a small
/// part of the run it records, and a decision this small is not worth remembering.
pub const MIN_WORTH: Duration = Duration::from_millis(10);

/// What past runs of the workload `key` measured on this machine, for a workload worth it,
/// when `disk` (the call's [`Options::disk_cache`](crate::Options::disk_cache)) lets the disk
/// cache be read: the cache is not read for work whose serial time (as the sample predicts it)
/// is under [`MIN_WORTH`]. Its contention is the part that applies under the load other
/// programs put on the cores now ([`WorkloadHistory::contention_at`]).
pub(crate) fn recall(
    key: &WorkloadKey,
    workload: &Workload,
    disk: bool,
) -> Option<WorkloadHistory> {
    if !disk || workload.serial_time() < MIN_WORTH.as_secs_f64() {
        return None;
    }
    #[cfg(feature = "cache")]
    {
        let mut history = with_default(|c| c.workload(key)).flatten()?;
        let load_now = crate::plan::Caps::from_machine(crate::probe::machine())
            .capacity()
            .competing;
        history.contention = history.contention_at(load_now);
        Some(history)
    }
    #[cfg(not(feature = "cache"))]
    {
        let _ = key;
        None
    }
}

/// How far a light sample's item time may be from the remembered one (either way) and still
/// confirm that the workload is the same: a factor 2 covers the run-to-run noise of a sample of
/// a few items (caches, frequency scaling) and catches a changed input or function.
pub(crate) const CONFIRM_FACTOR: f64 = 2.0;

/// Brings what past runs measured into `workload`, which a new (light) `sample` measured,
/// when the sample confirms that the workload is still the same one: its item time is
/// within [`CONFIRM_FACTOR`] of the remembered samples'. Then the item time is the
/// remembered per-item cost ([`WorkloadHistory::item_time`], with this sample counted among
/// the samples when no serial run measured it), and the learned contention applies (as the
/// cache reads it for planning, the part of it that applies under the load now:
/// [`WorkloadHistory::contention_at`]). Returns whether it was confirmed.
pub(crate) fn inform(history: &WorkloadHistory, workload: &mut Workload, sample: &Sample) -> bool {
    let Some(remembered) = history.sample_item_time() else {
        return false;
    };
    let now = sample.item_time;
    let confirmed = now.is_finite()
        && now > 0.0
        && remembered > 0.0
        && (1.0 / CONFIRM_FACTOR..=CONFIRM_FACTOR).contains(&(now / remembered));
    if !confirmed {
        return false;
    }
    let from_runs = history.recent.iter().any(|r| !r.parallel && r.items > 0);
    let item_time = if from_runs {
        history.item_time()
    } else {
        let times: Vec<f64> = history
            .samples
            .iter()
            .map(|s| s.item_time)
            .chain([now])
            .filter(|t| t.is_finite() && *t >= 0.0)
            .collect();
        crate::stats::median(&times)
    };
    if let Some(t) = item_time {
        workload.item_time = t;
    }
    workload.contention = history.contention;
    true
}

/// Records a finished run of `key`: its `plan` ran `items` items in `ran_for`, at the plan's
/// rate in `wall` (less when the run spent a stretch on fewer workers: the closed loop's trial
/// or shed). A parallel plan noted for reuse is forgotten when the run, as it ran, strayed
/// from its first run ([`RECALL_DRIFT`]). The rest is
/// skipped when it ran nested in another run (on threads it shared, so its time says nothing
/// of its own plan), or when its plan was not made from a sample. A run that took at least
/// [`MIN_WORTH`] is recorded in the disk cache when `disk` (the call's
/// [`Options::disk_cache`](crate::Options::disk_cache)) allows it and the cache is there; any
/// other run is remembered in this process's memory.
pub(crate) fn remember(
    key: &WorkloadKey,
    plan: &Plan,
    (ran_for, wall): (Duration, Duration),
    items: usize,
    nested: bool,
    disk: bool,
) {
    if !nested {
        check_noted(key, plan, ran_for, items);
    }
    let Some(sample) = plan.sample() else {
        return;
    };
    if nested {
        return;
    }
    if wall < MIN_WORTH || !disk || !record(key, sample, plan, wall, items) {
        remember_short(key, plan, wall, items);
    }
}

/// Records the run in the disk cache; whether it was written.
#[cfg(feature = "cache")]
fn record(
    key: &WorkloadKey,
    sample: &crate::sample::Sample,
    plan: &Plan,
    wall: Duration,
    items: usize,
) -> bool {
    let run = plan.run_facts(wall, items);
    with_default(|c| c.record_run(key, sample, &run)) == Some(true)
}

/// Without the disk cache nothing is written.
#[cfg(not(feature = "cache"))]
fn record(_: &WorkloadKey, _: &crate::sample::Sample, _: &Plan, _: Duration, _: usize) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Backend, Costs};
    use crate::plan::{decide, Caps};
    use crate::Options;

    /// The memory is the process's: tests that fill it take turns.
    static TURN: Mutex<()> = Mutex::new(());

    fn parallel_plan() -> Plan {
        let costs = Costs {
            worker_start: 5e-6,
            chunk_dispatch: 1e-6,
            ..Costs::zero(Backend::Threads)
        };
        let plan = decide(
            &Workload::new(100_000, 20e-9),
            &costs,
            &Caps::cores(2, "test"),
            &Options::new(),
        );
        assert!(plan.is_parallel(), "{plan}");
        let mut plan = plan;
        // Only plans made from a sample teach anything.
        plan.set_sample(crate::sample::Sample::default());
        plan
    }

    #[test]
    fn a_whole_run_slower_than_the_loop_backs_off_when_the_next_confirms_it() {
        let key = WorkloadKey::named("slower-once-then-twice");
        // One slow run is noted, not acted on; the next slow one confirms it, and the note is
        // spent: the run after is a first again.
        assert!(!confirm_slower(&key));
        assert!(confirm_slower(&key));
        assert!(!confirm_slower(&key));
        // A run that paid (`forget_shed`) clears a note.
        forget_shed(&key);
        assert!(!confirm_slower(&key));
        forget_shed(&key);
        // A workload that backed off before: its retry's first slow run is confirmation.
        note_shed(&key, &parallel_plan(), (0.5, 2), Duration::from_millis(1));
        assert!(confirm_slower(&key));
        forget_shed(&key);
    }

    #[test]
    fn a_short_run_slower_than_predicted_is_remembered_in_memory_and_fades_on_serial_runs() {
        let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
        let key = WorkloadKey::named("short-and-slow");
        let plan = parallel_plan();
        assert_eq!(recall_short(&key, || 0.0), None);
        // Predicted about 1 ms; it took 3.
        let predicted = plan.predicted_time().unwrap();
        assert!(predicted < MIN_WORTH / 3);
        remember(
            &key,
            &plan,
            (predicted * 3, predicted * 3),
            100_000,
            false,
            true,
        );
        let alpha = recall_short(&key, || 0.0).expect("learned");
        assert!(alpha > 0.5, "{alpha}");
        // Not applied under another load.
        assert_eq!(recall_short(&key, || 3.0), Some(0.0));
        // A serial run fades it.
        let serial = Plan::fixed(std::num::NonZeroUsize::MIN, std::num::NonZeroUsize::MIN);
        let mut faded = serial.clone();
        faded.set_sample(crate::sample::Sample::default());
        remember(&key, &faded, (predicted, predicted), 100_000, false, true);
        let after = recall_short(&key, || 0.0).expect("still known");
        assert!(after < alpha && after > 0.0);
        // A nested run teaches nothing.
        let other = WorkloadKey::named("short-nested");
        remember(
            &other,
            &plan,
            (predicted * 3, predicted * 3),
            100_000,
            true,
            true,
        );
        assert_eq!(recall_short(&other, || 0.0), None);
    }

    fn serial_plan() -> Plan {
        serial_plan_at(1.2)
    }

    /// A serial plan refused under `threshold`.
    fn serial_plan_at(threshold: f64) -> Plan {
        let costs = Costs {
            worker_start: 50e-6,
            ..Costs::zero(Backend::Threads)
        };
        let plan = decide(
            &Workload::new(1000, 20e-9),
            &costs,
            &Caps::cores(2, "test"),
            &Options::new().threshold(threshold),
        );
        assert!(
            matches!(plan.reason(), crate::plan::Reason::TooSmall { .. }),
            "{plan}"
        );
        plan
    }

    #[test]
    fn a_serial_decision_stands_for_a_few_calls_while_the_glance_agrees() {
        let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
        let key = WorkloadKey::named("recalled-serial");
        assert!(recall_serial(&key, 1000, 100e-9, 1.2).is_none());
        note_plan(&key, 1000, 100e-9, 1.2, &serial_plan(), true);
        let r = recall_serial(&key, 1000, 150e-9, 1.2).expect("stands");
        assert_eq!(r.reused, 1);
        assert!(r.best_speedup < 1.2);
        assert_eq!(r.threshold, 1.2);
        // Refused under a higher threshold than the caller's (a sample too small to trust):
        // the recall tells the threshold the plan had to reach.
        note_plan(&key, 1000, 100e-9, 1.2, &serial_plan_at(1.8), true);
        let r = recall_serial(&key, 1000, 100e-9, 1.2).expect("stands");
        assert_eq!(r.threshold, 1.8);
        // Items slower at the glance than the factor allows: planned afresh, and forgotten.
        assert!(recall_serial(&key, 1000, 100e-9 * RECALL_GLANCE_FACTOR * 1.1, 1.2).is_none());
        assert!(recall_serial(&key, 1000, 100e-9, 1.2).is_none());
        // More items than a quarter beyond, or a lower threshold: planned afresh.
        note_plan(&key, 1000, 100e-9, 1.2, &serial_plan(), true);
        assert!(recall_serial(&key, 1300, 100e-9, 1.2).is_none());
        note_plan(&key, 1000, 100e-9, 1.2, &serial_plan(), true);
        assert!(recall_serial(&key, 1000, 100e-9, 1.1).is_none());
        // At most RECALL_TIMES reuses, then a fresh plan.
        note_plan(&key, 1000, 100e-9, 1.2, &serial_plan(), true);
        for k in 1..=RECALL_TIMES {
            assert_eq!(
                recall_serial(&key, 1000, 100e-9, 1.2).map(|r| r.reused),
                Some(k)
            );
        }
        assert!(recall_serial(&key, 1000, 100e-9, 1.2).is_none());
        // A parallel plan for the key forgets the serial one.
        note_plan(&key, 1000, 100e-9, 1.2, &serial_plan(), true);
        note_plan(&key, 1000, 100e-9, 1.2, &parallel_plan(), true);
        assert!(recall_serial(&key, 1000, 100e-9, 1.2).is_none());
    }

    #[test]
    fn a_refusal_made_after_the_sample_used_up_most_of_the_input_is_not_recalled() {
        let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
        let key = WorkloadKey::named("recalled-used-up");
        // Two of three heavy items sampled, one left: too small, for this call only.
        let mut plan = decide(
            &Workload::new(1, 75e-3),
            &Costs {
                worker_start: 50e-6,
                ..Costs::zero(Backend::Threads)
            },
            &Caps::cores(2, "test"),
            &Options::new(),
        );
        assert!(!plan.is_parallel(), "{plan}");
        plan.set_sample(crate::sample::Sample {
            count: 2,
            ..Default::default()
        });
        note_plan(&key, 3, 75e-3, 1.2, &plan, true);
        assert!(recall_serial(&key, 3, 75e-3, 1.2).is_none());
        // The same refusal with most of the input left stands.
        let mut plan = serial_plan();
        plan.set_sample(crate::sample::Sample {
            count: 2,
            ..Default::default()
        });
        note_plan(&key, 1000, 100e-9, 1.2, &plan, true);
        assert!(recall_serial(&key, 1000, 100e-9, 1.2).is_some());
    }

    #[test]
    fn a_shed_makes_the_next_calls_serial_for_a_back_off_sized_by_its_loss() {
        let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
        let key = WorkloadKey::named("shed-back-off");
        let plan = parallel_plan();
        let n = plan.items().unwrap();
        // Calls of 2 ms serially.
        let serial = plan.predicted_serial_time().unwrap().as_secs_f64();
        assert!((serial - 2e-3).abs() < 1e-9, "{plan}");
        note_plan(&key, n, 20e-9, 1.2, &plan, true);
        // Its first millisecond ran at 0.45×: 0.55 ms lost, spread over 0.55 ÷ 5 % = 11 ms of
        // serial calls, the shed call's 2 ms included: 4 more calls run serially, the fifth
        // tries again.
        let ms = Duration::from_millis(1);
        note_shed(&key, &plan, (0.45, 2), ms);
        // The parallel plan noted for reuse is forgotten.
        assert!(recall_parallel(|| key.clone(), n, 1.2).is_none());
        for left in (0..4).rev() {
            let serial = recall_shed(&key, n).expect("backing off");
            assert!(!serial.is_parallel());
            assert!(
                matches!(serial.reason(), crate::plan::Reason::MeasuredSlower { calls_left, .. } if *calls_left == left),
                "{serial}"
            );
        }
        assert!(recall_shed(&key, n).is_none());
        // The retry shed again: the span doubles to 22 ms, 9 serial calls after the retry's.
        note_shed(&key, &plan, (0.45, 2), ms);
        let mut backed_off = 0;
        while recall_shed(&key, n).is_some() {
            backed_off += 1;
        }
        assert_eq!(backed_off, 9);
        // A parallel run that paid forgets it.
        note_shed(&key, &plan, (0.5, 2), ms);
        forget_shed(&key);
        assert!(recall_shed(&key, n).is_none());
        // A shed that lost little against the call (a slowed first window of a long call)
        // lets the next call try again.
        note_shed(&key, &plan, (0.9, 2), Duration::from_micros(100));
        assert!(recall_shed(&key, n).is_none());
        forget_shed(&key);
    }

    #[test]
    fn a_parallel_plan_is_reused_while_it_stands_and_its_runs_agree() {
        let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
        let key = WorkloadKey::named("recalled-parallel");
        let plan = parallel_plan();
        let n = plan.items().expect("planned items");
        let keyed = || key.clone();
        assert!(recall_parallel(keyed, n, 1.2).is_none());
        // Options that fixed part of the plan: not kept.
        note_plan(&key, n, 20e-9, 1.2, &plan, false);
        assert!(recall_parallel(keyed, n, 1.2).is_none());
        note_plan(&key, n, 20e-9, 1.2, &plan, true);
        let again = recall_parallel(keyed, n, 1.2).expect("stands");
        assert_eq!(again.reuse().map(|r| r.call), Some(1));
        assert_eq!(again.workers(), plan.workers());
        assert_eq!(again.predicted_time(), plan.predicted_time());
        // A call of 10 % fewer items: the same plan, its predictions scaled.
        let fewer = recall_parallel(keyed, n * 9 / 10, 1.2).expect("stands");
        let scaled = fewer.predicted_time().unwrap().as_secs_f64();
        let want = plan.predicted_time().unwrap().as_secs_f64() * 0.9;
        assert!((scaled / want - 1.0).abs() < 1e-3, "{scaled} vs {want}");
        // A higher threshold, or a fifth fewer items than four fifths: planned afresh.
        assert!(recall_parallel(keyed, n, 1.5).is_none());
        note_plan(&key, n, 20e-9, 1.2, &plan, true);
        assert!(recall_parallel(keyed, n / 2, 1.2).is_none());
        // The first run sets the reference, however far from the prediction (a sample off by
        // a steady factor); a later run in line with it keeps the plan, one twice as slow
        // per item forgets it.
        note_plan(&key, n, 20e-9, 1.2, &plan, true);
        let predicted = plan.predicted_time().unwrap();
        remember(
            &key,
            &plan,
            (predicted.mul_f64(3.0), predicted.mul_f64(3.0)),
            n,
            false,
            true,
        );
        assert!(recall_parallel(keyed, n, 1.2).is_some());
        remember(
            &key,
            &plan,
            (predicted.mul_f64(3.0 * 1.3), predicted.mul_f64(3.0 * 1.3)),
            n,
            false,
            true,
        );
        assert!(recall_parallel(keyed, n, 1.2).is_some());
        // Per item: half the items in half the time is in line.
        remember(
            &key,
            &plan,
            (predicted.mul_f64(1.5), predicted.mul_f64(1.5)),
            n / 2,
            false,
            true,
        );
        assert!(recall_parallel(keyed, n, 1.2).is_some());
        remember(
            &key,
            &plan,
            (
                predicted.mul_f64(3.0 * RECALL_DRIFT * 1.1),
                predicted.mul_f64(3.0 * RECALL_DRIFT * 1.1),
            ),
            n,
            false,
            true,
        );
        assert!(recall_parallel(keyed, n, 1.2).is_none());
        // So does one far faster (items of another size under the same key).
        note_plan(&key, n, 20e-9, 1.2, &plan, true);
        remember(&key, &plan, (predicted, predicted), n, false, true);
        remember(
            &key,
            &plan,
            (
                predicted.div_f64(RECALL_DRIFT * 1.1),
                predicted.div_f64(RECALL_DRIFT * 1.1),
            ),
            n,
            false,
            true,
        );
        assert!(recall_parallel(keyed, n, 1.2).is_none());
        // At most RECALL_TIMES reuses.
        note_plan(&key, n, 20e-9, 1.2, &plan, true);
        for k in 1..=RECALL_TIMES {
            let reused = recall_parallel(keyed, n, 1.2).and_then(|p| p.reuse());
            assert_eq!(reused.map(|r| r.call), Some(k));
        }
        assert!(recall_parallel(keyed, n, 1.2).is_none());
        // A serial plan for the key forgets the parallel one.
        note_plan(&key, n, 20e-9, 1.2, &plan, true);
        note_plan(&key, n, 20e-9, 1.2, &serial_plan(), true);
        assert!(recall_parallel(keyed, n, 1.2).is_none());
    }

    #[test]
    fn a_run_the_disk_cache_leaves_out_is_remembered_in_memory() {
        let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
        let key = WorkloadKey::named("long-without-disk");
        let plan = parallel_plan();
        // Long enough to be worth a write, three times slower than predicted.
        let wall = MIN_WORTH * 3;
        let items = 100_000;
        remember(&key, &plan, (wall, wall), items, false, false);
        let alpha = recall_short(&key, || 0.0).expect("learned in memory");
        assert!(alpha > 0.0, "{alpha}");
        // Nor is the disk read for such a call.
        let workload = Workload::new(items, 1.0);
        assert!(recall(&key, &workload, false).is_none());
    }

    #[test]
    fn short_memory_is_bounded() {
        let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
        let plan = parallel_plan();
        let wall = plan.predicted_time().unwrap() * 2;
        for i in 0..SHORT_REMEMBERED + 10 {
            remember(
                &WorkloadKey::named(format!("bounded-{i}")),
                &plan,
                (wall, wall),
                100_000,
                false,
                true,
            );
        }
        let held = SHORT.lock().unwrap().len();
        assert!(held <= SHORT_REMEMBERED);
        assert!(recall_short(&WorkloadKey::named("bounded-0"), || 0.0).is_none());
    }
}
