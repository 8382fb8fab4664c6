//! Network terms: the time of a map spread over processes on several hosts (the cluster
//! backend), from what each process was measured to cost. **Pure**, like the rest of the model.
//!
//! Each process is a [`Link`] seen from process 0, which holds the items and gets the results:
//! its start-up and rendezvous, the round trip of an empty chunk to one of its workers, the
//! time per byte there and back, and its workers. A candidate is a [`Shape`]: the first `hosts`
//! processes, `workers` workers in each, chunks of `chunk` items. [`predict_network`] gives its
//! time as a sum of named terms ([`NetworkPrediction`]).

use super::{Seconds, Workload};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What one process of a cluster costs, measured from process 0 (process 0's own link is its
/// threads' hand-off inside the process).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// Start-up and rendezvous: from starting the process (or from process 0's start, when the
    /// process was started by someone else) until the cluster was connected. Paid once, when
    /// the cluster starts.
    pub startup: Seconds,
    /// An empty chunk to one of the process's workers and its reply back.
    pub round_trip: Seconds,
    /// Time per byte sent to the process and back (the inverse of its bytes per second).
    pub per_byte: Seconds,
    /// Workers (threads) the process runs.
    pub workers: usize,
    /// Cores its workers can use: its host's usable cores, less other programs' load, shared
    /// among the cluster's processes on that host. 0 when unknown, and then the workers are not
    /// capped.
    #[serde(default)]
    pub cores: f64,
}

/// A candidate for the cluster: how many processes, how many workers in each, chunk size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    /// Processes used, process 0 first (the processes of a cluster are numbered, and the
    /// first `hosts` are used).
    pub hosts: usize,
    /// Workers used in each process (at most the process's own).
    pub workers: usize,
    /// Items handed out together.
    pub chunk: usize,
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} hosts × {} workers × chunks of {}",
            self.hosts, self.workers, self.chunk
        )
    }
}

/// How the chunks flow: chunks in flight per worker, and chunks allowed out at once beyond
/// the oldest result not yet handed out (results come back in input order, so a chunk at
/// the slowest worker holds the others back once this many are out), per worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    /// Chunks a worker holds at once (one running, the others on their way).
    pub window: usize,
    /// Chunks out at once per worker used, counted from the oldest not yet handed out.
    pub ahead: usize,
}

/// The predicted time of a [`Shape`], with every term named.
///
/// `total = startup + serialization + transfer + compute + latency + tail`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NetworkPrediction {
    /// The shape predicted.
    pub shape: Shape,
    /// The plain serial loop over the same items, on process 0.
    pub serial: Seconds,
    /// Start-up and rendezvous of the slowest process used; zero when the cluster is running.
    pub startup: Seconds,
    /// Process 0 encoding every item and decoding every result (one thread, serial).
    pub serialization: Seconds,
    /// The bytes of the items run elsewhere, through process 0's link.
    pub transfer: Seconds,
    /// The items' own work (with the workers' decoding and encoding) spread over the workers.
    pub compute: Seconds,
    /// Round trips not hidden behind work: filling and draining the pipeline once, and each
    /// chunk that takes less than its worker's round trip.
    pub latency: Seconds,
    /// Workers idle while the last chunks finish.
    pub tail: Seconds,
}

/// An overhead term of a [`NetworkPrediction`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkTerm {
    /// Starting the processes and connecting them.
    Startup,
    /// Encoding items and decoding results at process 0.
    Serialization,
    /// Bytes through process 0's link.
    Transfer,
    /// Round trips not hidden behind work.
    Latency,
    /// Imbalance at the end of the run.
    Tail,
}

impl fmt::Display for NetworkTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NetworkTerm::Startup => "start-up and rendezvous",
            NetworkTerm::Serialization => "serialization",
            NetworkTerm::Transfer => "transfer",
            NetworkTerm::Latency => "round trips",
            NetworkTerm::Tail => "tail imbalance",
        })
    }
}

impl NetworkPrediction {
    /// Predicted wall time.
    pub fn total(&self) -> Seconds {
        self.startup + self.serialization + self.transfer + self.compute + self.latency + self.tail
    }

    /// Predicted speedup over the serial loop (1 when both are zero).
    pub fn speedup(&self) -> f64 {
        let total = self.total();
        if total > 0.0 {
            self.serial / total
        } else if self.serial > 0.0 {
            f64::INFINITY
        } else {
            1.0
        }
    }

