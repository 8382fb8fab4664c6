//! The prediction of one candidate, term by term.

use super::{Candidate, Capacity, Costs, Seconds, Workload};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The predicted time of a candidate, with every term named.
///
/// `total = worker_start + compute + contention + dispatch + transfer + tail`; every overhead
/// term is zero on an ideal machine, and `compute` alone is the Amdahl/throughput bound.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The candidate predicted.
    pub candidate: Candidate,
    /// Time of the plain serial loop over the same items (item time × items).
    pub serial: Seconds,
    /// Starting (or waking, for a reused pool) the workers, one after another.
    pub worker_start: Seconds,
    /// The items' own work spread over the workers: per-worker share, or the CPU the work needs
    /// ÷ usable cores when the cores are the narrower limit.
    pub compute: Seconds,
    /// Extra compute from contention between workers (Universal Scalability Law's α term).
    pub contention: Seconds,
    /// Handing out chunks: each worker pays the dispatch cost of the chunks it runs.
    pub dispatch: Seconds,
    /// The coordinator's side of serialization and pipe transfer (serial by nature).
    pub transfer: Seconds,
    /// Tail imbalance: workers idle while the last chunks finish; grows with the chunk's
    /// duration and the spread of item times.
    pub tail: Seconds,
}

/// An overhead term of a [`Prediction`]: what parallelism costs beyond the work itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Term {
    /// Starting the workers.
    WorkerStart,
    /// Contention between workers.
    Contention,
    /// Handing out chunks.
    Dispatch,
    /// Serialization and transfer between processes.
    Transfer,
    /// Imbalance at the end of the run.
    Tail,
}

impl Term {
    /// What would make this term smaller, for people.
    pub fn remedy(self) -> &'static str {
        match self {
            Term::WorkerStart => {
                "give each call more work (batch several calls into one), or reuse warm workers"
            }
            Term::Contention => {
                "touch less shared memory per item (workers compete for memory bandwidth or locks)"
            }
            Term::Dispatch => "put more work in each item, or allow larger chunks",
            Term::Transfer => {
                "send smaller inputs and results (indices or paths instead of data), or use threads"
            }
            Term::Tail => {
                "more items per worker, or order items from the most to the least expensive"
            }
        }
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Term::WorkerStart => "worker start",
            Term::Contention => "contention",
            Term::Dispatch => "chunk dispatch",
            Term::Transfer => "serialization",
            Term::Tail => "tail imbalance",
        })
    }
}

