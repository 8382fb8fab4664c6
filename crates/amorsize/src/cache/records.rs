//! What the cache gives back: calibrations, a workload's history, and summaries for people.

use super::Fingerprint;
use crate::model::{Costs, RunContention, Seconds};
use crate::sample::Sample;
use serde::Serialize;
use std::time::Duration;

/// A finished run as [`Cache::record_run`](super::Cache::record_run) stores it: what the plan
/// was and what the run measured (the plan layer makes it from a plan:
/// [`Plan::run_facts`](crate::Plan::run_facts)).
#[derive(Clone, Debug, PartialEq)]
pub struct RunFacts {
    /// The plan, serialized (JSON).
    pub plan: String,
    /// Workers it ran on.
    pub workers: usize,
    /// Items per chunk.
    pub chunk: usize,
    /// Items the run processed.
    pub items: usize,
    /// Wall time of the whole run, sampling included.
    pub wall: Duration,
    /// Predicted wall time, as planned (contention included).
    pub predicted: Option<Duration>,
    /// Predicted wall time of the serial loop.
    pub predicted_serial: Option<Duration>,
    /// What the run says of the workload's contention.
    pub contention: RunContention,
    /// The contention (α) the prediction included.
    pub contention_used: f64,
}

/// One past run of a workload.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RunRecord {
    /// The plan that ran, serialized (JSON); empty for all but the newest run.
    pub plan: String,
    /// Whether it ran in parallel.
    pub parallel: bool,
    /// Workers it ran on.
    pub workers: usize,
    /// Items per chunk.
    pub chunk: usize,
    /// Items processed.
    pub items: usize,
    /// Measured wall time.
    pub wall: Duration,
    /// Predicted wall time, as planned (contention included).
    pub predicted: Option<Duration>,
    /// Predicted wall time of the serial loop.
    pub predicted_serial: Option<Duration>,
    /// The contention (α) the prediction included.
    pub contention_used: f64,
}

impl RunRecord {
    /// Measured ÷ predicted time, as planned: 1 is a perfect prediction.
    pub fn error_ratio(&self) -> Option<f64> {
        let p = self.predicted?.as_secs_f64();
        (p > 0.0).then(|| self.wall.as_secs_f64() / p)
    }

    /// Predicted serial time ÷ measured time: the speedup over the serial loop the sample
    /// predicted (the serial loop itself was not run).
    pub fn measured_speedup(&self) -> Option<f64> {
        let w = self.wall.as_secs_f64();
        let s = self.predicted_serial?.as_secs_f64();
        (w > 0.0).then(|| s / w)
    }

    /// Predicted serial time ÷ predicted time.
    pub fn predicted_speedup(&self) -> Option<f64> {
        let p = self.predicted?.as_secs_f64();
        let s = self.predicted_serial?.as_secs_f64();
        (p > 0.0).then(|| s / p)
    }
}

/// What the cache remembers of a workload on this machine.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct WorkloadHistory {
    /// Runs recorded, over the whole history.
    pub runs: u64,
    /// Contention between workers (α) learned from parallel runs, 0 until one is recorded.
    pub contention: f64,
    /// Parallel runs the contention was learned from.
    pub learned: u64,
    /// Other programs' runnable threads on this process's cores while it was learned (a
    /// running mean over the runs that taught it).
    pub contention_load: f64,
    /// Time since the last run that taught it.
    pub contention_age: Duration,
    /// The most recent samples, oldest first.
    pub samples: Vec<Sample>,
    /// The most recent runs, oldest first.
    pub recent: Vec<RunRecord>,
}

impl WorkloadHistory {
    /// The measured per-item cost to start from: over whole serial runs (wall time ÷ items),
    /// the median of the recent ones; else the median item time of the recent samples. A
    /// serial run measures every item of an input, where a sample measures a few, which may
    /// have run from warmer caches than the whole.
    pub fn item_time(&self) -> Option<Seconds> {
        let per_item = self
            .recent
            .iter()
            .filter(|r| !r.parallel && r.items > 0)
            .map(|r| r.wall.as_secs_f64() / r.items as f64);
        median(per_item).or_else(|| self.sample_item_time())
    }

    /// The learned contention as it applies with `load_now` other runnable threads: only under
    /// the load it was learned under, fading with its age ([`contention_now`]).
    ///
    /// [`contention_now`]: crate::model::contention_now
    pub fn contention_at(&self, load_now: f64) -> f64 {
        crate::model::contention_now(
            self.contention,
            self.contention_load,
            self.contention_age,
            load_now,
        )
    }

    /// The median item time of the recent samples.
    pub fn sample_item_time(&self) -> Option<Seconds> {
        median(self.samples.iter().map(|s| s.item_time))
    }

    /// The chunk size of the most recent run.
    pub fn chunk_size(&self) -> Option<usize> {
        self.recent.last().map(|r| r.chunk)
    }

    /// The plan of the most recent run, serialized (JSON).
    pub fn last_plan(&self) -> Option<&str> {
        Some(self.recent.last()?.plan.as_str()).filter(|p| !p.is_empty())
    }
}

/// The median of the finite, non-negative `values`.
fn median(values: impl Iterator<Item = Seconds>) -> Option<Seconds> {
    let v: Vec<Seconds> = values.filter(|t| t.is_finite() && *t >= 0.0).collect();
    crate::stats::median(&v)
}

/// A stored calibration.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Calibration {
    /// The machine it was measured on (`None` when its stored form no longer parses).
    pub machine: Option<Fingerprint>,
    /// Whether that is this machine.
    pub this_machine: bool,
    /// The measured costs.
    pub costs: Costs,
    /// Seconds since it was measured.
    pub age_secs: u64,
}

/// A workload as `amorsize cache show` lists it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct WorkloadSummary {
    /// The workload key.
    pub key: String,
    /// Whether its runs were on this machine.
    pub this_machine: bool,
    /// Runs recorded.
    pub runs: u64,
    /// The contention learned, as stored (before [`contention_now`](crate::model::contention_now)
    /// ties it to the load and its age).
    pub contention: f64,
    /// Other programs' runnable threads while it was learned.
    pub contention_load: f64,
    /// Median sampled item time, seconds.
    pub item_time: Option<Seconds>,
    /// Workers of the last run.
    pub last_workers: Option<usize>,
    /// Chunk size of the last run.
    pub last_chunk: Option<usize>,
    /// Measured wall time of the last run, seconds.
    pub last_wall: Option<Seconds>,
    /// Measured ÷ predicted time of the last run.
    pub last_error_ratio: Option<f64>,
    /// Seconds since the last run.
    pub age_secs: u64,
}

/// Everything in the cache, for people.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Summary {
    /// Stored calibrations, of every machine.
    pub calibrations: Vec<Calibration>,
    /// Known workloads, of every machine, most recent first.
    pub workloads: Vec<WorkloadSummary>,
}