    /// The overhead terms, in a fixed order.
    pub fn overheads(&self) -> [(NetworkTerm, Seconds); 5] {
        [
            (NetworkTerm::Startup, self.startup),
            (NetworkTerm::Serialization, self.serialization),
            (NetworkTerm::Transfer, self.transfer),
            (NetworkTerm::Latency, self.latency),
            (NetworkTerm::Tail, self.tail),
        ]
    }

    /// The overhead term that costs most, when any costs anything.
    pub fn bottleneck(&self) -> Option<(NetworkTerm, Seconds)> {
        self.overheads()
            .into_iter()
            .filter(|(_, s)| *s > 0.0)
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }
}

/// Predicts the time of `shape` for `workload` on the processes `links` (process 0 first),
/// with chunks flowing as `flow` says; `running` says the cluster is already started (its
/// start-up is then paid).
///
/// With `N` items of `t` seconds, `s` half the measured serialization round trip of an item
/// (encoding on one side, decoding on the other), `b` the bytes of an item and its result,
/// chunks of `c` items, `K = ⌈N/c⌉` chunks, `t' = t + s` the time of an item at a worker, and
/// for each process `p` used its round trip `r_p`, time per byte `τ_p` and `w_p` workers
/// (as many as the shape says, at most the process's share of its host's cores; `W = Σ w_p`):
/// - a worker of `p` finishes a chunk every `cycle_p = max(c t', r_p / (window − 1))`: with
///   `window` chunks in flight the next chunk is on its way while one runs, so a round trip
///   is hidden behind the work unless the chunk is shorter than it;
/// - the chunks run at `R = Σ w_p / cycle_p` per second, and at most `A = ahead × W` chunks
///   are out while the oldest is at the slowest worker, so the body takes
///   `max(K / R, K max cycle_p / A)`; compute `= N t' / W` is the part of it that is work,
///   and latency `= body − compute + max r_p` adds the round trip that fills and drains the
///   pipeline;
/// - transfer: the bytes of the items run outside process 0 pass process 0's link; with
///   chunks handed to whichever worker is free the remote share is taken as the remote
///   workers' share, at the slowest remote link: `N b (W − w_0) / W × max_{p≥1} τ_p`;
/// - serialization `= N s`: process 0 encodes every item and decodes every result itself;
/// - tail `= (1 − 1/W) (c t' / 2 + cv t' √c)`, as for threads;
/// - startup is the slowest used process's start-up and rendezvous, unless `running`.
///
/// # Examples
///
/// ```
/// use amorsize::model::network::{predict_network, Flow, Link, Shape};
/// use amorsize::model::Workload;
/// let link = |rt| Link { startup: 1.0, round_trip: rt, per_byte: 1e-9, workers: 2, cores: 2.0 };
/// let work = Workload::new(10_000, 1e-3); // 10 s of work
/// let lan = [link(10e-6), link(200e-6), link(200e-6)];
/// let flow = Flow { window: 2, ahead: 16 };
/// let p = predict_network(&work, &lan, Shape { hosts: 3, workers: 2, chunk: 20 }, flow, true);
/// assert!(p.speedup() > 5.0 && p.speedup() <= 6.0);
/// // Chunks of one item, each shorter than a 5 ms round trip: the network sets the pace.
/// let wan = [link(10e-6), link(5e-3), link(5e-3)];
/// let p = predict_network(&work, &wan, Shape { hosts: 3, workers: 2, chunk: 1 }, flow, true);
/// assert!(p.latency > p.compute);
/// ```
pub fn predict_network(
    workload: &Workload,
    links: &[Link],
    shape: Shape,
    flow: Flow,
    running: bool,
) -> NetworkPrediction {
    let nonneg = |x: f64| if x.is_finite() && x > 0.0 { x } else { 0.0 };
    let n = workload.items as f64;
    let t = nonneg(workload.item_time);
    let s = nonneg(workload.transfer.input_time + workload.transfer.output_time) / 2.0;
    let bytes = (workload.transfer.input_bytes + workload.transfer.output_bytes) as f64;
    let chunk = shape.chunk.max(1);
    let c = chunk.min(workload.items.max(1)) as f64;
    let chunks = workload.items.div_ceil(chunk) as f64;
    let t_item = t + s;
    let hidden = flow.window.saturating_sub(1).max(1) as f64;
    let used = &links[..shape.hosts.clamp(1, links.len().max(1)).min(links.len())];

    let mut workers = 0.0;
    let mut rate = 0.0;
    let mut startup: Seconds = 0.0;
    let mut slowest_trip: Seconds = 0.0;
    let mut slowest_cycle: Seconds = 0.0;
    let mut cycles = Vec::with_capacity(used.len());
    for link in used {
        let mut w = shape.workers.clamp(1, link.workers.max(1)) as f64;
        if link.cores.is_finite() && link.cores > 0.0 {
            // Workers beyond the process's share of its host's cores wait for them.
            w = w.min(link.cores);
        }
        let trip = nonneg(link.round_trip);
        let cycle = (c * t_item).max(trip / hidden);
        workers += w;
        if cycle > 0.0 {
            rate += w / cycle;
        }
        cycles.push((w, cycle, nonneg(link.per_byte)));
        startup = startup.max(nonneg(link.startup));
        slowest_cycle = slowest_cycle.max(cycle);
        slowest_trip = slowest_trip.max(trip);
    }
    let workers = workers.max(1.0);
    let compute = n * t_item / workers;
    let out_at_once = (flow.ahead.max(1) as f64 * workers).max(1.0);
    let body = if rate > 0.0 {
        (chunks / rate).max(chunks * slowest_cycle / out_at_once)
    } else {
        0.0
    };
    let latency = if n > 0.0 {
        (body - compute).max(0.0) + slowest_trip
    } else {
        0.0
    };
    // The hand-out gives chunks to whichever worker is free, so the remote workers' share of
    // the items is taken as their share of the workers, each byte at the slowest remote link.
    let remote = workers - cycles.first().map_or(0.0, |(w, _, _)| *w);
    let slowest_byte = cycles
        .iter()
        .skip(1)
        .map(|(_, _, b)| *b)
        .fold(0.0, f64::max);
    let transfer = n * bytes * (remote / workers) * slowest_byte;
    let tail = (1.0 - 1.0 / workers) * (c * t_item / 2.0 + nonneg(workload.cv) * t_item * c.sqrt());

    NetworkPrediction {
        shape,
        serial: workload.serial_time(),
        startup: if running { 0.0 } else { startup },
        serialization: n * s,
        transfer,
        compute,
        latency,
        tail,
    }
}

