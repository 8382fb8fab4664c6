//! Options of execution (as opposed to planning): progress callback, chunk adaptation and the
//! in-flight bound of streams. They live in [`Options`] beside the planning options.

use super::progress::{Progress, ProgressFn};
use crate::Options;
use std::num::NonZeroUsize;
use std::sync::Arc;

/// Execution settings carried by [`Options`].
#[derive(Clone, Debug)]
pub(crate) struct ExecOptions {
    pub(crate) progress: Option<ProgressFn>,
    pub(crate) adapt: bool,
    pub(crate) in_flight: Option<NonZeroUsize>,
    /// A stream's bound on the bytes of its items in flight ([`Options::memory_budget`]).
    pub(crate) memory_budget: Option<u64>,
    /// Chunks of exactly the planned size to the end, with no shrinking tail: a measured grid
    /// ([`tune`](super::tune)) times the chunk size it names.
    pub(crate) fixed_chunks: bool,
    /// When the run stops handing out chunks, unfinished ([`Cause::Deadline`]).
    ///
    /// [`Cause::Deadline`]: super::threads::Cause::Deadline
    pub(crate) deadline: Option<std::time::Instant>,
    /// Whether a parallel run may shed workers that do not pay ([`Options::shed_workers`]).
    pub(crate) shed: bool,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            progress: None,
            adapt: true,
            in_flight: None,
            memory_budget: None,
            fixed_chunks: false,
            deadline: None,
            shed: true,
        }
    }
}

impl Options {
    /// Calls `callback` with the progress of a run at chunk boundaries, from the calling
    /// thread (the one waiting for the results, or the one pulling from a stream), so that it
    /// can drive a progress bar. Without a callback nothing is counted.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let seen = Arc::new(AtomicUsize::new(0));
    /// let last = Arc::clone(&seen);
    /// let items: Vec<u32> = (0..100).collect();
    /// let out = amorsize::Options::new()
    ///     .progress(move |p| last.store(p.done, Ordering::Relaxed))
    ///     .execute(&items, |x| x + 1)?;
    /// assert_eq!(out.len(), 100);
    /// assert_eq!(seen.load(Ordering::Relaxed), 100);
    /// # Ok::<(), amorsize::Error>(())
    /// ```
    pub fn progress(mut self, callback: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.exec.progress = Some(ProgressFn(Arc::new(callback)));
        self
    }

    /// Whether the chunk size may change during a run when the measured chunk durations
    /// drift from the prediction (default: yes). Fixing the chunk size with
    /// [`Options::chunk_size`] also keeps it fixed.
    pub fn adapt_chunks(mut self, adapt: bool) -> Self {
        self.exec.adapt = adapt;
        self
    }

    /// Whether a parallel run checks itself and sheds workers when they run slower together
    /// than the serial loop (default: yes; see
    /// [`RunReport::sheds`](crate::report::RunReport::sheds)). Off, the run keeps the workers
    /// it was planned with to the end, as a benchmark of a fixed plan wants.
    pub fn shed_workers(mut self, shed: bool) -> Self {
        self.exec.shed = shed;
        self
    }

    /// Bounds the items a stream holds at once (inputs handed out and results not yet taken)
    /// to about `items`, instead of [`CHUNKS_AHEAD`](crate::exec::CHUNKS_AHEAD) chunks per worker.
    pub fn in_flight(mut self, items: NonZeroUsize) -> Self {
        self.exec.in_flight = Some(items);
        self
    }
}
