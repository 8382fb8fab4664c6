//! What the options carry for the executor (as opposed to planning): progress callback, chunk
//! adaptation, the in-flight bounds of streams, shedding. Plain data here, so that
//! [`Options`](crate::Options) holds them; the executor sets and reads them
//! ([`exec`](crate::exec)).

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

/// Execution settings carried by [`Options`].
#[derive(Clone, Debug)]
pub(crate) struct ExecOptions {
    pub(crate) progress: Option<ProgressFn>,
    pub(crate) adapt: bool,
    pub(crate) in_flight: Option<NonZeroUsize>,
    /// A stream's bound on the bytes of its items in flight ([`Options::memory_budget`]).
    pub(crate) memory_budget: Option<u64>,
    /// Chunks of exactly the planned size to the end, with no shrinking tail: a measured grid
    /// ([`tune`](crate::exec::tune)) times the chunk size it names.
    pub(crate) fixed_chunks: bool,
    /// When the run stops handing out chunks, unfinished ([`Cause::Deadline`]).
    ///
    /// [`Cause::Deadline`]: crate::exec
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

/// Where a run stands, passed to the callback set with
/// [`Options::progress`](crate::Options::progress).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Items finished so far (sampled items included).
    pub done: usize,
    /// Items in all, when known (a slice, or an iterator with an exact size hint).
    pub total: Option<usize>,
    /// Time since the run started.
    pub elapsed: Duration,
    /// Estimated time left, from the rate so far; `None` until an item is done or when the
    /// total is unknown.
    pub remaining: Option<Duration>,
}

impl Progress {
    /// A report of `done` out of `total` after `elapsed`, with the time left extrapolated at
    /// the mean rate so far.
    ///
    /// # Examples
    ///
    /// ```
    /// use amorsize::exec::Progress;
    /// use std::time::Duration;
    ///
    /// let p = Progress::new(25, Some(100), Duration::from_secs(1));
    /// assert_eq!(p.remaining, Some(Duration::from_secs(3)));
    /// assert_eq!(Progress::new(0, Some(100), Duration::from_secs(1)).remaining, None);
    /// ```
    pub fn new(done: usize, total: Option<usize>, elapsed: Duration) -> Progress {
        let remaining = match total {
            Some(total) if done > 0 => {
                let left = total.saturating_sub(done) as f64;
                Some(elapsed.mul_f64(left / done as f64))
            }
            _ => None,
        };
        Progress {
            done,
            total,
            elapsed,
            remaining,
        }
    }
}

/// The caller's progress callback, shared by the clones of an [`Options`](crate::Options).
#[derive(Clone)]
pub(crate) struct ProgressFn(pub(crate) Arc<dyn Fn(&Progress) + Send + Sync>);

impl fmt::Debug for ProgressFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProgressFn(..)")
    }
}
