//! Progress reports for a caller's progress bar: items done, items in all (when known),
//! elapsed time and an estimate of the time left.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// Counts finished items on the coordinating thread and calls the callback.
pub(crate) struct Reporter {
    callback: ProgressFn,
    done: usize,
    total: Option<usize>,
    start: Instant,
}

impl Reporter {
    /// A reporter for a run that starts now with `done` items already finished.
    pub(crate) fn new(callback: &ProgressFn, done: usize, total: Option<usize>) -> Self {
        Reporter {
            callback: callback.clone(),
            done,
            total,
            start: Instant::now(),
        }
    }

    /// Items counted so far.
    pub(crate) fn done(&self) -> usize {
        self.done
    }

    /// Counts `items` more finished items and reports.
    pub(crate) fn add(&mut self, items: usize) {
        self.done += items;
        let p = Progress::new(self.done, self.total, self.start.elapsed());
        (self.callback.0)(&p);
    }
}
