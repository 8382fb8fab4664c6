//! The decision: serial or parallel, how many workers, what chunk size, and why.
//!
//! [`decide`] is pure and serves every backend: give it the [`Workload`] a sample measured,
//! the [`Costs`] the backend measured and the machine's [`Caps`]. [`plan_slice`] and
//! [`plan_iter`] sample the user's function first and use the thread backend's measured costs.
//! A [`Plan`] explains itself: [`Display`](std::fmt::Display) prints a report, serde gives
//! JSON, and a saved plan loads back with [`Plan::from_json`].

use crate::model::{Backend, Candidate, Costs, Prediction, Seconds, Term, Workload};
use serde::{Deserialize, Serialize};
use std::num::NonZeroUsize;
use std::time::Duration;

mod caps;
mod decide;
pub(crate) mod display;
mod options;
pub(crate) mod quick;
mod reason;
pub(crate) mod recall;
mod sampled;
mod settings;

pub use caps::{Caps, Limit, LimitKind, Load, MAX_WORKERS, WAITING_WORKERS_PER_CORE};
#[cfg(feature = "cluster")]
pub(crate) use decide::MIN_CHUNKS_PER_WORKER;
pub use decide::{decide, speedup_bound, DEFAULT_TARGET_CHUNK};
pub use options::{Options, DEFAULT_THRESHOLD};
pub use quick::GLANCE_ITEMS;
pub(crate) use reason::fallback_warnings;
pub use reason::{Reason, Warning};
pub use sampled::{plan_iter, plan_sample, plan_slice, PlannedIter, ASSUMED_ITEMS};
pub(crate) use sampled::{
    plan_measured, plan_slice_after, plan_slice_first, plan_stream, sample_bounds, settled,
    settled_plan, settled_sample,
};
pub use settings::Progress;
pub(crate) use settings::{ExecOptions, ProgressFn};

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
///
/// # Examples
///
/// ```
/// use amorsize::model::{Backend, Costs, Workload};
/// use amorsize::plan::{decide, Caps, Plan};
/// use amorsize::Options;
///
/// let costs = Costs { worker_start: 50e-6, chunk_dispatch: 2e-6, ..Costs::zero(Backend::Threads) };
/// let plan = decide(&Workload::new(2000, 1e-3), &costs, &Caps::cores(2, "test"), &Options::new());
/// assert!(plan.is_parallel());
/// assert!(plan.to_string().contains("parallel"));
/// let again = Plan::from_json(&plan.to_json()).unwrap();
/// assert_eq!(again, plan);
/// ```
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
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    items: Option<usize>,
    #[serde(default = "default_threshold")]
    threshold: f64,
    #[serde(default = "fixed_reason")]
    reason: Reason,
    #[serde(default)]
    warnings: Vec<Warning>,
    #[serde(default)]
    limits: Vec<Limit>,
    /// The best parallel candidate's prediction (the chosen one, or the best one refused).
    #[serde(default)]
    prediction: Option<Prediction>,
    #[serde(default)]
    workload: Option<Workload>,
    #[serde(default)]
    costs: Option<Costs>,
    #[serde(default)]
    caps: Option<Caps>,
    #[serde(default)]
    sample: Option<crate::sample::Sample>,
    /// When the plan was made for an earlier call and reused for this one.
    #[serde(default)]
    reuse: Option<Reuse>,
    /// The serial rate an earlier run of this plan measured on its own items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    serial_alone: Option<SerialAlone>,
}

/// The serial rate a parallel run measured on its own items: a window on one worker with the
/// others paused (the closed loop's trial, run when the sample's rate made the run's figure
/// doubtful). A plan reused by the next calls carries it: their runs are judged against it
/// rather than against the sample, which it outweighs (many items, warm, of the input as a
/// whole rather than its first few).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SerialAlone {
    /// Mean time of one item on one worker.
    pub item_time: Seconds,
    /// Items the window ran.
    pub items: usize,
    /// The relative standard error of `item_time` as the spread of the run's chunks shows it.
    pub noise: f64,
}

