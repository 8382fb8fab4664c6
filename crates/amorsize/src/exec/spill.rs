//! Heavy items never wait for a serial sample. A call on few items (too few for one more serial
//! item to be a small share of their parallel time) runs its first item on the calling thread,
//! as the glance does, under an alarm ([`watch`]). When the item is still running after
//! [`SPILL_AFTER`], far longer than waking workers costs, the alarm starts workers on the
//! other items at once: each claims the next item in order and times its items with its thread
//! CPU clock. The calling thread joins them when its item ends, and the call returns when every
//! item has run, with no sample and no plan beforehand: the plan is made after the fact from
//! what ran ([`Plan::spilled`]). An item that ends in time goes on as the glance's first, and
//! nothing runs twice.

use super::threads::{Cause, Failure, Stats};
use crate::plan::{Options, Plan};
use crate::report::Phase;
use crate::runtime::pool;
use crate::runtime::watch::{self, Disarmed};
use crate::sample::{Clock, SystemClock, SPILL_AFTER};
use crate::units::Seconds;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Whether a call on `n` items with `options` watches its first item: inputs short against the
/// cores ([`crate::sample::heavy_glance`]'s), with the plan left to the sample, no progress
/// callback or deadline (which want the executor's chunked loop), not inside a pool's worker
/// (nested runs use that pool), and more than one core.
pub(crate) fn watches(n: usize, options: &Options) -> bool {
    let short =
        |cores: usize| cores > 1 && (n as f64) < crate::sample::HEAVY_SHARE_INVERSE * cores as f64;
    // The cores last: before the probe they cost a system call.
    n > 2
        && options.leave_plan_to_sample()
        && options.threshold.is_finite()
        && options.exec.progress.is_none()
        && options.exec.deadline.is_none()
        && !crate::alloc::installed()
        && !pool::nested()
        && short(crate::probe::cores_bound())
}

/// A spilled run: every result in order, the plan made from what ran and what it measured;
/// or the first failure.
pub(crate) type Spilled<O> = Result<(Vec<O>, Plan, Stats), Failure<O>>;

/// How the first item of a watched call ended.
pub(crate) enum First<O> {
    /// Before the alarm, alone: its result (or the error of its panic) and its wall time; the
    /// call goes on with it as the glance's first item.
    Alone(crate::Result<O>, Seconds),
    /// After the others had started on workers: every item has run (or the run stopped at the
    /// first failure, which is reported).
    Spilled(Box<Spilled<O>>),
}

/// What a worker's claims share with the calling thread, owned by all of them (the alarm's
/// job may start a worker after the call has returned; it then finds the gate shut).
struct Shared {
    /// The next item to claim.
    cursor: AtomicUsize,
    /// Set at the first failure: no further item is claimed.
    stop: AtomicBool,
    gate: Mutex<Gate>,
    idle: Condvar,
    /// Workers that entered the gate.
    joined: AtomicUsize,
}

/// Workers enter only while the gate is open; the call shuts it and waits for those inside.
struct Gate {
    open: bool,
    inside: usize,
}

