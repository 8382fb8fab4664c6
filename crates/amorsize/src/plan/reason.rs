//! Why a plan is what it is: one typed reason for the decision, and warnings.

use super::caps::LimitKind;
use crate::model::{Backend, Costs, Seconds, Term};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why the plan chose serial or parallel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
#[non_exhaustive]
pub enum Reason {
    /// Nothing is left to run (an empty input, or the sample ran every item).
    Empty,
    /// The caller fixed the workers or the chunk size.
    Fixed,
    /// The limits allow a single worker.
    OneWorker {
        /// The limit that allows one.
        limit: LimitKind,
    },
    /// The whole workload is too small to repay what going parallel costs.
    TooSmall {
        /// Predicted serial time.
        serial: Seconds,
        /// The best speedup any parallel plan could reach.
        best_speedup: f64,
        /// The threshold it had to reach.
        threshold: f64,
        /// Decided from a bound (zero measured overheads, all cores) without measuring the
        /// overheads: even that bound is below the threshold.
        from_bound: bool,
    },
    /// A full sample of this workload refused parallelism a moment ago in this process, and
    /// the glance finds its items no slower: the decision stands without sampling again.
    Recalled {
        /// Predicted serial time of the whole input (the earlier sample's figure per item).
        serial: Seconds,
        /// The best speedup the earlier plan found for a parallel plan.
        best_speedup: f64,
        /// The threshold it had to reach.
        threshold: f64,
        /// How long ago the earlier plan was made.
        age: Seconds,
        /// Calls that have reused it, this one included.
        reused: u32,
    },
    /// Parallel could save less than finding this machine's thread costs takes
    /// ([`costs_worth`](crate::calibrate::costs_worth)), and they are not known in this
    /// process yet: the call runs serially, and the costs are found once the savings forgone
    /// this way add up to that figure ([`threads_if_worth`](crate::calibrate::threads_if_worth)).
    NotWorthMeasuring {
        /// Predicted serial time.
        serial: Seconds,
        /// The most a parallel plan could save (zero overheads but the least a parallel
        /// section costs, all cores).
        gain: Seconds,
        /// The savings forgone this way in the process so far, this call's included.
        forgone: Seconds,
        /// What finding the costs is taken to cost in this process (an estimate: with or
        /// without a cache file, [`costs_worth`](crate::calibrate::costs_worth)).
        worth: Seconds,
    },
    /// A parallel run of this workload in this process measured its workers together below
    /// the serial rate of its sample, and shed them: the next calls run serially, and parallel
    /// is tried again after a back-off that doubles each time it does not pay.
    MeasuredSlower {
        /// The workers' throughput together ÷ the serial rate, as that run measured it.
        measured: f64,
        /// The workers it measured.
        workers: usize,
        /// How long ago it ran.
        age: Seconds,
        /// Calls of this size that run serially from it before parallel is tried again, this
        /// one excluded (an estimate: the back-off is counted in serial time).
        calls_left: u32,
    },
    /// Items are so fast that handing them out costs more than parallelism gains.
    TooFast {
        /// Mean time of one item.
        item_time: Seconds,
        /// The best speedup any parallel plan could reach.
        best_speedup: f64,
        /// The threshold it had to reach.
        threshold: f64,
    },
    /// Moving inputs and results between processes costs more than parallelism gains.
    TransferDominates {
        /// Predicted serialization time of the best parallel plan.
        transfer: Seconds,
        /// The best speedup any parallel plan could reach.
        best_speedup: f64,
        /// The threshold it had to reach.
        threshold: f64,
    },
    /// Workers slow each other down more than they help.
    Contended {
        /// The best speedup any parallel plan could reach.
        best_speedup: f64,
        /// The threshold it had to reach.
        threshold: f64,
    },
    /// The first item ran past [`SPILL_AFTER`](crate::sample::SPILL_AFTER) alone, far longer
    /// than waking workers costs, so the other items started on workers at once, with no
    /// sample: the figures are what the run measured, not a prediction.
    Spilled {
        /// The first item's wall time, on the calling thread.
        first_item: Seconds,
        /// How far into the first item the others started: `SPILL_AFTER` when an alarm
        /// started them, the whole first item when none was armed (the process's watcher had
        /// not started yet).
        after: Seconds,
        /// Workers that ran the items, the calling thread included.
        workers: usize,
        /// The items' thread CPU time ÷ their wall time, on every worker together (below 1:
        /// the items waited for something).
        cpu_share: f64,
    },
    /// Parallel is predicted faster by at least the threshold.
    Faster {
        /// Predicted speedup.
        speedup: f64,
        /// The threshold it reached.
        threshold: f64,
    },
}

