//! The decision: serial or parallel, how many workers, what chunk size, and why.

use crate::model::{Backend, Seconds};
use serde::{Deserialize, Serialize};
use std::num::NonZeroUsize;
use std::time::Duration;

mod options;
pub use options::Options;

/// Serial or parallel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A plain loop on the calling thread.
    Serial,
    /// Chunks handed out to parallel workers.
    Parallel,
}

/// A decision with the figures behind it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    mode: Mode,
    backend: Backend,
    workers: NonZeroUsize,
    chunk: NonZeroUsize,
    /// Predicted mean time of one item, when a sample measured it.
    item_time: Option<Seconds>,
    /// Predicted serial time of the whole input.
    predicted_serial: Option<Seconds>,
    /// Predicted time of the chosen plan.
    predicted: Option<Seconds>,
}

impl Plan {
    /// A plan fixed by the caller, with no prediction behind it: `workers` workers (serial when
    /// 1) and chunks of `chunk` items.
    pub fn fixed(workers: NonZeroUsize, chunk: NonZeroUsize) -> Plan {
        let mode = if workers.get() == 1 {
            Mode::Serial
        } else {
            Mode::Parallel
        };
        Plan {
            mode,
            backend: Backend::Threads,
            workers,
            chunk,
            item_time: None,
            predicted_serial: None,
            predicted: None,
        }
    }

    /// Serial or parallel.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether the plan runs in parallel.
    pub fn is_parallel(&self) -> bool {
        self.mode == Mode::Parallel
    }

    /// The backend the plan was made for.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Parallel workers (1 for a serial plan).
    pub fn workers(&self) -> NonZeroUsize {
        self.workers
    }

    /// Items per chunk.
    pub fn chunk_size(&self) -> NonZeroUsize {
        self.chunk
    }

    /// Predicted mean time of one item, when measured.
    pub fn item_time(&self) -> Option<Duration> {
        self.item_time.map(Duration::from_secs_f64)
    }

    /// Predicted wall time of the plan, when predicted.
    pub fn predicted_time(&self) -> Option<Duration> {
        self.predicted.map(Duration::from_secs_f64)
    }

    /// Predicted wall time of the serial loop, when predicted.
    pub fn predicted_serial_time(&self) -> Option<Duration> {
        self.predicted_serial.map(Duration::from_secs_f64)
    }

    /// Predicted speedup over the serial loop, when predicted.
    pub fn predicted_speedup(&self) -> Option<f64> {
        match (self.predicted_serial, self.predicted) {
            (Some(s), Some(p)) if p > 0.0 => Some(s / p),
            _ => None,
        }
    }
}

/// Samples `items` with `f`, then decides. The sampled results are returned so that execution
/// does not run those items again.
pub(crate) fn plan_slice<T, R, F>(
    items: &[T],
    f: &F,
    options: &Options,
) -> crate::Result<(Plan, crate::sample::Sampled<R>)>
where
    F: Fn(&T) -> R,
{
    let sampled = crate::sample::sample_slice(items, f)?;
    let plan = decide(&sampled.figures, items.len(), options);
    Ok((plan, sampled))
}

/// Decides from a sample of a workload of `items` items.
pub(crate) fn decide(sample: &crate::sample::Sample, items: usize, options: &Options) -> Plan {
    let cores = crate::probe::machine().logical_cpus();
    let workers = options
        .workers
        .unwrap_or_else(|| NonZeroUsize::new(cores).unwrap_or(NonZeroUsize::MIN));
    let per_worker = items.div_ceil(4 * workers.get()).max(1);
    let chunk = options
        .chunk
        .unwrap_or(NonZeroUsize::new(per_worker).unwrap_or(NonZeroUsize::MIN));
    let serial = sample.item_time * items as f64;
    let parallel = serial / workers.get() as f64;
    let mut plan = Plan::fixed(workers, chunk);
    plan.item_time = Some(sample.item_time);
    plan.predicted_serial = Some(serial);
    plan.predicted = Some(parallel);
    if serial / parallel.max(f64::MIN_POSITIVE) < options.threshold {
        plan.mode = Mode::Serial;
        plan.workers = NonZeroUsize::MIN;
    }
    plan
}
