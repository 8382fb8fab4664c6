//! The report of one run: what was measured beside what the plan predicted.

use crate::fmt::{duration, items_per_second};
use crate::Plan;
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// A stretch of a run on a fixed number of workers: the run's start on the workers it was
/// planned with, then each stretch after the closed loop shed workers.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Phase {
    /// Workers allowed to claim chunks during the phase.
    pub workers: usize,
    /// Items finished during the phase.
    pub items: usize,
    /// Wall time of the phase.
    pub wall: Duration,
}

impl Phase {
    pub(crate) fn new(workers: usize, items: usize, wall: Duration) -> Phase {
        Phase {
            workers,
            items,
            wall,
        }
    }

    /// Items finished per second of wall time; `None` for a phase with no time or no items.
    pub fn throughput(&self) -> Option<f64> {
        let wall = self.wall.as_secs_f64();
        (wall > 0.0 && self.items > 0).then(|| self.items as f64 / wall)
    }
}

/// A change of the worker count made while the run went, because the measured throughput of
/// the workers together did not pay (see [`judge`](crate::model::shed::judge)).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Shed {
    /// Items finished (in finished chunks) when the run shed workers.
    pub after_items: usize,
    /// Time since the run's start.
    pub at: Duration,
    /// Workers before.
    pub from: usize,
    /// Workers after (1: one worker, as the serial loop).
    pub to: usize,
    /// The workers' throughput together ÷ the serial rate, as measured then: the sample's,
    /// or, after a trial, the run's own items' on one worker ([`RunReport::serial_alone`]).
    pub measured_speedup: f64,
    /// The speedup the plan predicted, when it predicted one.
    pub predicted_speedup: Option<f64>,
}

/// A change of the chunk size during a run, made because the measured chunk durations drifted
/// from the prediction (see [`Options::adapt_chunks`](crate::Options::adapt_chunks)).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
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
/// The measured speedup is a ratio of two measured rates: the run's throughput (items it ran
/// ÷ its wall time) over the serial rate the sample measured (1 ÷ its time per item). The
/// report names the items each rests on. The workers' busy time ([`RunReport::busy`]) is not
/// a speedup: workers slowed by contention are busy longer for the same items.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
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
    /// The run's phases: on the workers it started with, then after each shed. Their items
    /// add up to the items the run ran (not those reused from the sample).
    pub phases: Vec<Phase>,
    /// Changes of the worker count the run made because parallel did not pay, in order.
    pub sheds: Vec<Shed>,
    /// The serial rate measured on the run's own items, when its closed loop ran a window on
    /// one worker with the others paused (a trial, to check a figure that the sample's rate
    /// made doubtful): the measured speedup is against it then ([`RunReport::serial_rate`]).
    pub serial_alone: Option<Phase>,
}

impl RunReport {
    /// Items the run ran itself (the sample's excluded).
    pub fn ran(&self) -> usize {
        self.items - self.reused_from_sample
    }

    /// The serial rate this run is measured against: items per second of the plain loop, with
    /// the number of items it rests on: the run's own items on one worker
    /// ([`RunReport::serial_alone`]) when a trial measured them, else an earlier run's of the
    /// plan ([`Plan::serial_alone`]), else the sample's. `None` when none was measured.
    pub fn serial_rate(&self) -> Option<(f64, usize)> {
        self.serial_rate_of().map(|(rate, items, _)| (rate, items))
    }

    /// [`RunReport::serial_rate`], with what measured it, in words.
    fn serial_rate_of(&self) -> Option<(f64, usize, &'static str)> {
        if let Some(alone) = &self.serial_alone {
            if let Some(rate) = alone.throughput() {
                return Some((rate, alone.items, "of the run's own items on one worker"));
            }
        }
        if let Some(earlier) = self.plan.serial_alone() {
            return Some((
                1.0 / earlier.item_time,
                earlier.items,
                "of an earlier run's own items on one worker",
            ));
        }
        let t = self.plan.item_time()?.as_secs_f64();
        let n = self.plan.sample()?.count;
        (t > 0.0).then(|| (1.0 / t, n, "sampled items"))
    }

    /// The run's throughput: items it ran ÷ its wall time.
    pub fn throughput(&self) -> Option<f64> {
        let wall = self.wall.as_secs_f64();
        (wall > 0.0 && self.ran() > 0).then(|| self.ran() as f64 / wall)
    }

    /// Measured speedup over the serial loop, for a parallel run: its throughput ÷ the serial
    /// rate the sample measured. Below 1 the run was slower than the loop would have been
    /// (then the closed loop sheds workers: see [`RunReport::sheds`]). `None` for a serial run
    /// and for a plan made without a sample.
    pub fn measured_speedup(&self) -> Option<f64> {
        if !self.plan.is_parallel() {
            return None;
        }
        Some(self.throughput()? / self.serial_rate()?.0)
    }

