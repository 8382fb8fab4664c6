//! The cluster's decision: the best hosts × workers × chunk by the network model, against the
//! plan for the threads of this machine; the cluster only when it beats them by the threshold.

use super::costs::bandwidth;
use super::engine::FLOW;
use crate::fmt::{bytes, bytes_per_second, seconds};
use crate::model::network::{predict_network, Link, NetworkPrediction, Shape};
use crate::model::{Seconds, Workload};
use crate::{Options, Plan};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a planned map runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    /// On the cluster, as [`ClusterPlan::shape`] says.
    Cluster,
    /// On this machine, as [`ClusterPlan::threads`] says (threads, or the serial loop).
    Threads,
}

/// A decision between the cluster and this machine, with the figures behind it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ClusterPlan {
    /// Where the map runs.
    pub choice: Choice,
    /// The best candidate on the cluster (`None` with fewer than two processes).
    pub prediction: Option<NetworkPrediction>,
    /// The plan for this machine: threads, or serial when they do not pay either.
    pub threads: Plan,
    /// The predicted time on this machine by that plan.
    pub threads_time: Seconds,
    /// The speedup over this machine the cluster must reach.
    pub threshold: f64,
    /// The processes' measured costs.
    pub links: Vec<Link>,
    /// The workload the decision is for (the items after the sample).
    pub workload: Workload,
}

impl ClusterPlan {
    /// The shape to run on the cluster (one process, one worker, one item per chunk when there
    /// is no cluster prediction).
    pub fn shape(&self) -> Shape {
        self.prediction.map_or(
            Shape {
                hosts: 1,
                workers: 1,
                chunk: 1,
            },
            |p| p.shape,
        )
    }

    /// The predicted time of the chosen way.
    pub fn predicted(&self) -> Seconds {
        match (self.choice, self.prediction) {
            (Choice::Cluster, Some(p)) => p.total(),
            _ => self.threads_time,
        }
    }

    /// The cluster's predicted speedup over this machine.
    pub fn speedup_over_threads(&self) -> Option<f64> {
        self.prediction
            .map(|p| p.total())
            .filter(|t| *t > 0.0)
            .map(|t| self.threads_time / t)
    }
}

impl fmt::Display for ClusterPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let where_ = if self.threads.is_parallel() {
            format!(
                "the threads of this machine ({} workers)",
                self.threads.workers()
            )
        } else {
            "the serial loop of this machine".to_owned()
        };
        match (self.choice, self.prediction) {
            (Choice::Cluster, Some(p)) => writeln!(
                f,
                "cluster: {} — predicted {}, {:.2}× {where_} ({}; threshold {})",
                p.shape,
                seconds(p.total()),
                self.threads_time / p.total().max(f64::MIN_POSITIVE),
                seconds(self.threads_time),
                self.threshold
            )?,
            (_, Some(p)) => writeln!(
                f,
                "this machine: the cluster cannot beat {where_}: its best, {}, is predicted at {} against {} here ({:.2}× < threshold {}){}",
                p.shape,
                seconds(p.total()),
                seconds(self.threads_time),
                self.threads_time / p.total().max(f64::MIN_POSITIVE),
                self.threshold,
                p.bottleneck()
                    .map(|(t, s)| format!("; costliest overhead: {t} {}", seconds(s)))
                    .unwrap_or_default()
            )?,
            (_, None) => writeln!(f, "this machine: the cluster has one process; {where_}")?,
        }
        writeln!(f, "  this machine: {}", self.threads.reason())?;
        writeln!(
            f,
            "  workload: {} items of {}, {} + {} per item and result, serialization {} per item",
            self.workload.items,
            seconds(self.workload.item_time),
            bytes(self.workload.transfer.input_bytes),
            bytes(self.workload.transfer.output_bytes),
            seconds(self.workload.transfer.input_time + self.workload.transfer.output_time)
        )?;
        for (process, link) in self.links.iter().enumerate() {
            writeln!(
                f,
                "  process {process}: start-up and rendezvous {} (paid at init), round trip {}, {}, {} workers on {:.2} cores",
                seconds(link.startup),
                seconds(link.round_trip),
                bytes_per_second(bandwidth(link)),
                link.workers,
                link.cores
            )?;
        }
        if let Some(p) = self.prediction {
            write!(
                f,
                "  terms: compute {}, round trips {}, transfer {}, serialization {}, tail {}, start-up {}",
                seconds(p.compute),
                seconds(p.latency),
                seconds(p.transfer),
                seconds(p.serialization),
                seconds(p.tail),
                seconds(p.startup)
            )?;
        }
        Ok(())
    }
}