impl SerialAlone {
    /// What a window of `items` items in `seconds` on one worker measured, with its `noise`.
    pub(crate) fn new(items: usize, seconds: Seconds, noise: f64) -> Option<SerialAlone> {
        let item_time = seconds / items as f64;
        (items > 0 && item_time.is_finite() && item_time > 0.0).then_some(SerialAlone {
            item_time,
            items,
            noise: if noise.is_finite() {
                noise.max(0.0)
            } else {
                0.0
            },
        })
    }
}

/// A plan made from a full sample a moment ago for the same workload, reused by a later call
/// without sampling again: within 2 s of its last use, at most 16 calls in a row.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Reuse {
    /// Seconds between the plan and this call.
    pub age: Seconds,
    /// Calls that have reused the plan, this one included.
    pub call: u32,
}

fn default_threshold() -> f64 {
    DEFAULT_THRESHOLD
}

fn fixed_reason() -> Reason {
    Reason::Fixed
}

/// The overhead that costs most in the best parallel plan, and what would remove it.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct Bottleneck {
    /// The term.
    pub term: Term,
    /// What it costs.
    pub cost: Seconds,
    /// What would make it smaller, for people.
    pub remedy: &'static str,
}

impl Plan {
    /// A plan fixed by the caller, with no prediction behind it: `workers` workers (serial when
    /// 1) and chunks of `chunk` items.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// let plan = amorsize::Plan::fixed(NonZeroUsize::new(4).unwrap(), NonZeroUsize::new(16).unwrap());
    /// assert!(plan.is_parallel());
    /// assert_eq!(plan.chunk_size().get(), 16);
    /// assert_eq!(plan.predicted_speedup(), None);
    /// ```
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
            name: None,
            items: None,
            threshold: DEFAULT_THRESHOLD,
            reason: Reason::Fixed,
            warnings: Vec::new(),
            limits: Vec::new(),
            prediction: None,
            workload: None,
            costs: None,
            caps: None,
            sample: None,
            reuse: None,
            serial_alone: None,
        }
    }

    /// The plan a run of `items` heavy items followed, made after it ([`Reason::Spilled`]):
    /// `workers` workers (the calling thread included) claimed them one at a time; the first,
    /// on the calling thread, took `first_item`, and the others started `after` into it;
    /// `cpu_share` of their wall time was CPU time.
    pub(crate) fn spilled(
        items: usize,
        workers: usize,
        (first_item, after): (Seconds, Seconds),
        cpu_share: f64,
    ) -> Plan {
        let mut plan = Plan::fixed(
            NonZeroUsize::new(workers.max(2)).unwrap_or(NonZeroUsize::MIN),
            NonZeroUsize::MIN,
        );
        plan.items = Some(items);
        plan.reason = Reason::Spilled {
            first_item,
            after,
            workers,
            cpu_share,
        };
        plan
    }

    /// A serial plan over `items` items, chunks of `chunk`, to be filled in by [`decide`].
    fn fixed_serial(items: usize, chunk: usize) -> Plan {
        let mut plan = Plan::fixed(NonZeroUsize::MIN, Candidate::new(1, chunk).chunk);
        plan.items = Some(items);
        plan
    }

    /// Takes the workers, chunk and predicted time of `p`.
    fn adopt(&mut self, p: &Prediction) {
        self.workers = p.candidate.workers;
        self.chunk = p.candidate.chunk;
        self.predicted = Some(p.total());
        self.prediction = Some(*p);
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

    /// Predicted speedup over the serial loop, when predicted (1 for a serial plan).
    pub fn predicted_speedup(&self) -> Option<f64> {
        match (self.predicted_serial, self.predicted) {
            (Some(s), Some(p)) if p > 0.0 => Some(s / p),
            (Some(_), Some(_)) => Some(1.0),
            _ => None,
        }
    }

    /// Predicted speedup of the whole call over the serial loop of every item: the sample
    /// already ran its items serially (for [`Sample::measured`](crate::sample::Sample::measured)),
    /// and the plan covers the rest. Below [`predicted_speedup`](Self::predicted_speedup) when
    /// the sample is a large part of the work (a few slow items). `None` when not predicted.
    pub fn predicted_call_speedup(&self) -> Option<f64> {
        // A reused plan's call sampled nothing.
        let sampled = match (&self.sample, self.reuse) {
            (Some(s), None) => s.measured.max(0.0),
            _ => 0.0,
        };
        match (self.predicted_serial, self.predicted) {
            (Some(s), Some(p)) if sampled + p > 0.0 => Some((sampled + s) / (sampled + p)),
            (Some(_), Some(_)) => Some(1.0),
            _ => None,
        }
    }

    /// When this plan was made for an earlier call of the workload and reused without sampling.
    pub fn reuse(&self) -> Option<Reuse> {
        self.reuse
    }

    /// This plan, made for [`items`](Self::items) items, as `items` items of the same
    /// workload reuse it `age` seconds later, the `call`-th call to: the predicted times scale
    /// with the items.
    pub(crate) fn reused(mut self, items: usize, age: Seconds, call: u32) -> Plan {
        if let Some(planned) = self.items.filter(|&p| p > 0) {
            let scale = items as f64 / planned as f64;
            self.predicted = self.predicted.map(|t| t * scale);
            self.predicted_serial = self.predicted_serial.map(|t| t * scale);
        }
        self.items = Some(items);
        self.reuse = Some(Reuse { age, call });
        self
    }

    /// The serial rate an earlier run of this workload measured on its own items, carried by a
    /// reused plan ([`SerialAlone`]).
    pub fn serial_alone(&self) -> Option<&SerialAlone> {
        self.serial_alone.as_ref()
    }

    /// The name of the workload, when the options gave one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Items the plan is for (those the sample did not run), when known.
    pub fn items(&self) -> Option<usize> {
        self.items
    }

    /// The speedup parallelism had to reach.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Why the plan is serial or parallel.
    pub fn reason(&self) -> &Reason {
        &self.reason
    }

    /// What the caller should know.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// The limits on workers and their sources; the smallest bounded the search.
    pub fn limits(&self) -> &[Limit] {
        &self.limits
    }

    /// The limit that bounded the workers (the smallest), when the plan was decided.
    pub fn binding_limit(&self) -> Option<&Limit> {
        self.limits.iter().min_by_key(|l| l.workers)
    }

    /// The best parallel candidate's prediction, term by term: the chosen plan's when
    /// parallel, the best refused one's when serial.
    pub fn prediction(&self) -> Option<&Prediction> {
        self.prediction.as_ref()
    }

    /// The workload figures the plan was decided from.
    pub fn workload(&self) -> Option<&Workload> {
        self.workload.as_ref()
    }

    /// The backend costs the plan was decided with.
    pub fn costs(&self) -> Option<&Costs> {
        self.costs.as_ref()
    }

    /// The machine's caps the plan was decided within.
    pub fn caps(&self) -> Option<&Caps> {
        self.caps.as_ref()
    }

    /// What the sample measured, when the plan came from one.
    pub fn sample(&self) -> Option<&crate::sample::Sample> {
        self.sample.as_ref()
    }

    /// The overhead that costs most in the best parallel plan, and what would remove it.
    pub fn bottleneck(&self) -> Option<Bottleneck> {
        let (term, cost) = self.prediction?.bottleneck()?;
        Some(Bottleneck {
            term,
            cost,
            remedy: term.remedy(),
        })
    }

    /// The plan as JSON, to save and [load](Plan::from_json) later.
    pub fn to_json(&self) -> String {
        // A Plan holds only numbers, strings and enums with string keys: serializing it cannot
        // fail, and serde_json writes non-finite floats as null (read back as an error below).
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Loads a plan saved with [`Plan::to_json`], to reuse it without sampling again.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when the text is not a plan.
    pub fn from_json(text: &str) -> crate::Result<Plan> {
        serde_json::from_str(text).map_err(|e| {
            crate::Error::new(
                crate::ErrorKind::InvalidInput,
                format!("not a saved amorsize plan: {e}"),
            )
            .with_source(e)
        })
    }

    pub(crate) fn push_warning(&mut self, warning: Warning) {
        self.warnings.push(warning);
    }

    /// Warns of each figure of `machine` the plan counts on that the probe could only assume
    /// (one CPU, every CPU allowed, each CPU a core), so that no plan rests on an assumption
    /// silently.
    pub(crate) fn warn_machine_fallbacks(&mut self, machine: &crate::probe::Machine) {
        let cpu = machine.cpu();
        for (figure, read) in [
            ("logical CPUs", cpu.logical()),
            ("CPUs allowed", cpu.affinity()),
            ("usable cores", cpu.usable_cores()),
        ] {
            if let crate::probe::Source::Fallback { fallback } = read.source() {
                self.warnings.push(Warning::MachineFallback {
                    figure: figure.to_owned(),
                    fallback: *fallback,
                });
            }
        }
    }

    pub(crate) fn set_sample(&mut self, sample: crate::sample::Sample) {
        self.sample = Some(sample);
    }

    /// Turns a plan decided with ideal costs serial for `reason`: the costs were never
    /// measured, so neither they nor a prediction made with them are kept.
    pub(crate) fn refuse_from_bound(&mut self, reason: Reason) {
        self.mode = Mode::Serial;
        self.workers = NonZeroUsize::MIN;
        self.predicted = self.predicted_serial;
        self.reason = reason;
        self.threshold = match &self.reason {
            Reason::TooSmall { threshold, .. } => *threshold,
            _ => self.threshold,
        };
        self.costs = None;
        self.prediction = None;
        self.warnings
            .retain(|w| !matches!(w, Warning::FallbackUsed { .. }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{decide, Caps, Options};

    #[test]
    fn a_plan_warns_of_each_figure_the_probe_assumed() {
        // Nothing to read: one CPU assumed, and each CPU counted as a core.
        let empty = tempfile::tempdir().unwrap();
        let machine = crate::probe::Machine::read(empty.path());
        let mut plan = Plan::fixed(NonZeroUsize::MIN, NonZeroUsize::MIN);
        plan.warn_machine_fallbacks(&machine);
        let assumed: Vec<_> = plan
            .warnings()
            .iter()
            .filter_map(|w| match w {
                Warning::MachineFallback { fallback, .. } => Some(*fallback),
                _ => None,
            })
            .collect();
        assert!(
            assumed.contains(&crate::probe::Fallback::OneCpu),
            "{:?}",
            plan.warnings()
        );
        assert!(plan.warnings()[0].to_string().contains("assumed one CPU"));
        // Figures that were read, or given, warn of nothing.
        let mut plan = Plan::fixed(NonZeroUsize::MIN, NonZeroUsize::MIN);
        plan.warn_machine_fallbacks(&crate::probe::Machine::fixed(4, 2));
        assert!(plan.warnings().is_empty());
    }

    #[test]
    fn the_call_speedup_counts_the_serial_sample() {
        // 16 items of 10 ms on 2 free cores, 3 of them sampled (30 ms, serially).
        let costs = Costs {
            worker_start: 10e-6,
            chunk_dispatch: 1e-6,
            ..Costs::zero(Backend::Threads)
        };
        let mut plan = decide(
            &Workload::new(13, 10e-3),
            &costs,
            &Caps::cores(2, "test"),
            &Options::new(),
        );
        let rest = plan.predicted_speedup().expect("predicted");
        assert_eq!(plan.predicted_call_speedup(), Some(rest));
        plan.set_sample(crate::sample::Sample {
            count: 3,
            item_time: 10e-3,
            measured: 30e-3,
            ..Default::default()
        });
        let call = plan.predicted_call_speedup().expect("predicted");
        let (serial, time) = (plan.predicted_serial.unwrap(), plan.predicted.unwrap());
        assert!((call - (30e-3 + serial) / (30e-3 + time)).abs() < 1e-12);
        assert!(call < rest && call > 1.0);
    }
}