#[cfg(test)]
mod laws {
    use super::*;
    use crate::model::Transfer;
    use proptest::prelude::*;

    const FLOW: Flow = Flow {
        window: 2,
        ahead: 16,
    };

    fn workload() -> impl Strategy<Value = Workload> {
        (
            1usize..100_000,
            0.0f64..0.1,
            0.0f64..3.0,
            (0.0f64..1e-4, 0.0f64..1e-4, 0u64..1 << 16, 0u64..1 << 16),
        )
            .prop_map(|(items, t, cv, (ti, to, bi, bo))| Workload {
                items,
                item_time: t,
                cv,
                transfer: Transfer {
                    input_time: ti,
                    output_time: to,
                    input_bytes: bi,
                    output_bytes: bo,
                },
                ..Workload::default()
            })
    }

    fn link() -> impl Strategy<Value = Link> {
        (
            0.0f64..5.0,
            0.0f64..0.1,
            0.0f64..1e-7,
            1usize..16,
            0.0f64..16.0,
        )
            .prop_map(|(startup, round_trip, per_byte, workers, cores)| Link {
                startup,
                round_trip,
                per_byte,
                workers,
                cores,
            })
    }

    fn case() -> impl Strategy<Value = (Workload, Vec<Link>, Shape, bool)> {
        (
            workload(),
            proptest::collection::vec(link(), 1..6),
            1usize..8,
            1usize..16,
            1usize..5000,
            any::<bool>(),
        )
            .prop_map(|(w, links, hosts, workers, chunk, running)| {
                let hosts = hosts.min(links.len());
                (
                    w,
                    links,
                    Shape {
                        hosts,
                        workers,
                        chunk,
                    },
                    running,
                )
            })
    }

    fn used_workers(links: &[Link], shape: Shape) -> f64 {
        links[..shape.hosts]
            .iter()
            .map(|l| {
                let w = shape.workers.clamp(1, l.workers) as f64;
                if l.cores > 0.0 {
                    w.min(l.cores)
                } else {
                    w
                }
            })
            .sum()
    }

