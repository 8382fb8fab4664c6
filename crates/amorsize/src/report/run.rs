//! The report of one run: what was measured beside what the plan predicted.

use crate::Plan;
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// A change of the chunk size during a run, made because the measured chunk durations drifted
/// from the prediction (see [`Options::adapt_chunks`](crate::Options::adapt_chunks)).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChunkAdjustment {
    /// Items measured (in finished chunks) when the change was made.
    pub after_items: usize,
    /// Chunk size before.
    pub from: usize,
    /// Chunk size after.
    pub to: usize,
    /// Moving average of the measured time per item that triggered the change.
    pub measured_item_time: Duration,
    /// Time per item the plan predicted.
    pub predicted_item_time: Duration,
}

/// What a run measured, beside the plan that it ran.
///
/// The measured speedup is the workers' busy time (the sum of the time spent computing
/// chunks, which is what the serial loop would have spent on the same items) divided by the
/// wall time of the run; it is `None` for a serial run, whose speedup is 1 by definition.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// The plan that ran.
    pub plan: Plan,
    /// Items in the input, sampled ones included.
    pub items: usize,
    /// Items whose results came from the sample taken while planning (not run again).
    pub reused_from_sample: usize,
    /// Workers that ran chunks (1 for the serial loop).
    pub workers: usize,
    /// Chunks handed out.
    pub chunks: usize,
    /// Wall time of the run, from its start to the last result (planning excluded).
    pub wall: Duration,
    /// Sum over workers of the time spent computing chunks.
    pub busy: Duration,
    /// Whether the run was nested in another parallel run and so shared its threads.
    pub nested: bool,
    /// Changes of the chunk size made during the run, in order.
    pub adjustments: Vec<ChunkAdjustment>,
    /// The input length the plan assumed, when the input did not tell its length (a stream
    /// over an iterator without a size hint): a stand-in, not a measurement.
    pub assumed_items: Option<usize>,
}

impl RunReport {
    /// Measured speedup over the serial loop: busy time ÷ wall time (parallel runs only).
    pub fn measured_speedup(&self) -> Option<f64> {
        let wall = self.wall.as_secs_f64();
        (self.plan.is_parallel() && wall > 0.0).then(|| self.busy.as_secs_f64() / wall)
    }

    /// The speedup the plan predicted, when it predicted one.
    pub fn predicted_speedup(&self) -> Option<f64> {
        self.plan.predicted_speedup()
    }

    /// The report as JSON.
    ///
    /// # Errors
    ///
    /// Fails only if serialization fails, which the report's plain fields do not cause.
    pub fn to_json(&self) -> crate::Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| {
            crate::Error::new(
                crate::ErrorKind::Serialization,
                "could not encode the run report",
            )
            .with_source(e)
        })
    }
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = if self.plan.is_parallel() {
            "parallel"
        } else {
            "serial"
        };
        writeln!(
            f,
            "ran {} items {mode} on {} worker(s) in {} chunk(s) of {} (at first){}",
            self.items,
            self.workers,
            self.chunks,
            self.plan.chunk_size(),
            if self.nested {
                ", nested in a parallel run"
            } else {
                ""
            }
        )?;
        if self.reused_from_sample > 0 {
            writeln!(
                f,
                "  {} result(s) reused from the sample",
                self.reused_from_sample
            )?;
        }
        if let Some(n) = self.assumed_items {
            writeln!(f, "  input length unknown: planned for {n} items")?;
        }
        write!(f, "  wall time {:.3?}", self.wall)?;
        if let Some(p) = self.plan.predicted_time() {
            write!(f, " (predicted {p:.3?})")?;
        }
        writeln!(f)?;
        match (self.measured_speedup(), self.predicted_speedup()) {
            (Some(m), Some(p)) => writeln!(f, "  speedup {m:.2}× measured, {p:.2}× predicted")?,
            (Some(m), None) => writeln!(f, "  speedup {m:.2}× measured")?,
            (None, Some(p)) => writeln!(f, "  predicted speedup {p:.2}×")?,
            (None, None) => {}
        }
        for a in &self.adjustments {
            writeln!(
                f,
                "  chunk {} → {} after {} items: {:.3?} per item measured, {:.3?} predicted",
                a.from, a.to, a.after_items, a.measured_item_time, a.predicted_item_time
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroUsize;

    fn report(workers: usize) -> RunReport {
        let w = NonZeroUsize::new(workers).unwrap();
        RunReport {
            plan: Plan::fixed(w, NonZeroUsize::new(10).unwrap()),
            items: 100,
            reused_from_sample: 0,
            workers,
            chunks: 10,
            wall: Duration::from_millis(50),
            busy: Duration::from_millis(150),
            nested: false,
            adjustments: vec![ChunkAdjustment {
                after_items: 20,
                from: 10,
                to: 5,
                measured_item_time: Duration::from_millis(3),
                predicted_item_time: Duration::from_millis(1),
            }],
            assumed_items: None,
        }
    }

    #[test]
    fn speedup_is_busy_over_wall_for_parallel_runs_only() {
        let s = report(4).measured_speedup().unwrap();
        assert!((s - 3.0).abs() < 1e-9);
        assert_eq!(report(1).measured_speedup(), None);
    }

    #[test]
    fn text_and_json_name_the_adjustments() {
        let r = report(4);
        let text = r.to_string();
        assert!(text.contains("chunk 10 → 5 after 20 items"), "{text}");
        assert!(text.contains("3.00× measured"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&r.to_json().unwrap()).unwrap();
        assert_eq!(json["adjustments"][0]["to"], 5);
        assert_eq!(json["items"], 100);
    }
}
