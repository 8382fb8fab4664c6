//! Progress reports for a caller's progress bar: items done, items in all (when known),
//! elapsed time and an estimate of the time left.

pub use crate::plan::Progress;
pub(crate) use crate::plan::ProgressFn;
use std::time::Instant;

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
