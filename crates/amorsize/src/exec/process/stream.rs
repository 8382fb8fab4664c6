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
use std::sync::Arc;
use std::thread::JoinHandle;

enum Event<R> {
    Results(Vec<(usize, R)>),
    Failure(Failure),
    Fatal(Error),
}

struct Channel<R>(mpsc::Sender<Event<R>>);

impl<R: Send> Sink<R> for Channel<R> {
    fn results(&self, results: Vec<(usize, R)>) {
        // The receiver is gone only when the run was dropped; nothing is waiting then.
        let _ = self.0.send(Event::Results(results));
    }

    fn failure(&self, failure: Failure) {
        let _ = self.0.send(Event::Failure(failure));
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
    let options = options.clone();
    let thread_cancel = Arc::clone(&cancel);
    let thread = std::thread::Builder::new()
        .name("amorsize-process-run".to_owned())
        .spawn(move || {
            let sink = Channel(tx);
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
                    .0
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
            if let Ok(Ok(stats)) = thread.join() {
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
            let event = self.events.as_ref()?.recv();
            match event {
                Ok(Event::Results(results)) => self.pending = results.into_iter(),
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
        // Unblocks the background thread if it is sending, then waits for it: its workers are
        // killed or back in the pool when it ends.
        self.events = None;
        self.join();
    }
}
