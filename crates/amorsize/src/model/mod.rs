//! The cost model: **pure** arithmetic that predicts how long a candidate plan takes.
//!
//! No clock, no file, no environment: every figure comes in through [`Workload`] (what the
//! sample measured about the user's function) and [`Costs`] (what a backend costs on this
//! machine, measured by [`probe`](crate::probe) or by the backend itself). The same model serves
//! threads, worker processes and shell commands; only the figures differ.
//!
//! [`predict`] gives the time of a [`Candidate`] as a sum of named terms ([`Prediction`]); its
//! laws (speedup never above the workers nor the usable cores, more overhead never faster, the
//! serial prediction is item time × items, other programs' load never counted twice) are held
//! by property tests. The cores come in as a [`Capacity`]: what other programs' runnable
//! threads leave of them, and how the scheduler shares them ([`Sharing`]).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::num::NonZeroUsize;

mod capacity;
pub mod contention;
#[cfg(test)]
mod laws;
mod memory;
pub mod network;
mod predict;
pub mod shed;

pub use capacity::Capacity;
pub use contention::{
    contention_now, contention_of_run, fade_contention, same_load, update_contention, Learned,
    RunContention,
};
pub use memory::{
    results_fill_memory, results_memory, workers_within_memory, MemorySource, MEMORY_HEADROOM,
};
pub use predict::{predict, Prediction, Term};

pub use crate::probe::Sharing;
pub use crate::sample::{ItemMemory, Transfer};
pub use crate::units::Seconds;

/// Where the work runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// Threads of a rayon pool in this process.
    Threads,
    /// Worker processes (this executable re-executed in worker mode).
    Processes,
    /// Child processes running the user's shell command.
    Commands,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Threads => "threads",
            Backend::Processes => "processes",
            Backend::Commands => "commands",
        })
    }
}

/// What the sample measured about the workload, per item.
///
/// Start from [`Workload::new`] (or `Default`) and set what was measured; the defaults describe
/// CPU-bound work that runs on one thread, uniform items, nothing to serialize.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// Items the plan is for. For a sampled input these are the items the sample did not run
    /// (their results are kept), so the prediction covers exactly the work still to do.
    pub items: usize,
    /// Mean wall time of one item.
    pub item_time: Seconds,
    /// Thread CPU time ÷ wall time over the sample, in `0..=1`: near 1 is CPU-bound work, near
    /// 0 is waiting (sleep, I/O).
    pub cpu_fraction: f64,
    /// Coefficient of variation (standard deviation ÷ mean) of the per-item wall time.
    pub cv: f64,
    /// Process CPU time ÷ thread CPU time over the sample, at least 1: above 1 the function runs
    /// threads of its own (rayon inside, BLAS), and fewer workers fit on the cores.
    pub self_parallelism: f64,
    /// Memory one item's result occupies, in bytes: its heap bytes (counted) and its
    /// `size_of`, or only the `size_of` when the heap was not counted.
    pub result_bytes: u64,
    /// Memory one worker needs while it works, in bytes (a thread: one item's counted peak;
    /// a worker process or a command: a peak RSS); 0 when not measured, and then memory does
    /// not cap the workers.
    pub worker_memory: u64,
    /// Where `worker_memory` came from.
    #[serde(default)]
    pub memory_source: MemorySource,
    /// What the sample counted of one item's memory, when the counting allocator is
    /// installed.
    #[serde(default)]
    pub item_memory: Option<ItemMemory>,
    /// Contention as the Universal Scalability Law's α (each extra worker slows every worker by
    /// this fraction: shared memory bandwidth, locks). A one-thread sample cannot see it, so it
    /// is 0 unless a past run measured it.
    pub contention: f64,
    /// Serialization cost per item, for backends that move data between processes.
    pub transfer: Transfer,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            items: 0,
            item_time: 0.0,
            cpu_fraction: 1.0,
            cv: 0.0,
            self_parallelism: 1.0,
            result_bytes: 0,
            worker_memory: 0,
            memory_source: MemorySource::NotMeasured,
            item_memory: None,
            contention: 0.0,
            transfer: Transfer::default(),
        }
    }
}

