//! A run in the background whose results arrive as they complete; dropping it half-way stops
//! the run, kills the workers busy with a chunk and waits for them, so nothing is left behind.

use super::outcome::Failure;
use super::pool::Pool;
use super::registry::Function;
use super::run::{self, Cancel, Sink, Target};
use super::{ProcessOptions, RunStats};
use crate::plan::Plan;
use crate::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

enum Event<R> {
    Results(Vec<(usize, R)>, u64),
    Failure(Failure),
    Fatal(Error),
}

/// The results held for the reader, in bytes, against the run's memory budget: the run's
/// threads wait in [`Gate::enter`] while a batch would go past it, the reader lets them on in
/// [`Gate::leave`] as it takes results, and a dropped run opens it for good.
#[derive(Debug)]
struct Gate {
    budget: Option<u64>,
    /// Bytes held, the most held at once, and whether the reader is gone.
    state: Mutex<(u64, u64, bool)>,
    room: Condvar,
}

impl Gate {
    fn new(budget: Option<u64>) -> Self {
        Gate {
            budget,
            state: Mutex::new((0, 0, false)),
            room: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, (u64, u64, bool)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `bytes` more fit in the budget (or nothing is held, or the reader is
    /// gone), then counts them held.
    fn enter(&self, bytes: u64) {
        let Some(budget) = self.budget else {
            return;
        };
        let mut state = self.lock();
        while state.0 > 0 && state.0.saturating_add(bytes) > budget && !state.2 {
            state = self.room.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.0 += bytes;
        state.1 = state.1.max(state.0);
    }

    /// The reader has taken results of `bytes`.
    fn leave(&self, bytes: u64) {
        if self.budget.is_some() && bytes > 0 {
            let mut state = self.lock();
            state.0 = state.0.saturating_sub(bytes);
            self.room.notify_all();
        }
    }

    /// The reader is gone: nobody waits any more.
    fn open(&self) {
        self.lock().2 = true;
        self.room.notify_all();
    }

    /// The most bytes held at once, when there was a budget.
    fn peak(&self) -> Option<u64> {
        self.budget.map(|_| self.lock().1)
    }
}

struct Channel<R> {
    events: mpsc::Sender<Event<R>>,
    gate: Arc<Gate>,
}

impl<R: Send> Sink<R> for Channel<R> {
    fn results(&self, results: Vec<(usize, R)>, bytes: u64) {
        self.gate.enter(bytes);
        // The receiver is gone only when the run was dropped; nothing is waiting then.
        let _ = self.events.send(Event::Results(results, bytes));
    }

    fn failure(&self, failure: Failure) {
        let _ = self.events.send(Event::Failure(failure));
    }
}

/// A run of worker processes going on in the background, from [`start`]: an iterator over
/// `(input index, result)` pairs in the order chunks complete, and errors for the items that
/// failed (one per failed group, naming its chunk and items).
///
/// Dropping it before the end cancels the run: no new chunk starts, workers busy with one are
/// killed and reaped, and the drop returns once the background thread has ended.
pub struct Running<R> {
    events: Option<mpsc::Receiver<Event<R>>>,
    pending: std::vec::IntoIter<(usize, R)>,
    /// The bytes of `pending`'s batch, released to the gate once it is taken.
    pending_bytes: u64,
    gate: Arc<Gate>,
    cancel: Arc<Cancel>,
    thread: Option<JoinHandle<Result<RunStats>>>,
    stats: Option<RunStats>,
}

impl<R> fmt::Debug for Running<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Running")
            .field("finished", &self.thread.is_none())
            .finish()
    }
}

/// Starts running `function` on `items` as `plan` says, on worker processes of the
/// [global](Pool::global) pool, and returns at once; results arrive through the returned
/// [`Running`].
///
/// # Examples
///
/// ```no_run
/// use amorsize::exec::process::{self, ProcessOptions};
/// use amorsize::Plan;
/// use std::num::NonZeroUsize;
///
/// fn double(x: &u32) -> u32 {
///     2 * x
/// }
///
/// let double = process::register("double", double);
/// process::init();
/// let plan = Plan::fixed(NonZeroUsize::new(2).unwrap(), NonZeroUsize::new(10).unwrap());
/// let mut running = process::start(double, (0..1000).collect(), &plan, &ProcessOptions::new());
/// let first = running.next().unwrap()?;
/// assert_eq!(first.1, 2 * first.0 as u32);
/// drop(running); // the rest is cancelled; no worker is left busy
/// # Ok::<(), amorsize::Error>(())
/// ```
pub fn start<T, R>(
    function: Function<T, R>,
    items: Vec<T>,
    plan: &Plan,
    options: &ProcessOptions,
) -> Running<R>
where
    T: Serialize + Send + Sync + 'static,
    R: DeserializeOwned + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let cancel = Arc::new(Cancel::default());
    let workers = plan.workers().get();
    let chunk = plan.chunk_size().get();
    let gate = Arc::new(Gate::new(options.memory_budget));
    let thread_gate = Arc::clone(&gate);
    let options = options.clone();
    let thread_cancel = Arc::clone(&cancel);
    let thread = std::thread::Builder::new()
        .name("amorsize-process-run".to_owned())
        .spawn(move || {
            let sink = Channel {
                events: tx,
                gate: thread_gate,
            };
            #[allow(clippy::single_range_in_vec_init)]
            let tasks = run::chunks(&[0..items.len()], chunk);
            let target = Target {
                pool: Pool::global(),
                sink: &sink,
                cancel: &thread_cancel,
            };
            let outcome = run::run(function, &items, tasks, workers, &options, target);
            if let Err(e) = &outcome {
                let _ = sink
                    .events
                    .send(Event::Fatal(Error::new(e.kind(), e.to_string())));
            }
            outcome
        });
    let (events, thread) = match thread {
        Ok(thread) => (Some(rx), Some(thread)),
        Err(e) => {
            let (tx, rx) = mpsc::channel();
            let error = Error::new(crate::ErrorKind::Io, "cannot start a thread for the run")
                .with_source(e);
            let _ = tx.send(Event::Fatal(error));
            (Some(rx), None)
        }
    };
    Running {
        events,
        pending: Vec::new().into_iter(),
        pending_bytes: 0,
        gate,
        cancel,
        thread,
        stats: None,
    }
}

impl<R> Running<R> {
    /// Figures of the run, once it has ended (the iterator returned `None`).
    pub fn stats(&self) -> Option<&RunStats> {
        self.stats.as_ref()
    }

    fn join(&mut self) {
        if let Some(thread) = self.thread.take() {
            if let Ok(Ok(mut stats)) = thread.join() {
                stats.peak_held_bytes = self.gate.peak();
                self.stats = Some(stats);
            }
        }
    }
}

impl<R> Iterator for Running<R> {
    type Item = Result<(usize, R)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(pair) = self.pending.next() {
                return Some(Ok(pair));
            }
            self.gate.leave(std::mem::take(&mut self.pending_bytes));
            let event = self.events.as_ref()?.recv();
            match event {
                Ok(Event::Results(results, bytes)) => {
                    self.pending = results.into_iter();
                    self.pending_bytes = bytes;
                }
                Ok(Event::Failure(failure)) => return Some(Err(failure.into_error())),
                Ok(Event::Fatal(error)) => return Some(Err(error)),
                Err(mpsc::RecvError) => {
                    self.events = None;
                    self.join();
                    return None;
                }
            }
        }
    }
}

impl<R> Drop for Running<R> {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.gate.open();
        // Unblocks the background thread if it is sending, then waits for it: its workers are
        // killed or back in the pool when it ends.
        self.events = None;
        self.join();
    }
}
