//! What a run of the process backend returns: the results it has, and the items it could not
//! complete with the reason for each (the original library's dead-letter queue, as a value).

use crate::plan::Plan;
use crate::{Error, ErrorKind, Result};
use std::ops::Range;
use std::sync::Mutex;
use std::time::Duration;

/// Items that failed together, and why.
#[derive(Debug)]
#[non_exhaustive]
pub struct Failure {
    pub(super) chunk: usize,
    pub(super) items: Range<usize>,
    pub(super) attempts: u32,
    pub(super) error: Error,
}

impl Failure {
    /// The chunk (numbered from 0 in input order) the items were handed out in.
    pub fn chunk(&self) -> usize {
        self.chunk
    }

    /// The input indices that have no result.
    pub fn items(&self) -> Range<usize> {
        self.items.clone()
    }

    /// How many times the items were tried.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Why the last attempt failed.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// Takes the error out.
    pub fn into_error(self) -> Error {
        self.error
    }
}

/// Figures of one run, measured while it ran.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct RunStats {
    /// Chunks sent to workers (retries included).
    pub chunks: usize,
    /// Worker processes started during the run (the rest came idle from the pool).
    pub workers_started: usize,
    /// Mean time from spawning a worker to its first word, over the workers started.
    pub mean_start_time: Option<Duration>,
    /// Mean round trip of a chunk minus the time the worker was busy with it: what handing
    /// out a chunk cost, transfer included.
    pub mean_chunk_overhead: Option<Duration>,
    /// Items tried again after a failure.
    pub retried_items: usize,
    /// The highest peak resident set size the workers reported after a chunk, in bytes:
    /// over each worker's life, so at least what this run needed of one worker.
    pub peak_worker_rss: Option<u64>,
    /// For a [`start`](super::start)ed run with a
    /// [memory budget](super::ProcessOptions::memory_budget): the most result bytes (as they
    /// came from the workers) held for the reader at once.
    pub peak_held_bytes: Option<u64>,
}

/// The results of a run and the items that failed.
#[derive(Debug)]
#[non_exhaustive]
pub struct Outcome<R> {
    pub(super) plan: Plan,
    pub(super) results: Vec<Option<R>>,
    pub(super) failures: Vec<Failure>,
    pub(super) stats: RunStats,
}

impl<R> Outcome<R> {
    /// The plan the run followed.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// One entry per input item, in input order: `None` for the failed ones.
    pub fn results(&self) -> &[Option<R>] {
        &self.results
    }

    /// The items without a result, grouped as they failed, in input order.
    pub fn failures(&self) -> &[Failure] {
        &self.failures
    }

    /// Whether every item has its result.
    pub fn is_complete(&self) -> bool {
        self.failures.is_empty()
    }

    /// Figures measured during the run.
    pub fn stats(&self) -> &RunStats {
        &self.stats
    }

    /// The results and the failures, apart.
    pub fn into_parts(self) -> (Vec<Option<R>>, Vec<Failure>) {
        (self.results, self.failures)
    }

    /// All results in input order.
    ///
    /// # Errors
    ///
    /// The first failure's error when any item failed; its message also says how many items
    /// failed in all.
    pub fn into_results(self) -> Result<Vec<R>> {
        let failed: usize = self.failures.iter().map(|f| f.items.len()).sum();
        if let Some(first) = self.failures.into_iter().next() {
            let more = failed - first.items.len();
            if more == 0 {
                return Err(first.error);
            }
            let kind = first.error.kind();
            let message = format!("{} (and {more} more items failed)", first.error);
            let mut error = Error::new(kind, message);
            if let Some(item) = first.error.item() {
                error = error.with_item(item);
            }
            return Err(error.with_source(first.error));
        }
        Ok(self.results.into_iter().flatten().collect())
    }
}

/// The error for an item the caller's value made impossible to send or receive.
pub(super) fn serialization_error(index: usize, message: String) -> Error {
    Error::new(ErrorKind::Serialization, message).with_item(index)
}

/// Collects a run's results in input order.
pub(super) struct Gather<R> {
    state: Mutex<(Vec<Option<R>>, Vec<Failure>)>,
}

impl<R> Gather<R> {
    /// Room for `items` results.
    pub(super) fn new(items: usize) -> Self {
        let results = std::iter::repeat_with(|| None).take(items).collect();
        Gather {
            state: Mutex::new((results, Vec::new())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Vec<Option<R>>, Vec<Failure>)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The outcome, failures in input order.
    pub(super) fn into_outcome(self, plan: Plan, stats: RunStats) -> Outcome<R> {
        let (results, mut failures) = self.state.into_inner().unwrap_or_else(|e| e.into_inner());
        failures.sort_by_key(|f| f.items.start);
        Outcome {
            plan,
            results,
            failures,
            stats,
        }
    }
}

impl<R: Send> super::run::Sink<R> for Gather<R> {
    fn results(&self, results: Vec<(usize, R)>, _bytes: u64) {
        let mut state = self.lock();
        for (index, result) in results {
            state.0[index] = Some(result);
        }
    }

    fn failure(&self, failure: Failure) {
        self.lock().1.push(failure);
    }
}
