//! `amorsize bench`: what amorsize is worth on this machine, against what a user would
//! otherwise pick, over a suite of built-in workloads.
//!
//! The pipeline of a run: [`kernels`] (the computations, sized by a calibration) →
//! [`workloads`] (inputs and functions) → [`measure`] (every strategy side by side, via
//! [`timing`]) and [`cold`] (amorsize's first call in a fresh process) → [`report`] (ratios and
//! targets) → [`output`] (table, JSON) and [`charts`] (SVG).

pub mod amz;
pub mod charts;
pub mod cold;
pub mod kernels;
pub mod measure;
pub mod output;
pub mod pipeline;
pub mod report;
pub mod timing;
pub mod workloads;

use kernels::Calibration;
use report::{Row, Target};
use std::path::PathBuf;
use std::time::Duration;
use workloads::Scale;

/// A finished benchmark run.
#[derive(Debug)]
pub struct Run {
    /// How big the run was.
    pub scale: Scale,
    /// Counted rounds per strategy.
    pub rounds: usize,
    /// Logical CPUs of this machine.
    pub cpus: usize,
    /// What the kernels cost here.
    pub calibration: Calibration,
    /// Whether the calibration was measured (false: nominal figures of a smoke run).
    pub calibration_measured: bool,
    /// CPUs' worth of work the machine delivered when the run started and when it ended
    /// ([`kernels::parallel_capacity`]); `None` for smoke runs.
    pub capacity: Option<(f64, f64)>,
    /// One row per workload.
    pub rows: Vec<Row>,
    /// The targets, evaluated.
    pub targets: Vec<Target>,
    /// Charts written.
    pub charts: Vec<PathBuf>,
    /// Wall time of the whole run.
    pub wall: Duration,
}