impl Prediction {
    /// Predicted wall time of the candidate.
    pub fn total(&self) -> Seconds {
        self.worker_start
            + self.compute
            + self.contention
            + self.dispatch
            + self.transfer
            + self.tail
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
    pub fn overheads(&self) -> [(Term, Seconds); 5] {
        [
            (Term::WorkerStart, self.worker_start),
            (Term::Contention, self.contention),
            (Term::Dispatch, self.dispatch),
            (Term::Transfer, self.transfer),
            (Term::Tail, self.tail),
        ]
    }

    /// The overhead term that costs most, when any costs anything.
    pub fn bottleneck(&self) -> Option<(Term, Seconds)> {
        self.overheads().into_iter().filter(|(_, s)| *s > 0.0).fold(
            None,
            |best: Option<(Term, Seconds)>, (t, s)| match best {
                Some((_, b)) if b >= s => best,
                _ => Some((t, s)),
            },
        )
    }
}

/// Predicts the time of `candidate` for `workload` with a backend's `costs` on the CPU
/// `capacity` left to it (usable cores, fractional under a CPU quota, less what other
/// programs' runnable threads take).
///
/// The terms, with `N` items of `t` seconds, `W` workers, chunks of `c` items, `K = ⌈N/c⌉`
/// chunks, and `W' = min(W, K)` workers that get any chunk:
/// - worker start `= W × worker_start`: the coordinator starts or wakes the workers one after
///   another (on threads, a reused pool's sleeping workers are woken; see
///   [`calibrate`](crate::calibrate));
/// - compute `= max(N t' / W', N t d / cores(W'))`, where `t'` adds the workers' half of the
///   serialization round trip, `d` is [`Workload::cpu_demand`] and `cores(W')` is
///   [`Capacity::relative_cores`]: a worker cannot run faster than its share, and the items
///   cannot use more CPU than the cores give `W'` workers beside the other programs' threads
///   (in units of the one thread the sample ran on, under the same load) — which is also why
///   waiting work (`d` well below 1) gains from workers beyond the cores;
/// - contention `= compute × α (W' − 1)`, the linear term of the Universal Scalability Law;
/// - dispatch `= ⌈K / W'⌉ × chunk_dispatch`: each worker hands itself its chunks;
/// - transfer `= N × (half the serialization round trips + bytes × transfer_per_byte)`: the
///   coordinator encodes every input and decodes every result alone (postcard encoding and
///   decoding are one pass each, so each side gets half of the measured round trip);
/// - tail `= (1 − 1/W') × (c t' / 2 + cv t' √c)`: with chunks handed out dynamically the last
///   chunk finishes on average half a chunk after the others, later when chunk durations spread
///   (a chunk of `c` independent items has standard deviation `cv t' √c`).
///
/// # Examples
///
/// ```
/// use amorsize::model::{predict, Backend, Candidate, Capacity, Costs, Workload};
/// let work = Workload::new(1000, 1e-3); // 1000 items of 1 ms
/// let costs = Costs::zero(Backend::Threads);
/// let p = predict(&work, &costs, Capacity::idle(4.0), Candidate::new(4, 10));
/// assert_eq!(p.serial, 1.0);
/// assert!(p.speedup() <= 4.0 && p.speedup() > 3.5);
/// // Four other busy threads on the four cores: 4 workers get half of them, the sampled
/// // thread got 4/5 of one, so the speedup is 2.5 at most.
/// let busy = Capacity { competing: 4.0, ..Capacity::idle(4.0) };
/// let p = predict(&work, &costs, busy, Candidate::new(4, 10));
/// assert!(p.speedup() <= 2.5 && p.speedup() > 2.2);
/// ```
pub fn predict(
    workload: &Workload,
    costs: &Costs,
    capacity: Capacity,
    candidate: Candidate,
) -> Prediction {
    let n = workload.items as f64;
    let t = workload.item_time.max(0.0);
    let c = candidate.chunk.get() as f64;
    let chunks = workload.items.div_ceil(candidate.chunk.get());
    let busy = candidate.workers.get().min(chunks.max(1));
    let w = busy as f64;
    let cores = capacity.relative_cores(busy).max(f64::MIN_POSITIVE);

    let round_trip = (workload.transfer.input_time + workload.transfer.output_time).max(0.0);
    let bytes = (workload.transfer.input_bytes + workload.transfer.output_bytes) as f64;
    let t_worker = t + round_trip / 2.0;

    let share = n * t_worker / w;
    let cpu_bound = n * t * workload.cpu_demand() / cores;
    let compute = share.max(cpu_bound);
    let contention = compute * workload.contention.max(0.0) * (w - 1.0);
    let dispatch = chunks.div_ceil(busy) as f64 * costs.chunk_dispatch.max(0.0);
    let transfer = n * (round_trip / 2.0 + bytes * costs.transfer_per_byte.max(0.0));
    let chunk_time = c.min(n) * t_worker;
    let tail =
        (1.0 - 1.0 / w) * (chunk_time / 2.0 + workload.cv.max(0.0) * t_worker * c.min(n).sqrt());

    Prediction {
        candidate,
        serial: workload.serial_time(),
        worker_start: candidate.workers.get() as f64 * costs.worker_start.max(0.0),
        compute,
        contention,
        dispatch,
        transfer,
        tail,
    }
}