    proptest! {
        #[test]
        fn speedup_never_exceeds_the_workers_used((w, links, shape, running) in case()) {
            let p = predict_network(&w, &links, shape, FLOW, running);
            prop_assert!(p.speedup() <= used_workers(&links, shape).max(1.0) * (1.0 + 1e-9));
        }

        #[test]
        fn every_term_is_finite_and_never_negative((w, links, shape, running) in case()) {
            let p = predict_network(&w, &links, shape, FLOW, running);
            for (_, term) in p.overheads() {
                prop_assert!(term.is_finite() && term >= 0.0);
            }
            prop_assert!(p.compute.is_finite() && p.compute >= 0.0);
        }

        #[test]
        fn a_slower_round_trip_is_never_faster(
            (w, links, shape, running) in case(), host in 0usize..6, extra in 0.0f64..0.1,
        ) {
            let before = predict_network(&w, &links, shape, FLOW, running);
            let mut slower = links.clone();
            let host = host % slower.len();
            slower[host].round_trip += extra;
            let after = predict_network(&w, &slower, shape, FLOW, running);
            prop_assert!(after.total() >= before.total() * (1.0 - 1e-9));
        }

        #[test]
        fn fewer_bytes_per_second_is_never_faster(
            (w, links, shape, running) in case(), host in 0usize..6, extra in 0.0f64..1e-6,
        ) {
            let before = predict_network(&w, &links, shape, FLOW, running);
            let mut slower = links.clone();
            let host = host % slower.len();
            slower[host].per_byte += extra;
            let after = predict_network(&w, &slower, shape, FLOW, running);
            prop_assert!(after.total() >= before.total() * (1.0 - 1e-9));
        }

        #[test]
        fn the_slowest_round_trip_is_paid_at_least_once((w, links, shape, running) in case()) {
            let p = predict_network(&w, &links, shape, FLOW, running);
            let slowest = links[..shape.hosts].iter().map(|l| l.round_trip).fold(0.0, f64::max);
            prop_assert!(p.latency >= slowest * (1.0 - 1e-9));
        }

        #[test]
        fn startup_counts_only_before_the_cluster_runs((w, links, shape) in case().prop_map(|(w, l, s, _)| (w, l, s))) {
            let cold = predict_network(&w, &links, shape, FLOW, false);
            let warm = predict_network(&w, &links, shape, FLOW, true);
            prop_assert_eq!(warm.startup, 0.0);
            prop_assert!(cold.total() >= warm.total());
        }
    }

    #[test]
    fn processes_sharing_a_host_share_its_cores() {
        let link = |cores| Link {
            startup: 0.0,
            round_trip: 1e-5,
            per_byte: 0.0,
            workers: 2,
            cores,
        };
        let work = Workload::new(10_000, 1e-3);
        let shape = Shape {
            hosts: 3,
            workers: 2,
            chunk: 10,
        };
        let own = predict_network(&work, &[link(2.0), link(2.0), link(2.0)], shape, FLOW, true);
        let shared = predict_network(&work, &[link(2.0 / 3.0); 3], shape, FLOW, true);
        assert!(own.speedup() > 5.0, "{own:?}");
        assert!(shared.speedup() <= 2.0, "{shared:?}");
    }

    #[test]
    fn a_wider_window_hides_round_trips_behind_short_chunks() {
        let link = Link {
            startup: 0.0,
            round_trip: 4e-3,
            per_byte: 0.0,
            workers: 1,
            cores: 0.0,
        };
        let work = Workload::new(1000, 1e-3);
        let shape = Shape {
            hosts: 2,
            workers: 1,
            chunk: 1,
        };
        let two = predict_network(&work, &[link, link], shape, FLOW, true);
        let five = predict_network(
            &work,
            &[link, link],
            shape,
            Flow { window: 5, ..FLOW },
            true,
        );
        assert!(five.latency < two.latency, "{five:?} against {two:?}");
    }

    #[test]
    fn results_in_order_hold_the_fast_workers_back_behind_a_slow_one() {
        let near = Link {
            startup: 0.0,
            round_trip: 1e-5,
            per_byte: 0.0,
            workers: 4,
            cores: 0.0,
        };
        let far = Link {
            round_trip: 20e-3,
            ..near
        };
        let work = Workload::new(10_000, 1e-4);
        let shape = Shape {
            hosts: 2,
            workers: 4,
            chunk: 1,
        };
        let wide = predict_network(
            &work,
            &[near, far],
            shape,
            Flow {
                ahead: 1000,
                ..FLOW
            },
            true,
        );
        let narrow = predict_network(&work, &[near, far], shape, Flow { ahead: 2, ..FLOW }, true);
        assert!(narrow.total() > wide.total(), "{narrow:?} against {wide:?}");
    }
}