    /// Measured speedup of the run's first phase, on every worker it started with: what the
    /// plan as made achieved before the closed loop changed it.
    pub fn parallel_speedup(&self) -> Option<f64> {
        if !self.plan.is_parallel() {
            return None;
        }
        Some(self.phases.first()?.throughput()? / self.serial_rate()?.0)
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
        write!(f, "  wall time {}", duration(self.wall))?;
        if let Some(p) = self.plan.predicted_time() {
            write!(f, " (predicted {})", duration(p))?;
        }
        writeln!(f)?;
        match (self.measured_speedup(), self.predicted_speedup()) {
            (Some(m), p) => {
                let (rate, count, which) = self.serial_rate_of().unwrap_or_default();
                write!(
                    f,
                    "  speedup {m:.2}× measured: {} items at {} against the serial rate {} \
                     of {count} {which}",
                    self.ran(),
                    items_per_second(self.throughput().unwrap_or_default()),
                    items_per_second(rate),
                )?;
                match p {
                    Some(p) => writeln!(f, "; {p:.2}× predicted")?,
                    None => writeln!(f)?,
                }
            }
            (None, Some(p)) => writeln!(f, "  predicted speedup {p:.2}×")?,
            (None, None) => {}
        }
        for s in &self.sheds {
            let who = if s.to == 1 {
                "one worker".to_string()
            } else {
                format!("{} workers", s.to)
            };
            writeln!(
                f,
                "  shed {} → {} worker(s) after {} items ({}): the workers together ran at \
                 {:.2}× the serial rate{}; went on with {who}",
                s.from,
                s.to,
                s.after_items,
                duration(s.at),
                s.measured_speedup,
                s.predicted_speedup
                    .map(|p| format!(", {p:.2}× predicted"))
                    .unwrap_or_default(),
            )?;
        }
        if self.phases.len() > 1 {
            for p in &self.phases {
                writeln!(
                    f,
                    "  phase on {} worker(s): {} items in {} ({})",
                    p.workers,
                    p.items,
                    duration(p.wall),
                    items_per_second(p.throughput().unwrap_or_default())
                )?;
            }
        }
        for a in &self.adjustments {
            writeln!(
                f,
                "  chunk {} → {} after {} items: {} per item measured, {} predicted",
                a.from,
                a.to,
                a.after_items,
                duration(a.measured_item_time),
                duration(a.predicted_item_time)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroUsize;

    /// A parallel plan on 4 workers whose sample measured 1 µs per item on 50 items.
    fn parallel_plan() -> Plan {
        use crate::model::{Backend, Costs, Workload};
        let mut plan = crate::plan::decide(
            &Workload::new(100_000, 1e-6),
            &Costs::zero(Backend::Threads),
            &crate::plan::Caps::cores(4, "test"),
            &crate::Options::new(),
        );
        assert!(plan.is_parallel(), "{plan}");
        plan.set_sample(crate::sample::Sample {
            count: 50,
            ..Default::default()
        });
        plan
    }

    fn report(plan: Plan, wall: Duration, phases: Vec<Phase>, sheds: Vec<Shed>) -> RunReport {
        RunReport {
            workers: plan.workers().get(),
            plan,
            items: 100_050,
            reused_from_sample: 50,
            chunks: 10,
            wall,
            busy: wall * 4,
            nested: false,
            adjustments: vec![ChunkAdjustment {
                after_items: 20,
                from: 10,
                to: 5,
                measured_item_time: Duration::from_millis(3),
                predicted_item_time: Duration::from_millis(1),
            }],
            assumed_items: None,
            phases,
            sheds,
            serial_alone: None,
        }
    }

    #[test]
    fn speedup_is_throughput_over_the_sampled_serial_rate_not_busy_over_wall() {
        // 100 000 items in 50 ms: 2 M items/s against 1 M items/s serial.
        let r = report(
            parallel_plan(),
            Duration::from_millis(50),
            Vec::new(),
            Vec::new(),
        );
        let s = r.measured_speedup().unwrap();
        assert!((s - 2.0).abs() < 1e-9, "{s}");
        assert_eq!(r.serial_rate().map(|(_, n)| n), Some(50));
        // Workers busy 4 × the wall time said 4×; the honest figure is 2×.
        let text = r.to_string();
        assert!(text.contains("2.00× measured"), "{text}");
        assert!(text.contains("of 50 sampled items"), "{text}");
        // Serial runs and plans without a sample claim no speedup.
        let serial = Plan::fixed(NonZeroUsize::MIN, NonZeroUsize::MIN);
        assert_eq!(
            report(serial, Duration::from_millis(50), Vec::new(), Vec::new()).measured_speedup(),
            None
        );
        let fixed = Plan::fixed(
            NonZeroUsize::new(4).unwrap(),
            NonZeroUsize::new(10).unwrap(),
        );
        assert_eq!(
            report(fixed, Duration::from_millis(50), Vec::new(), Vec::new()).measured_speedup(),
            None
        );
    }

    #[test]
    fn a_shed_run_names_its_phases_and_the_speedup_that_made_it_shed() {
        let phases = vec![
            Phase::new(4, 1_000, Duration::from_millis(2)),
            Phase::new(1, 99_000, Duration::from_millis(99)),
        ];
        let shed = Shed {
            after_items: 1_000,
            at: Duration::from_millis(2),
            from: 4,
            to: 1,
            measured_speedup: 0.5,
            predicted_speedup: Some(3.9),
        };
        let r = report(
            parallel_plan(),
            Duration::from_millis(101),
            phases,
            vec![shed],
        );
        let first = r.parallel_speedup().unwrap();
        assert!((first - 0.5).abs() < 1e-9, "{first}");
        let text = r.to_string();
        assert!(
            text.contains("shed 4 → 1 worker(s) after 1000 items"),
            "{text}"
        );
        assert!(text.contains("one worker"), "{text}");
        assert!(text.contains("phase on 1 worker(s): 99000 items"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&r.to_json().unwrap()).unwrap();
        assert_eq!(json["sheds"][0]["to"], 1);
        assert_eq!(json["phases"][1]["items"], 99_000);
    }

    #[test]
    fn text_and_json_name_the_adjustments() {
        let r = report(
            parallel_plan(),
            Duration::from_millis(50),
            Vec::new(),
            Vec::new(),
        );
        let text = r.to_string();
        assert!(text.contains("chunk 10 → 5 after 20 items"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&r.to_json().unwrap()).unwrap();
        assert_eq!(json["adjustments"][0]["to"], 5);
        assert_eq!(json["items"], 100_050);
    }
}
