//! What one driven pipeline measured: the plan, the sample, the first parallel segment and
//! whether the rest shed its workers.

use crate::Plan;
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// The closed loop's check of the first parallel segment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SegmentCheck {
    /// Items in the segment.
    pub items: usize,
    /// Its wall time on the pool.
    pub wall: Duration,
    /// Its measured rate, items per second of wall time.
    pub parallel_rate: f64,
    /// Whether the rest ran serially because the segment was not faster than the serial loop.
    pub shed: bool,
}

/// What a pipeline's decision was made from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// A sample taken through the pipeline's front, then the planner.
    Sample,
    /// A first glance at 8 items, which proved (or confirmed a decision made a moment ago)
    /// that no parallel plan pays.
    Glance,
    /// The plan of a call of the same pipeline a moment ago, reused without sampling.
    Reused,
    /// A pipeline that is not indexed: the figures its last drive measured.
    LastDrive,
    /// A pipeline that is not indexed, driven for the first time in this process: plain rayon
    /// on the global pool, measured for the next drive.
    FirstDrive,
    /// A pipeline that is not indexed, serial because a recent parallel drive of it measured
    /// no speedup.
    LastParallelLost,
}

impl fmt::Display for Basis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Basis::Sample => "planned from a sample of its first items",
            Basis::Glance => "settled serial by a glance at its first items",
            Basis::Reused => "ran the plan of a call a moment ago",
            Basis::LastDrive => "planned from what its last drive measured",
            Basis::FirstDrive => {
                "first drive in this process: ran as plain rayon and measured, for the next one"
            }
            Basis::LastParallelLost => {
                "serial: a recent parallel drive of it was no faster than its serial rate"
            }
        })
    }
}

/// How a pipeline ended by [`.amorsize()`](super::AmorsizeExt::amorsize) ran, handed to the
/// hook of [`Amorsize::on_report`](super::Amorsize::on_report).
#[derive(Clone, Debug, Serialize)]
pub struct PipelineRun {
    /// What the decision was made from; where it says the plan was not the planner's
    /// ([`Basis::FirstDrive`], [`Basis::LastParallelLost`]), `plan` only records the workers.
    pub basis: Basis,
    /// The decision (for an input a first glance settled serial, the plan that glance proves).
    pub plan: Plan,
    /// Items in the input.
    pub items: usize,
    /// Items the sample ran (their results kept in place).
    pub sampled: usize,
    /// The serial rate the sample measured, items per second, when it timed any item.
    pub serial_rate: Option<f64>,
    /// Items that ran on the pool after the sample.
    pub parallel_items: usize,
    /// Items that ran serially on the calling thread after the sample.
    pub serial_items: usize,
    /// Workers of the pool (1 when nothing ran on one).
    pub workers: usize,
    /// The first parallel segment and its verdict, when the rest was long enough to check.
    pub check: Option<SegmentCheck>,
    /// Whether the pipeline was driven from inside a rayon pool and ran on that pool.
    pub nested: bool,
    /// Why the planned pool could not be used, when it could not (the rest ran serially).
    pub pool_error: Option<String>,
    /// Wall time of the whole drive, sample and planning included.
    pub wall: Duration,
}

impl PipelineRun {
    /// Whether the closed loop shed the workers after the first segment.
    pub fn shed(&self) -> bool {
        self.check.as_ref().is_some_and(|c| c.shed)
    }
}

impl fmt::Display for PipelineRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "pipeline of {} items: {} sampled, {} run in parallel on {} worker(s), {} serially{}",
            self.items,
            self.sampled,
            self.parallel_items,
            self.workers,
            self.serial_items,
            if self.nested { " (nested)" } else { "" }
        )?;
        writeln!(f, "  {}", self.basis)?;
        if let Some(rate) = self.serial_rate {
            writeln!(f, "  sampled serial rate {}", per_second(rate))?;
        }
        if let Some(check) = &self.check {
            writeln!(
                f,
                "  first segment: {} items in {:.3?}, {}: {}",
                check.items,
                check.wall,
                per_second(check.parallel_rate),
                if check.shed {
                    "not faster than serial, the rest ran serially"
                } else {
                    "faster than serial, kept parallel"
                }
            )?;
        }
        if let Some(e) = &self.pool_error {
            writeln!(f, "  the pool could not start ({e}): ran serially")?;
        }
        write!(f, "  wall time {:.3?}", self.wall)?;
        match self.basis {
            Basis::FirstDrive | Basis::LastParallelLost => Ok(()),
            _ => write!(f, "\n{}", self.plan),
        }
    }
}

fn per_second(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.1} M items/s", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.1} k items/s", rate / 1e3)
    } else {
        format!("{rate:.1} items/s")
    }
}
