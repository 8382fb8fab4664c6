//! Memory terms: how many workers fit in the memory available, and what a batch's results
//! hold. Pure arithmetic over figures the sample and the probe measured.

use super::Workload;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The share of the available memory the workers may fill: the rest is room for this
/// process's own growth, the kernel's page cache and the error of an estimate made from a
/// few items. A worker count that fills memory to the last byte would make the kernel
/// reclaim the page cache, swap or kill a worker (cgroup `memory.max`), which costs far more
/// than the one worker fewer that this margin may cost.
pub const MEMORY_HEADROOM: f64 = 0.8;

/// A batch whose results would take more than this share of the available memory gets a
/// warning: the results are all held until the call returns, beside everything else.
pub(crate) const RESULTS_WARN_SHARE: f64 = 0.5;

/// Where [`Workload::worker_memory`] came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemorySource {
    /// Not measured: memory does not cap the workers.
    #[default]
    NotMeasured,
    /// One item's peak live heap, counted by the counting allocator: a thread runs one item
    /// at a time, so that is what each worker adds.
    Counted,
    /// An idle worker process's peak resident set, measured, plus one item's counted peak
    /// (or nothing, when the counting allocator is not installed).
    WorkerBaseline,
    /// The peak resident set of worker processes that ran this function, measured.
    WorkerPeak,
    /// The peak resident set of the child processes of a shell command, measured.
    ChildPeak,
}

impl fmt::Display for MemorySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MemorySource::NotMeasured => "not measured",
            MemorySource::Counted => "peak live heap of one item, counted",
            MemorySource::WorkerBaseline => "an idle worker's peak RSS, measured, plus one item",
            MemorySource::WorkerPeak => "peak RSS of this function's worker processes, measured",
            MemorySource::ChildPeak => "peak RSS of the command's processes, measured",
        })
    }
}

impl Workload {
    /// Where [`Workload::worker_memory`] came from, for people: a figure set without naming
    /// its source (a backend that measures it itself) reads as that.
    pub fn worker_memory_source(&self) -> String {
        match self.memory_source {
            MemorySource::NotMeasured if self.worker_memory > 0 => {
                "as the backend measured it".to_owned()
            }
            source => source.to_string(),
        }
    }
}

/// The most workers of `per_worker` bytes each that fit in [`MEMORY_HEADROOM`] of `available`
/// bytes; at least 1 (one worker is the serial loop's own need). `None` when `per_worker` is
/// 0 (not measured): memory does not cap.
///
/// # Examples
///
/// ```
/// use amorsize::model::workers_within_memory;
/// // 1 GiB available, 100 MiB per worker: 8 fit in 80 % of it.
/// assert_eq!(workers_within_memory(1 << 30, 100 << 20), Some(8));
/// assert_eq!(workers_within_memory(1 << 20, 100 << 20), Some(1));
/// assert_eq!(workers_within_memory(1 << 30, 0), None);
/// ```
pub fn workers_within_memory(available: u64, per_worker: u64) -> Option<usize> {
    if per_worker == 0 {
        return None;
    }
    let room = available as f64 * MEMORY_HEADROOM;
    let workers = (room / per_worker as f64).floor();
    Some((workers.min(usize::MAX as f64) as usize).max(1))
}

/// Bytes the results of `items` items hold in all ([`Workload::result_bytes`] each).
pub fn results_memory(w: &Workload, items: usize) -> u64 {
    w.result_bytes.saturating_mul(items as u64)
}

/// Whether results of `results` bytes would exceed half (`RESULTS_WARN_SHARE`) of `available`.
pub fn results_fill_memory(results: u64, available: u64) -> bool {
    results as f64 > available as f64 * RESULTS_WARN_SHARE
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The workers allowed never need more than the headroom's share of the memory
        /// (beyond the one worker always allowed), and one more would.
        #[test]
        fn the_workers_allowed_fit_and_one_more_would_not(
            available in 0u64..(1 << 40),
            per_worker in 1u64..(1 << 34),
        ) {
            let w = workers_within_memory(available, per_worker).unwrap() as f64;
            let room = available as f64 * MEMORY_HEADROOM;
            prop_assert!(w == 1.0 || w * per_worker as f64 <= room * (1.0 + 1e-12));
            prop_assert!((w + 1.0) * per_worker as f64 > room * (1.0 - 1e-12));
        }

        /// More memory per worker never allows more workers.
        #[test]
        fn more_memory_per_worker_never_allows_more(
            available in 0u64..(1 << 40),
            a in 1u64..(1 << 34),
            b in 1u64..(1 << 34),
        ) {
            let (lo, hi) = (a.min(b), a.max(b));
            prop_assert!(workers_within_memory(available, hi) <= workers_within_memory(available, lo));
        }
    }
}