impl Reason {
    /// The serial reason for a best parallel plan whose bottleneck is `term`.
    pub(crate) fn refused(
        term: Option<Term>,
        serial: Seconds,
        item_time: Seconds,
        transfer: Seconds,
        best_speedup: f64,
        threshold: f64,
    ) -> Reason {
        match term {
            Some(Term::Dispatch) => Reason::TooFast {
                item_time,
                best_speedup,
                threshold,
            },
            Some(Term::Transfer) => Reason::TransferDominates {
                transfer,
                best_speedup,
                threshold,
            },
            Some(Term::Contention) => Reason::Contended {
                best_speedup,
                threshold,
            },
            _ => Reason::TooSmall {
                serial,
                best_speedup,
                threshold,
                from_bound: false,
            },
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::fmt::seconds;
        match self {
            Reason::Empty => f.write_str("nothing left to run"),
            Reason::Fixed => f.write_str("workers and chunk size fixed by the caller"),
            Reason::OneWorker { limit } => write!(f, "the {limit} allow only one worker"),
            Reason::TooSmall {
                serial,
                best_speedup,
                threshold,
                from_bound,
            } => {
                write!(
                    f,
                    "too small: the whole workload takes {} serially; ",
                    seconds(*serial)
                )?;
                if *from_bound {
                    write!(
                        f,
                        "even with free workers on every core parallel could reach at most \
                         {best_speedup:.2}× (threshold {threshold}×)"
                    )
                } else {
                    write!(
                        f,
                        "the best parallel plan reaches {best_speedup:.2}× (threshold {threshold}×)"
                    )
                }
            }
            Reason::Recalled {
                serial,
                best_speedup,
                threshold,
                age,
                reused,
            } => write!(
                f,
                "serial, as sampled {} ago: the whole workload takes {} serially and the \
                 best parallel plan reached {best_speedup:.2}× (threshold {threshold}×); the \
                 items are no slower now, so they were not sampled again (call {reused} of at \
                 most {})",
                seconds(*age),
                seconds(*serial),
                crate::plan::recall::RECALL_TIMES
            ),
            Reason::NotWorthMeasuring {
                serial,
                gain,
                forgone,
                worth,
            } => write!(
                f,
                "not worth measuring yet: the whole workload takes {} serially, and parallel \
                 could save at most {}, less than finding this machine's thread costs (taken \
                 as {}, once per process); they are found once the savings forgone add up to \
                 that ({} so far)",
                seconds(*serial),
                seconds(*gain),
                seconds(*worth),
                seconds(*forgone)
            ),
            Reason::MeasuredSlower {
                measured,
                workers,
                age,
                calls_left,
            } => write!(
                f,
                "measured slower in parallel {} ago: {workers} workers together ran at \
                 {measured:.2}× the serial rate; serial until parallel is tried again, after \
                 {calls_left} more call(s) of this size",
                seconds(*age),
            ),
            Reason::TooFast {
                item_time,
                best_speedup,
                threshold,
            } => write!(
                f,
                "too fast: items take {} each and handing out chunks eats the gain; \
                 best parallel plan {best_speedup:.2}× (threshold {threshold}×)",
                seconds(*item_time)
            ),
            Reason::TransferDominates {
                transfer,
                best_speedup,
                threshold,
            } => write!(
                f,
                "serialization dominates: moving data costs {}; best parallel plan \
                 {best_speedup:.2}× (threshold {threshold}×)",
                seconds(*transfer)
            ),
            Reason::Contended {
                best_speedup,
                threshold,
            } => write!(
                f,
                "workers contend: best parallel plan {best_speedup:.2}× (threshold {threshold}×)"
            ),
            Reason::Spilled {
                first_item,
                after,
                workers,
                cpu_share,
            } => {
                if after < first_item {
                    write!(
                        f,
                        "heavy items: the first was still running after {}, so the others \
                         started on workers then, with no sample (it took {})",
                        seconds(*after),
                        seconds(*first_item)
                    )?;
                } else {
                    write!(
                        f,
                        "heavy items: the first took {} alone, so the others started on \
                         workers at once, with no sample",
                        seconds(*first_item)
                    )?;
                }
                write!(
                    f,
                    "; {workers} workers ran them, their CPUs {:.0} % busy (measured, not \
                     predicted)",
                    cpu_share * 100.0
                )
            }
            Reason::Faster { speedup, threshold } => write!(
                f,
                "parallel is predicted {speedup:.2}× faster (threshold {threshold}×)"
            ),
        }
    }
}

/// Something the caller should know about a plan, with what to do about it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "warning")]
#[non_exhaustive]
pub enum Warning {
    /// Memory caps the workers below what the cores allow.
    MemoryCapsWorkers {
        /// Workers the memory allows.
        workers: usize,
        /// Memory one worker needs, bytes.
        per_worker: u64,
        /// Memory available, bytes.
        available: u64,
    },
    /// The results of the batch would take more than half of the available memory
    /// (`RESULTS_WARN_SHARE`).
    ResultsFillMemory {
        /// Bytes the results would hold in all.
        results: u64,
        /// Memory available, bytes.
        available: u64,
        /// The input is an iterator, which a stream could map without holding every result.
        #[serde(default)]
        iterator: bool,
    },
    /// A CPU quota gives fewer CPUs than there are cores.
    QuotaBelowCores {
        /// The quota, in CPUs.
        quota: f64,
        /// The cores.
        cores: usize,
    },
    /// Item times spread widely; chunks were made smaller to balance the tail.
    HighSpread {
        /// Coefficient of variation of the item time.
        cv: f64,
    },
    /// The function runs threads of its own; fewer workers fit on the cores.
    NestedParallelism {
        /// Process CPU ÷ thread CPU over the sample.
        self_parallelism: f64,
    },
    /// The sample was too small to trust its figures.
    SampleTooSmall {
        /// Items sampled.
        items: usize,
        /// Wall time measured in all.
        measured: Seconds,
    },
    /// A named fallback constant stood in for a measurement that failed its quality check.
    FallbackUsed {
        /// Which cost.
        cost: String,
        /// The constant's name.
        constant: String,
        /// Its value.
        value: Seconds,
    },
    /// Other programs keep threads runnable on the cores; the plan counted on the CPU they
    /// leave.
    Loaded {
        /// Their runnable threads on this process's cores.
        competing: f64,
        /// The cores usable without them.
        cores: f64,
        /// The cores the chosen workers can count on beside them, in units of one unloaded
        /// thread.
        capacity: f64,
    },
    /// The input's length is unknown; the plan assumed a length.
    UnknownLength {
        /// Items assumed.
        assumed: usize,
    },
    /// The probe could not read a figure of the machine the plan counts on, and assumed one
    /// ([`Machine::warnings`](crate::probe::Machine::warnings) says why).
    MachineFallback {
        /// Which figure: `logical CPUs`, `CPUs allowed` or `usable cores`.
        figure: String,
        /// What the probe assumed.
        fallback: crate::probe::Fallback,
    },
}

impl super::Plan {
    /// Adds [`Warning::ResultsFillMemory`] when the results of every item (the sampled ones
    /// with the rest) would take more than half of the available memory. For the callers that
    /// hold every result (batches); a stream hands them out as they come.
    pub(crate) fn warn_if_results_fill_memory(&mut self) {
        let (Some(w), Some(available)) = (
            self.workload.as_ref(),
            self.caps.as_ref().and_then(|c| c.available_memory),
        ) else {
            return;
        };
        let sampled = self.sample.as_ref().map_or(0, |s| s.count);
        let results = crate::model::results_memory(w, w.items.saturating_add(sampled));
        if crate::model::results_fill_memory(results, available) {
            self.push_warning(Warning::ResultsFillMemory {
                results,
                available,
                iterator: false,
            });
        }
    }