/// Decides between the cluster whose processes cost `links` and the plan `threads` for this
/// machine: every hosts (2 and up) × workers × chunk is predicted with the processes running
/// (their start-up paid at init), and the cluster is chosen when the best beats the threads'
/// predicted time by `options`' threshold. Pure.
///
/// # Examples
///
/// ```
/// use amorsize::cluster::{decide, Choice};
/// use amorsize::model::network::Link;
/// use amorsize::model::Workload;
/// use amorsize::{Options, Plan};
/// use std::num::NonZeroUsize;
///
/// let lan = |rt| Link { startup: 1.0, round_trip: rt, per_byte: 1e-9, workers: 4, cores: 4.0 };
/// let one = NonZeroUsize::MIN;
/// let serial = Plan::fixed(one, one); // this machine: the serial loop
/// let links = [lan(20e-6), lan(300e-6), lan(300e-6)];
/// // 10 000 items of 1 ms: the cluster pays.
/// let plan = decide(&Workload::new(10_000, 1e-3), &links, &serial, &Options::new());
/// assert_eq!(plan.choice, Choice::Cluster);
/// // 1000 items of 100 ns: a round trip costs more than all of them; it does not.
/// let plan = decide(&Workload::new(1000, 100e-9), &links, &serial, &Options::new());
/// assert_eq!(plan.choice, Choice::Threads);
/// ```
pub fn decide(
    workload: &Workload,
    links: &[Link],
    threads: &Plan,
    options: &Options,
) -> ClusterPlan {
    let threads_time = threads
        .predicted_time()
        .map_or_else(|| workload.serial_time(), |d| d.as_secs_f64());
    let threshold = options.threshold;
    let mut best: Option<NetworkPrediction> = None;
    if links.len() >= 2 && workload.items > 0 {
        let per = links.iter().map(|l| l.workers).max().unwrap_or(1).max(1);
        for hosts in 2..=links.len() {
            for workers in 1..=per {
                let used = hosts * workers;
                for chunk in chunk_grid(max_chunk(workload, used)) {
                    let p = predict_network(
                        workload,
                        links,
                        Shape {
                            hosts,
                            workers,
                            chunk,
                        },
                        FLOW,
                        true,
                    );
                    if best.map_or(true, |b| p.total() < b.total() * (1.0 - 1e-3)) {
                        best = Some(p);
                    }
                }
            }
        }
    }
    let pays = best.is_some_and(|p| {
        let t = p.total();
        t > 0.0 && threads_time / t >= threshold
    });
    ClusterPlan {
        choice: if pays {
            Choice::Cluster
        } else {
            Choice::Threads
        },
        prediction: best,
        threads: threads.clone(),
        threads_time,
        threshold,
        links: links.to_vec(),
        workload: workload.clone(),
    }
}

/// The longest chunk worth considering: four chunks per worker at least.
fn max_chunk(w: &Workload, workers: usize) -> usize {
    w.items
        .div_ceil(workers.max(1) * crate::plan::MIN_CHUNKS_PER_WORKER)
        .max(1)
}

/// 1..=max, each about a quarter above the last, and max.
fn chunk_grid(max: usize) -> impl Iterator<Item = usize> {
    let mut next = 1.0f64;
    let mut last = 0usize;
    std::iter::from_fn(move || loop {
        if last >= max {
            return None;
        }
        let c = (next.round() as usize).min(max);
        next *= 1.25;
        if c > last {
            last = c;
            return Some(c);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroUsize;

    fn link(round_trip: Seconds) -> Link {
        Link {
            startup: 0.5,
            round_trip,
            per_byte: 1e-9,
            workers: 2,
            cores: 2.0,
        }
    }

    fn serial() -> Plan {
        Plan::fixed(NonZeroUsize::MIN, NonZeroUsize::MIN)
    }

    #[test]
    fn one_process_is_never_a_cluster() {
        let plan = decide(
            &Workload::new(1000, 1e-2),
            &[link(1e-5)],
            &serial(),
            &Options::new(),
        );
        assert_eq!(plan.choice, Choice::Threads);
        assert!(plan.prediction.is_none());
    }

    #[test]
    fn a_refusal_gives_the_figures() {
        let links = [link(1e-5), link(50e-3), link(50e-3)];
        let plan = decide(
            &Workload::new(100, 1e-4),
            &links,
            &serial(),
            &Options::new(),
        );
        assert_eq!(plan.choice, Choice::Threads);
        let text = plan.to_string();
        assert!(text.contains("cannot beat"), "{text}");
        assert!(text.contains("round trip"), "{text}");
        assert!(text.contains("predicted"), "{text}");
    }

    #[test]
    fn slower_links_never_make_the_cluster_more_attractive() {
        let work = Workload::new(5000, 2e-4);
        let mut last = 0.0;
        for rt in [1e-6, 1e-4, 1e-3, 1e-2, 1e-1] {
            let plan = decide(
                &work,
                &[link(1e-6), link(rt), link(rt)],
                &serial(),
                &Options::new(),
            );
            let t = plan.prediction.unwrap().total();
            assert!(t >= last, "{t} after {last}");
            last = t;
        }
    }

    #[test]
    fn chunk_grid_covers_one_to_max() {
        for max in [1, 2, 9, 1000] {
            let g: Vec<usize> = chunk_grid(max).collect();
            assert_eq!(g.first(), Some(&1));
            assert_eq!(g.last(), Some(&max));
        }
    }
}
