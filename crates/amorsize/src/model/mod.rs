//! The cost model: **pure** arithmetic that predicts how long a candidate plan takes.
//!
//! No clock, no file, no environment: every figure comes in through [`Workload`] (what the
//! sample measured about the user's function) and [`Costs`] (what a backend costs on this
//! machine, measured by [`probe`](crate::probe)).

use serde::{Deserialize, Serialize};
use std::num::NonZeroUsize;

/// Time in seconds, the model's unit.
pub type Seconds = f64;

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

/// What the sample measured about the workload, per item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// Items in the whole input, sampled ones included.
    pub items: usize,
    /// Mean wall time of one item.
    pub item_time: Seconds,
    /// Thread CPU time ÷ wall time over the sample, in `0..=1`: near 1 is CPU-bound work, near
    /// 0 is waiting (sleep, I/O).
    pub cpu_fraction: f64,
    /// Coefficient of variation (standard deviation ÷ mean) of the per-item wall time.
    pub cv: f64,
    /// Process CPU time ÷ thread CPU time over the sample: above 1 the function runs threads of
    /// its own (rayon inside, BLAS), and fewer workers fit on the cores.
    pub self_parallelism: f64,
    /// Memory one item's result occupies, in bytes.
    pub result_bytes: u64,
    /// Serialization cost per item, for backends that move data between processes.
    pub transfer: Transfer,
}

/// Serialization figures per item (zero for the thread backend).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Transfer {
    /// Time to encode one input item and decode it on the other side.
    pub input_time: Seconds,
    /// Time to encode one result and decode it on the other side.
    pub output_time: Seconds,
    /// Encoded bytes of one input item.
    pub input_bytes: u64,
    /// Encoded bytes of one result.
    pub output_bytes: u64,
}

/// What a backend costs on this machine (measured by [`probe`](crate::probe)).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Costs {
    /// The backend these costs belong to.
    pub backend: Backend,
    /// Marginal cost of starting one more worker.
    pub worker_start: Seconds,
    /// Cost of handing out one chunk and collecting its results.
    pub chunk_dispatch: Seconds,
    /// Time per byte moved between processes (0 for threads).
    pub transfer_per_byte: Seconds,
}

/// A candidate plan: how many workers, how many items per chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// Parallel workers.
    pub workers: NonZeroUsize,
    /// Items handed out together.
    pub chunk: NonZeroUsize,
}