    /// This plan, for an input that came as an iterator: a warning that its results fill
    /// memory points to streams.
    pub(crate) fn for_iterator(mut self) -> Self {
        for w in &mut self.warnings {
            if let Warning::ResultsFillMemory { iterator, .. } = w {
                *iterator = true;
            }
        }
        self
    }
}

/// Above this coefficient of variation a [`Warning::HighSpread`] is reported: the standard
/// deviation exceeds the mean, as for exponentially distributed item times (cv = 1).
pub(crate) const HIGH_SPREAD_CV: f64 = 1.0;

pub(crate) use crate::sample::NESTED_PARALLELISM_RATIO;

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::fmt::{bytes, seconds};
        match self {
            Warning::MemoryCapsWorkers {
                workers,
                per_worker,
                available,
            } => write!(
                f,
                "memory caps the workers at {workers}: each needs {}, {} available (of which \
                 {:.0} % is planned for); use less memory per item to use more cores",
                bytes(*per_worker),
                bytes(*available),
                crate::model::MEMORY_HEADROOM * 100.0
            ),
            Warning::ResultsFillMemory {
                results,
                available,
                iterator,
            } => {
                write!(
                    f,
                    "the results would hold {} of the {} available; ",
                    bytes(*results),
                    bytes(*available)
                )?;
                if *iterator {
                    f.write_str(
                        "use amorsize::stream (or Options::stream) to take them as they come \
                         instead of holding them all",
                    )
                } else {
                    f.write_str("run the input in parts, or make the results smaller")
                }
            }
            Warning::QuotaBelowCores { quota, cores } => write!(
                f,
                "the CPU quota ({quota:.2} CPUs) is below the {cores} cores; raise the \
                 container's CPU limit to use them"
            ),
            Warning::HighSpread { cv } => write!(
                f,
                "item times spread widely (cv {cv:.2}); chunks are smaller to keep the tail short"
            ),
            Warning::NestedParallelism { self_parallelism } => write!(
                f,
                "the function keeps {self_parallelism:.1} CPUs busy per call (threads of its \
                 own); fewer workers fit — limit its inner threads to use more workers"
            ),
            Warning::SampleTooSmall { items, measured } => write!(
                f,
                "the sample ({items} items, {}) is too small to trust; predictions may be off",
                seconds(*measured)
            ),
            Warning::FallbackUsed {
                cost,
                constant,
                value,
            } => write!(
                f,
                "{cost} could not be measured reliably; used the fallback {constant} = {}",
                seconds(*value)
            ),
            Warning::Loaded {
                competing,
                cores,
                capacity,
            } => write!(
                f,
                "other programs keep {competing:.1} threads runnable on the {cores:.2} cores; \
                 planned on the {capacity:.2} they leave the workers (the plan changes when \
                 they stop)"
            ),
            Warning::MachineFallback { figure, fallback } => write!(
                f,
                "the {figure} of this machine could not be read, so the probe {fallback}; \
                 `amorsize info` shows why"
            ),
            Warning::UnknownLength { assumed } => write!(
                f,
                "the input's length is unknown; planned as if it had {assumed} items \
                 (set Options::items to say)"
            ),
        }
    }
}