fn lock<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    // The user's code runs outside these locks (its panics are caught), so a poisoned lock
    // holds consistent data.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Shuts the gate and waits until no worker is inside.
    fn shut(&self) {
        let mut gate = lock(&self.gate);
        gate.open = false;
        while gate.inside > 0 {
            gate = self.idle.wait(gate).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// The items, the function and a slot per result: borrowed from the call.
struct Slots<'a, T, O, F, P> {
    items: &'a [T],
    f: &'a F,
    fails: &'a P,
    slots: Vec<Mutex<Option<Ran<O>>>>,
    /// Thread CPU time and wall time the claimers spent on items, together.
    spent: Mutex<(Seconds, Seconds)>,
}

/// Claims items until none is left: what a worker runs, and the calling thread after its
/// first item. The trait erases the call's types for the alarm's job.
trait Claim: Sync {
    fn claim(&self, shared: &Shared);
}

impl<T, O, F, P> Claim for Slots<'_, T, O, F, P>
where
    T: Sync,
    O: Send,
    F: Fn(&T) -> O + Sync,
    P: Fn(&O) -> bool + Sync,
{
    fn claim(&self, shared: &Shared) {
        let clock = SystemClock;
        let start = clock.now();
        while !shared.stop.load(Relaxed) {
            let index = shared.cursor.fetch_add(1, Relaxed);
            let Some(item) = self.items.get(index) else {
                break;
            };
            let outcome = catch_unwind(AssertUnwindSafe(|| (self.f)(item)));
            if failed(&outcome, self.fails) {
                shared.stop.store(true, Relaxed);
            }
            *lock(&self.slots[index]) = Some(outcome);
        }
        let spent = clock.now();
        let mut total = lock(&self.spent);
        total.0 += spent.thread_cpu - start.thread_cpu;
        total.1 += spent.wall - start.wall;
    }
}

/// The claims of the call, as the alarm's job holds them: a pointer that is dereferenced only
/// by a worker inside the gate.
#[derive(Clone, Copy)]
struct Claims(*const (dyn Claim + 'static));

// SAFETY: `Claims` points to a `Slots`, which is `Sync` (its fields are shared references to
// `Sync` data, and mutexes); it is only ever read through, by workers inside the gate.
unsafe impl Send for Claims {}

impl Claims {
    /// The claims.
    ///
    /// # Safety
    ///
    /// Only inside the gate (see the safety note in [`spill`]).
    unsafe fn get(&self) -> &dyn Claim {
        // SAFETY: the caller is inside the gate, so the call that owns the claims has not
        // returned.
        unsafe { &*self.0 }
    }
}

/// Runs the first of `items` (not empty) on the calling thread, under an alarm when the
/// watcher runs; see the module's documentation. `fails` marks a result that stops the run.
pub(crate) fn first_item<T, O, F, P>(items: &[T], f: &F, fails: &P) -> First<O>
where
    T: Sync,
    O: Send,
    F: Fn(&T) -> O + Sync,
    P: Fn(&O) -> bool + Sync,
{
    if watch::running() {
        return spill(items, f, fails, None);
    }
    // No watcher yet: the first item runs alone, with nothing set up for it.
    let began = Instant::now();
    let (outcome, took) = timed(f, &items[0]);
    if took < SPILL_AFTER || failed(&outcome, fails) {
        return alone(outcome, took);
    }
    // It ran long alone: the others start now, with no sample, and later calls are watched.
    watch::start();
    spill(items, f, fails, Some((outcome, took, began)))
}

/// What running one item gave: its result or its panic's payload.
type Ran<O> = std::thread::Result<O>;

/// Runs `f` on `item`, catching a panic, and its wall time.
fn timed<T, O, F: Fn(&T) -> O>(f: &F, item: &T) -> (Ran<O>, Seconds) {
    let clock = SystemClock;
    let t0 = clock.wall();
    let outcome = catch_unwind(AssertUnwindSafe(|| f(item)));
    (outcome, (clock.wall() - t0 - clock.overhead()).max(0.0))
}

/// Whether `outcome` stops a run: a panic, or a result `fails` marks.
fn failed<O, P: Fn(&O) -> bool>(outcome: &Ran<O>, fails: &P) -> bool {
    outcome.as_ref().map_or(true, fails)
}

/// The first item, run alone, as the glance's first.
fn alone<O>(outcome: Ran<O>, took: Seconds) -> First<O> {
    let first = outcome.map_err(|payload| crate::Error::panicked(0, payload.as_ref()));
    First::Alone(first, took)
}

/// The claims over `items`, with workers started on the others: during the first item, by
/// the alarm, when `ran` is `None` (the first runs here, under it); at once after it, when
/// `ran` holds what it gave, how long it took and when it began.
fn spill<T, O, F, P>(
    items: &[T],
    f: &F,
    fails: &P,
    ran: Option<(Ran<O>, Seconds, Instant)>,
) -> First<O>
where
    T: Sync,
    O: Send,
    F: Fn(&T) -> O + Sync,
    P: Fn(&O) -> bool + Sync,
{
    let n = items.len();
    let slots = Slots {
        items,
        f,
        fails,
        slots: (0..n).map(|_| Mutex::new(None)).collect(),
        spent: Mutex::new((0.0, 0.0)),
    };
    let shared = Arc::new(Shared {
        cursor: AtomicUsize::new(1),
        stop: AtomicBool::new(false),
        gate: Mutex::new(Gate {
            open: true,
            inside: 0,
        }),
        idle: Condvar::new(),
        joined: AtomicUsize::new(0),
    });
    let claims: &(dyn Claim + '_) = &slots;
    // SAFETY: only the lifetime is erased. The pointer is dereferenced only by a worker that
    // entered the gate while it was open (`start`), and `Shut`'s drop (below, on every way
    // out of this function, unwinding included) closes the gate and waits until every worker
    // inside has left it, before `slots` is dropped.
    let claims = Claims(unsafe {
        std::mem::transmute::<*const (dyn Claim + '_), *const (dyn Claim + 'static)>(claims)
    });
    // A worker per core, the calling thread one more while its first item lasts: items of a
    // few rounds then share the cores to the end rather than leave them idle in the last
    // round (3 heavy items on 2 cores: the bench's oracle found 3 workers faster than 2).
    let workers = crate::probe::cores_bound().min(n - 1).max(1);
    let shut = Shut(&shared);
    let (outcome, took, began, after) = match ran {
        Some((outcome, took, began)) => {
            start(claims, Arc::clone(&shared), workers);
            (outcome, took, began, took)
        }
        None => {
            let job_shared = Arc::clone(&shared);
            let alarm = watch::arm(
                Duration::from_secs_f64(SPILL_AFTER),
                Box::new(move || start(claims, job_shared, workers)),
            );
            let began = Instant::now();
            let (outcome, took) = timed(f, &items[0]);
            let fired = alarm.is_some_and(|alarm| alarm.disarm() == Disarmed::Fired);
            if !fired && (took < SPILL_AFTER || failed(&outcome, fails)) {
                drop(shut);
                return alone(outcome, took);
            }
            if !fired {
                // It ended just before the alarm: the others start now.
                start(claims, Arc::clone(&shared), workers);
            }
            (outcome, took, began, if fired { SPILL_AFTER } else { took })
        }
    };
    if failed(&outcome, fails) {
        shared.stop.store(true, Relaxed);
    }
    *lock(&slots.slots[0]) = Some(outcome);
    slots.claim(&shared);
    drop(shut);
    let wall = began.elapsed();
    let joined = shared.joined.load(Relaxed);
    let (cpu, busy) = *lock(&slots.spent);
    // Claims go in input order, so an unclaimed item lies past the failure that stopped the
    // claims, which `finish` returns first: this runs only what no one claimed otherwise.
    let rerun = |index: usize| timed(f, &items[index]).0;
    let first = (took, after);
    let spilled = finish(slots.slots, fails, rerun, first, joined, (cpu, busy), wall);
    First::Spilled(Box::new(spilled))
}

/// Shuts the gate when dropped (see the safety note in [`spill`]).
struct Shut<'a>(&'a Shared);

impl Drop for Shut<'_> {
    fn drop(&mut self) {
        self.0.stop.store(true, Relaxed);
        self.0.shut();
    }
}

/// The alarm's job, on the watcher thread: starts `workers` workers on the pool the plans of
/// this machine use. A pool that cannot start leaves the items to the calling thread.
fn start(claims: Claims, shared: Arc<Shared>, workers: usize) {
    let Ok(pool) = pool::pool_at_least(crate::probe::cores_bound()) else {
        return;
    };
    for _ in 0..workers {
        let shared = Arc::clone(&shared);
        pool.spawn(move || {
            {
                let mut gate = lock(&shared.gate);
                if !gate.open {
                    return;
                }
                gate.inside += 1;
            }
            shared.joined.fetch_add(1, Relaxed);
            // SAFETY: inside the gate, the call has not returned (see the safety note in `spill`).
            unsafe { claims.get() }.claim(&shared);
            let mut gate = lock(&shared.gate);
            gate.inside -= 1;
            if gate.inside == 0 {
                shared.idle.notify_all();
            }
        });
    }
}

/// The results in order, or the first failure in input order; the plan made from what ran,
/// whose first item took `first` and the others started `after` into it.
/// `rerun` runs an item no one claimed (none is, but past a failure, which is returned
/// first): every item runs once.
fn finish<O, P: Fn(&O) -> bool>(
    slots: Vec<Mutex<Option<Ran<O>>>>,
    fails: &P,
    mut rerun: impl FnMut(usize) -> Ran<O>,
    (first, after): (Seconds, Seconds),
    joined: usize,
    (cpu, busy): (Seconds, Seconds),
    wall: Duration,
) -> Spilled<O> {
    let n = slots.len();
    let mut results = Vec::with_capacity(n);
    for (index, slot) in slots.into_iter().enumerate() {
        let outcome = slot.into_inner().unwrap_or_else(PoisonError::into_inner);
        match outcome.unwrap_or_else(|| rerun(index)) {
            Ok(value) if fails(&value) => {
                return Err(Failure {
                    index,
                    cause: Cause::Value(value),
                })
            }
            Ok(value) => results.push(value),
            Err(payload) => {
                return Err(Failure {
                    index,
                    cause: Cause::Panic(payload),
                })
            }
        }
    }
    let workers = joined + 1;
    // The calling thread's first item is counted whole: its CPU clock was not read.
    let busy = busy + first;
    let cpu_share = if busy > 0.0 {
        (cpu + first) / busy
    } else {
        1.0
    };
    let plan = Plan::spilled(n, workers, (first, after), cpu_share.min(1.0));
    let stats = Stats {
        workers,
        chunks: n,
        wall,
        busy: Duration::from_secs_f64(busy),
        phases: vec![Phase::new(workers, n, wall)],
        ..Stats::default()
    };
    Ok((results, plan, stats))
}
