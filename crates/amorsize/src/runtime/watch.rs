//! One thread per process that watches the first item of calls that may be heavy: a call
//! arms an alarm before it runs its first item, and disarms it after. An alarm still armed
//! when its time is up fires: the watcher runs the alarm's job (which starts workers on the
//! other items while the first still runs), and the call, on disarming, finds it fired.
//!
//! Arming costs a lock and, when the watcher sleeps with nothing to watch, a wake-up call that
//! the caller does not wait on; disarming an alarm that has not fired costs a lock. The
//! watcher starts once per process, when something has just paid for threads anyway
//! ([`start`]), and then sleeps between alarms; it is never joined (as rayon's global pool is
//! not). Before it starts, nothing is armed.
//!
//! A hand-written timer rather than a crate's: a timer crate runs a callback on its own
//! thread too, but cannot say, under one lock, whether the callback has started, which is
//! what lets a call that disarmed in time return without waiting for anything.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// A job an alarm runs when it fires.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// Where an alarm stands.
enum State {
    Armed(Job),
    Disarmed,
    Fired,
}

/// An armed alarm, held by the call that armed it.
pub(crate) struct Alarm {
    state: Arc<Mutex<State>>,
}

/// What [`Alarm::disarm`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Disarmed {
    /// In time: the job was dropped without running, and never will run.
    InTime,
    /// Too late: the job has started on the watcher (it may still be running).
    Fired,
}

impl Alarm {
    /// Disarms the alarm: after this returns [`Disarmed::InTime`], its job never runs.
    pub(crate) fn disarm(self) -> Disarmed {
        let mut state = lock(&self.state);
        match std::mem::replace(&mut *state, State::Disarmed) {
            State::Armed(job) => {
                drop(state);
                drop(job);
                Disarmed::InTime
            }
            State::Fired => {
                *state = State::Fired;
                Disarmed::Fired
            }
            State::Disarmed => Disarmed::InTime,
        }
    }
}

/// The watcher's list: when each armed alarm fires.
struct Watcher {
    alarms: Mutex<Vec<(Instant, Arc<Mutex<State>>)>>,
    wake: Condvar,
}

fn lock<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    // Only this module's code runs under these locks, and none of it panics while holding
    // one: a poisoned lock holds consistent data.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Arms an alarm that runs `job` on the watcher thread `after` from now, unless disarmed
/// first. `None` when the watcher is not running ([`start`]): nothing is armed then, and the
/// job is dropped.
pub(crate) fn arm(after: Duration, job: Job) -> Option<Alarm> {
    let watcher = (*WATCHER.get()?)?;
    let state = Arc::new(Mutex::new(State::Armed(job)));
    let at = Instant::now() + after;
    let mut alarms = lock(&watcher.alarms);
    // Calls arm with the same delay, so a new alarm is due after those before it: the
    // watcher, already waiting for an earlier one, need not be woken. The list keeps the
    // order alarms were armed in, so with one delay its first is its earliest; an alarm due
    // before the first is due before the earliest whatever the delays (the comparison costs
    // the same however many alarms calls have armed and disarmed in the last delay).
    let sooner = alarms.first().map_or(true, |(due, _)| at < *due);
    alarms.push((at, Arc::clone(&state)));
    drop(alarms);
    if sooner {
        watcher.wake.notify_one();
    }
    Some(Alarm { state })
}

/// Whether the watcher runs, so that [`arm`] arms.
pub(crate) fn running() -> bool {
    matches!(WATCHER.get(), Some(Some(_)))
}

/// The process's watcher, once [`start`]ed (`None` inside: it could not start).
static WATCHER: OnceLock<Option<&'static Watcher>> = OnceLock::new();

/// Starts the watcher thread, once per process: by whatever has just paid for threads of its
/// own (a pool's start, a call whose first item ran long), so that no short call pays a
/// thread's start (measured: about 100 µs for the first in a process here, where a call on
/// ten items of a few ns takes about 1 µs).
pub(crate) fn start() {
    WATCHER.get_or_init(|| {
        let watcher: &'static Watcher = Box::leak(Box::new(Watcher {
            alarms: Mutex::new(Vec::new()),
            wake: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("amorsize-watch".into())
            .spawn(move || watch(watcher))
            .ok()
            .map(|_| watcher)
    });
}

/// The watcher's loop: sleeps until the earliest alarm is due, fires the due ones that are
/// still armed, forgets the rest.
fn watch(watcher: &Watcher) {
    let mut alarms = lock(&watcher.alarms);
    loop {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = alarms.drain(..).partition(|(at, _)| *at <= now);
        *alarms = later;
        if due.is_empty() {
            alarms = match alarms.iter().map(|(at, _)| *at).min() {
                Some(next) => {
                    let wait = next.saturating_duration_since(now);
                    watcher
                        .wake
                        .wait_timeout(alarms, wait)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => watcher
                    .wake
                    .wait(alarms)
                    .unwrap_or_else(PoisonError::into_inner),
            };
            continue;
        }
        // The jobs run without the list's lock, so that calls can arm meanwhile.
        drop(alarms);
        for (_, state) in due {
            let job = {
                let mut state = lock(&state);
                match std::mem::replace(&mut *state, State::Fired) {
                    State::Armed(job) => Some(job),
                    other => {
                        *state = other;
                        None
                    }
                }
            };
            if let Some(job) = job {
                job();
            }
        }
        alarms = lock(&watcher.alarms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn an_alarm_disarmed_in_time_never_runs_its_job() {
        start();
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..100 {
            let ran = Arc::clone(&ran);
            let alarm = arm(
                Duration::from_secs(3600),
                Box::new(move || {
                    ran.fetch_add(1, Ordering::SeqCst);
                }),
            )
            .expect("the watcher starts");
            assert_eq!(alarm.disarm(), Disarmed::InTime);
        }
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn an_alarm_left_armed_fires_once() {
        start();
        let ran = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&ran);
        let alarm = arm(
            Duration::from_millis(1),
            Box::new(move || {
                seen.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .expect("the watcher starts");
        // However busy the machine, the watcher gets to it: wait (bounded) for the job.
        let start = Instant::now();
        while ran.load(Ordering::SeqCst) == 0 && start.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(alarm.disarm(), Disarmed::Fired);
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    }
}