/// The warnings for the fallback constants `costs` used.
pub(crate) fn fallback_warnings(costs: &Costs) -> Vec<Warning> {
    let mut out = Vec::new();
    let names = |thread: &str, process: &str| -> String {
        match costs.backend {
            Backend::Threads => thread.to_owned(),
            Backend::Processes => process.to_owned(),
            other => format!("the {other} backend's fallback"),
        }
    };
    if costs.fallbacks.worker_start {
        out.push(Warning::FallbackUsed {
            cost: "worker start".to_owned(),
            constant: names("FALLBACK_THREAD_START", "FALLBACK_PROCESS_START"),
            value: costs.worker_start,
        });
    }
    if costs.fallbacks.chunk_dispatch {
        out.push(Warning::FallbackUsed {
            cost: "chunk dispatch".to_owned(),
            constant: names("FALLBACK_THREAD_DISPATCH", "FALLBACK_PROCESS_DISPATCH"),
            value: costs.chunk_dispatch,
        });
    }
    if costs.fallbacks.transfer_per_byte {
        out.push(Warning::FallbackUsed {
            cost: "transfer per byte".to_owned(),
            constant: names("transfer fallback", "FALLBACK_PIPE_PER_BYTE"),
            value: costs.transfer_per_byte,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::Warning;
    use crate::model::{Backend, Costs, Workload};
    use crate::plan::{decide, Caps};
    use crate::Options;

    fn plan(result_bytes: u64, available: u64) -> super::super::Plan {
        let w = Workload {
            result_bytes,
            ..Workload::new(1_000_000, 1e-6)
        };
        let caps = Caps {
            available_memory: Some(available),
            ..Caps::cores(2, "test")
        };
        let mut plan = decide(&w, &Costs::zero(Backend::Threads), &caps, &Options::new());
        plan.warn_if_results_fill_memory();
        plan
    }

    fn fills(plan: &super::super::Plan) -> Option<&Warning> {
        plan.warnings()
            .iter()
            .find(|w| matches!(w, Warning::ResultsFillMemory { .. }))
    }

    #[test]
    fn results_above_half_the_memory_are_warned_of_and_iterators_pointed_to_streams() {
        // A million results of 1 KiB: 977 MiB, against 1.5 GiB and 2.5 GiB available.
        assert!(fills(&plan(1024, 3 << 29)).is_some());
        assert!(fills(&plan(1024, 5 << 29)).is_none());
        let batch = plan(1024, 1 << 30);
        assert!(fills(&batch).unwrap().to_string().contains("in parts"));
        let iter = batch.for_iterator();
        let text = fills(&iter).unwrap().to_string();
        assert!(text.contains("amorsize::stream"), "{text}");
    }
}
