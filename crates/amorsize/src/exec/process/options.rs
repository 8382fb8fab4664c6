//! What the process backend does when things go wrong, and where its workers come from.

use std::time::Duration;

/// Options of the process backend, beside the planning [`Options`](crate::Options).
///
/// # Examples
///
/// ```
/// use amorsize::exec::process::ProcessOptions;
/// use std::time::Duration;
///
/// let options = ProcessOptions::new()
///     .retries(2)
///     .chunk_timeout(Duration::from_secs(30));
/// assert_eq!(options.retry_count(), 2);
/// assert_eq!(options.chunk_time_limit(), Some(Duration::from_secs(30)));
/// ```
#[derive(Clone, Debug, Default)]
pub struct ProcessOptions {
    pub(super) retries: u32,
    pub(super) chunk_timeout: Option<Duration>,
    pub(super) allow_threads: bool,
    pub(super) memory_budget: Option<u64>,
}

impl ProcessOptions {
    /// The defaults: no retry, no timeout, no thread fallback.
    pub fn new() -> Self {
        Self::default()
    }

    /// Retry a failed item up to `n` more times before it is reported as failed. A chunk whose
    /// worker crashed, was killed or timed out is retried one item per chunk on fresh workers,
    /// so that the items that did not cause the failure still complete and the ones that did
    /// are named. An item the parent cannot serialize is never retried.
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }

    /// Kill a worker that takes longer than `d` over one chunk, and count the chunk as failed.
    pub fn chunk_timeout(mut self, d: Duration) -> Self {
        self.chunk_timeout = Some(d);
        self
    }

    /// When worker processes do not pay (serialization costs more than they save), run on
    /// threads of this process instead of the serial loop if threads are predicted to be
    /// faster. Leave it off when the function needs a process of its own (not thread-safe,
    /// may crash).
    pub fn allow_threads(mut self, allow: bool) -> Self {
        self.allow_threads = allow;
        self
    }

    /// Bounds the results a [`start`](super::start)ed run holds for its reader to about
    /// `bytes`, counted as they came from the workers (their serialized size): a worker whose
    /// chunk would go past the budget waits before taking the next chunk until the reader has
    /// taken enough. Besides these, each busy worker holds one chunk's results. A chunk's
    /// results always pass when nothing is held, so a budget below one chunk still makes
    /// progress. Batches ([`run`](super::run), [`execute`](super::execute)) hold every result
    /// anyway; their plan warns when those would fill memory.
    pub fn memory_budget(mut self, bytes: u64) -> Self {
        self.memory_budget = Some(bytes);
        self
    }

    /// The retry count.
    pub fn retry_count(&self) -> u32 {
        self.retries
    }

    /// The per-chunk timeout, if any.
    pub fn chunk_time_limit(&self) -> Option<Duration> {
        self.chunk_timeout
    }
}
