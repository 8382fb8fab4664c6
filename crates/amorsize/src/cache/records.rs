//! What the cache gives back: calibrations, a workload's history, and summaries for people.

use super::Fingerprint;
use crate::model::{Costs, Seconds};
use crate::plan::Plan;
use crate::sample::Sample;
use serde::Serialize;
use std::time::Duration;

/// What a finished run measured, as [`Cache::record_run`](super::Cache::record_run) takes it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measured {
    /// Wall time of the whole run, sampling included.
    pub wall: Duration,
    /// Items the run processed.
    pub items: usize,
    /// The correction the plan's prediction was multiplied by (1 when none was applied), so
    /// that the model's own error can be told from the corrected one.
    pub correction_applied: f64,
}

/// One past run of a workload.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRecord {
    /// The plan that ran, when its stored form still parses.
    pub plan: Option<Plan>,
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
    /// Predicted wall time, as planned (correction included).
    pub predicted: Option<Duration>,
    /// Predicted wall time of the serial loop.
    pub predicted_serial: Option<Duration>,
    /// The correction the prediction included.
    pub correction_used: f64,
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
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadHistory {
    /// Runs recorded, over the whole history.
    pub runs: u64,
    /// The smoothed measured ÷ predicted time of parallel runs, by which the model's parallel
    /// prediction is multiplied (1 until a parallel run is recorded).
    pub correction: f64,
    /// Parallel runs the correction was learned from.
    pub learned: u64,
    /// The most recent samples, oldest first.
    pub samples: Vec<Sample>,
    /// The most recent runs, oldest first.
    pub recent: Vec<RunRecord>,
}

impl WorkloadHistory {
    /// The measured per-item cost to start from: the median item time of the recent samples.
    pub fn item_time(&self) -> Option<Seconds> {
        let mut times: Vec<Seconds> = self
            .samples
            .iter()
            .map(|s| s.item_time)
            .filter(|t| t.is_finite() && *t >= 0.0)
            .collect();
        if times.is_empty() {
            return None;
        }
        times.sort_by(f64::total_cmp);
        Some(times[times.len() / 2])
    }

    /// The chunk size of the most recent run.
    pub fn chunk_size(&self) -> Option<usize> {
        self.recent.last().map(|r| r.chunk)
    }

    /// The plan of the most recent run, when it still parses.
    pub fn last_plan(&self) -> Option<&Plan> {
        self.recent.last()?.plan.as_ref()
    }
}

/// A stored calibration.
#[derive(Clone, Debug, PartialEq, Serialize)]
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
pub struct WorkloadSummary {
    /// The workload key.
    pub key: String,
    /// Whether its runs were on this machine.
    pub this_machine: bool,
    /// Runs recorded.
    pub runs: u64,
    /// The current correction.
    pub correction: f64,
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
pub struct Summary {
    /// Stored calibrations, of every machine.
    pub calibrations: Vec<Calibration>,
    /// Known workloads, of every machine, most recent first.
    pub workloads: Vec<WorkloadSummary>,
}
