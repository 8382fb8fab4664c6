//! Options of execution (as opposed to planning): progress callback, chunk adaptation and the
//! in-flight bound of streams. They live in [`Options`] beside the planning options.

use super::progress::{Progress, ProgressFn};
pub(crate) use crate::plan::ExecOptions;
use crate::Options;
use std::num::NonZeroUsize;
use std::sync::Arc;

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