impl Workload {
    /// `items` uniform CPU-bound items of `item_time` each; set the other fields as measured.
    ///
    /// # Examples
    ///
    /// ```
    /// use amorsize::model::Workload;
    /// let w = Workload { cv: 0.5, ..Workload::new(1000, 1e-3) };
    /// assert_eq!(w.serial_time(), 1.0);
    /// ```
    pub fn new(items: usize, item_time: Seconds) -> Self {
        Workload {
            items,
            item_time,
            ..Workload::default()
        }
    }

    /// The workload of `items` more items like those of `sample`.
    pub fn from_sample(sample: &crate::sample::Sample, items: usize) -> Workload {
        Workload {
            items,
            item_time: sample.item_time,
            cpu_fraction: sample.cpu_fraction,
            cv: sample.cv,
            self_parallelism: sample.self_parallelism,
            result_bytes: sample.result_bytes,
            // A thread runs one item at a time: its memory is one item's peak.
            worker_memory: sample.memory.map_or(0, |m| m.peak),
            memory_source: match sample.memory {
                Some(m) if m.peak > 0 => MemorySource::Counted,
                _ => MemorySource::NotMeasured,
            },
            item_memory: sample.memory,
            ..Workload::default()
        }
    }

    /// Predicted time of the plain serial loop: item time × items.
    pub fn serial_time(&self) -> Seconds {
        self.item_time * self.items as f64
    }

    /// CPU one item keeps busy while it runs, in cores: the thread's share of the wall time times
    /// the threads the function runs itself. Below 1 the work waits, and more workers than cores
    /// help.
    pub fn cpu_demand(&self) -> f64 {
        (self.cpu_fraction.clamp(0.0, 1.0) * self.self_parallelism.max(1.0)).max(0.0)
    }
}

/// What a backend costs on this machine (measured by [`probe`](crate::probe) for threads, by
/// the backend itself for processes and commands).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Costs {
    /// The backend these costs belong to.
    pub backend: Backend,
    /// Marginal cost of starting one more worker.
    pub worker_start: Seconds,
    /// Cost of handing out one chunk and collecting its results, paid by the worker that runs it.
    pub chunk_dispatch: Seconds,
    /// Time per byte moved between processes (0 for threads).
    pub transfer_per_byte: Seconds,
    /// Which figures are named fallback constants rather than measurements (a plan reports them).
    #[serde(default)]
    pub fallbacks: Fallbacks,
}

impl Costs {
    /// Costs of `backend` that are all zero: the ideal machine, a lower bound for every real one.
    pub fn zero(backend: Backend) -> Self {
        Costs {
            backend,
            worker_start: 0.0,
            chunk_dispatch: 0.0,
            transfer_per_byte: 0.0,
            fallbacks: Fallbacks::default(),
        }
    }
}

/// Which figures of a [`Costs`] are fallback constants because the measurement failed its
/// quality check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fallbacks {
    /// [`Costs::worker_start`] is a fallback.
    pub worker_start: bool,
    /// [`Costs::chunk_dispatch`] is a fallback.
    pub chunk_dispatch: bool,
    /// [`Costs::transfer_per_byte`] is a fallback.
    pub transfer_per_byte: bool,
}

impl Fallbacks {
    /// Whether any figure is a fallback.
    pub fn any(&self) -> bool {
        self.worker_start || self.chunk_dispatch || self.transfer_per_byte
    }
}

/// A candidate plan: how many workers, how many items per chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// Parallel workers.
    pub workers: NonZeroUsize,
    /// Items handed out together.
    pub chunk: NonZeroUsize,
}

impl Candidate {
    /// `workers` workers and chunks of `chunk` items; zeros become 1.
    pub fn new(workers: usize, chunk: usize) -> Self {
        Candidate {
            workers: NonZeroUsize::new(workers).unwrap_or(NonZeroUsize::MIN),
            chunk: NonZeroUsize::new(chunk).unwrap_or(NonZeroUsize::MIN),
        }
    }
}
