//! The search: every worker count up to the limits, a grid of chunk sizes for each, the fastest
//! prediction wins, and serial unless it beats the serial loop by the threshold.

use super::caps::{Caps, Limit, LimitKind, MAX_WORKERS, WAITING_WORKERS_PER_CORE};
use super::reason::{Reason, Warning, HIGH_SPREAD_CV, NESTED_PARALLELISM_RATIO};
use super::{Mode, Options, Plan};
use crate::model::{predict, Candidate, Capacity, Costs, Prediction, Seconds, Workload};

/// Chunks each worker should get at least, so that dynamic hand-out can balance the load and
/// adaptation has chunks left to resize (Python's `Pool.map` default chunking gives about 4).
pub(crate) const MIN_CHUNKS_PER_WORKER: usize = 4;

/// Default longest chunk: the original library's 0.2 s target. Longer chunks make the tail and
/// the memory in flight grow and leave online adaptation nothing to adjust; the model picks a
/// shorter one whenever the dispatch cost allows (it balances dispatch against tail).
pub const DEFAULT_TARGET_CHUNK: Seconds = 0.2;

/// Other programs' runnable threads from which a plan warns that it counted on less than the
/// cores: half a thread, the least a count scaled to this process's CPUs rounds up from.
const MIN_COMPETING: f64 = 0.5;

/// Worker counts searched one by one; above this the search steps geometrically (by 1/8),
/// which keeps deciding for waiting work on large machines in the microseconds.
const DENSE_WORKERS: usize = 64;

/// Relative gain a candidate needs over the best so far to replace it; with worker counts
/// searched in increasing order this prefers fewer workers when more buy nothing.
const MIN_GAIN: f64 = 1e-3;

/// Decides serial or parallel, the workers and the chunk size for `workload` on a backend with
/// `costs`, within `caps` and `options`. Pure: the same figures give the same plan, so every
/// backend calls it with its own measured costs.
///
/// # Examples
///
/// ```
/// use amorsize::model::{Backend, Costs, Workload};
/// use amorsize::plan::{decide, Caps};
/// use amorsize::Options;
///
/// let costs = Costs { worker_start: 50e-6, chunk_dispatch: 1e-6, ..Costs::zero(Backend::Threads) };
/// let caps = Caps::cores(4, "test");
/// // 100 items of 10 ms: parallel on every core.
/// let plan = decide(&Workload::new(100, 10e-3), &costs, &caps, &Options::new());
/// assert!(plan.is_parallel());
/// assert_eq!(plan.workers().get(), 4);
/// // 100 items of 100 ns: serial.
/// let plan = decide(&Workload::new(100, 100e-9), &costs, &caps, &Options::new());
/// assert!(!plan.is_parallel());
/// ```
pub fn decide(workload: &Workload, costs: &Costs, caps: &Caps, options: &Options) -> Plan {
    let w = sanitized(workload);
    let capacity = caps.capacity();
    let mut plan = Plan::fixed_serial(w.items, serial_chunk(&w, options));
    plan.backend = costs.backend;
    plan.name.clone_from(&options.name);
    plan.threshold = options.threshold;
    plan.item_time = Some(w.item_time);
    plan.predicted_serial = Some(w.serial_time());
    plan.predicted = Some(w.serial_time());
    plan.items = Some(w.items);
    plan.costs = Some(*costs);
    plan.caps = Some(caps.clone());
    plan.warnings = warnings(&w, costs, caps);
    plan.limits = limits(&w, caps, options);
    plan.workload = Some(w.clone());

    if w.items == 0 {
        plan.reason = Reason::Empty;
        return plan;
    }
    let (cap, binding) = plan
        .limits
        .iter()
        .map(|l| (l.workers, l.kind))
        .min_by_key(|(workers, _)| *workers)
        .unwrap_or((1, LimitKind::Ceiling));
    if binding == LimitKind::Memory {
        if let (Some(available), true) = (caps.available_memory, w.worker_memory > 0) {
            plan.warnings.push(Warning::MemoryCapsWorkers {
                workers: cap,
                per_worker: w.worker_memory,
                available,
            });
        }
    }

    if let Some(workers) = options.workers {
        // The caller's choice stands, limits or not; the prediction still says what it costs.
        let best = best_chunk(&w, costs, capacity, workers.get(), options);
        plan.adopt(&best);
        plan.mode = if workers.get() > 1 {
            Mode::Parallel
        } else {
            Mode::Serial
        };
        plan.reason = Reason::Fixed;
        return plan;
    }
    if cap < 2 {
        plan.reason = Reason::OneWorker { limit: binding };
        return plan;
    }

    let mut best: Option<Prediction> = None;
    for workers in worker_grid(cap) {
        let p = best_chunk(&w, costs, capacity, workers, options);
        if best.map_or(true, |b| p.total() < b.total() * (1.0 - MIN_GAIN)) {
            best = Some(p);
        }
    }
    let Some(best) = best else {
        plan.reason = Reason::OneWorker { limit: binding };
        return plan;
    };
    let speedup = best.speedup();
    plan.prediction = Some(best);
    if speedup >= options.threshold {
        plan.adopt(&best);
        plan.mode = Mode::Parallel;
        plan.reason = Reason::Faster {
            speedup,
            threshold: options.threshold,
        };
    } else {
        plan.reason = Reason::refused(
            best.bottleneck().map(|b| b.0),
            best.serial,
            w.item_time,
            best.transfer,
            speedup,
            options.threshold,
        );
    }
    plan
}

/// The best speedup any parallel plan could reach if every overhead but `floor` were free and
/// every usable core ran the work (as far as other programs' load leaves them): what [`decide`] may skip measuring overheads for when it is
/// below the threshold.
///
/// # Examples
///
/// ```
/// use amorsize::model::Workload;
/// use amorsize::plan::{speedup_bound, Caps};
/// use amorsize::Options;
/// // 1000 items of 10 ns on 8 cores: 10 µs of work cannot beat a 20 µs floor.
/// let bound = speedup_bound(&Workload::new(1000, 10e-9), &Caps::cores(8, "test"), &Options::new(), 20e-6);
/// assert!(bound < 1.0);
/// ```
pub fn speedup_bound(workload: &Workload, caps: &Caps, options: &Options, floor: Seconds) -> f64 {
    let w = sanitized(workload);
    let cap = limits(&w, caps, options)
        .iter()
        .map(|l| l.workers)
        .min()
        .unwrap_or(1);
    let demand = w.cpu_demand();
    // The cores the load leaves grow with the workers (model::Capacity::relative_cores):
    // the most workers allowed get the most.
    let by_cores = if demand > 0.0 {
        caps.capacity().relative_cores(cap) / demand
    } else {
        f64::INFINITY
    };
    let parallel = (cap as f64).min(by_cores).max(f64::MIN_POSITIVE);
    let serial = w.serial_time();
    let best = serial / parallel + floor.max(0.0);
    if best > 0.0 {
        serial / best
    } else {
        1.0
    }
}

/// The limits on workers for this workload.
fn limits(w: &Workload, caps: &Caps, options: &Options) -> Vec<Limit> {
    let cores = caps.cores.max(1);
    let usable = caps.usable_cores();
    let demand = w.cpu_demand();
    let mut out = Vec::new();
    // Workers the cores keep busy: the usable cores ÷ the CPU an item keeps busy (above the
    // cores for waiting work, below for work that runs threads of its own), to the nearest
    // whole worker as the probe rounds a quota (1.5 CPUs → 2, 2.4 → 2): the model then says
    // what the fraction is worth.
    let by_cpu = if demand > 0.0 {
        (usable / demand).round()
    } else {
        f64::INFINITY
    };
    let waiting_ceiling = cores.saturating_mul(WAITING_WORKERS_PER_CORE);
    if by_cpu > waiting_ceiling as f64 {
        out.push(Limit {
            kind: LimitKind::Waiting,
            workers: waiting_ceiling,
            source: format!("{WAITING_WORKERS_PER_CORE} per core for waiting work"),
        });
    } else {
        let kind = match caps.quota {
            Some(q) if q < cores as f64 => LimitKind::Quota,
            _ => LimitKind::Cores,
        };
        out.push(Limit {
            kind,
            workers: (by_cpu as usize).max(1),
            source: format!(
                "{usable:.2} usable cores ({}) ÷ {demand:.2} CPUs per item",
                if kind == LimitKind::Quota {
                    "CPU quota"
                } else {
                    caps.cores_source.as_str()
                }
            ),
        });
    }
    out.extend(super::caps::memory_limit(w, caps));
    if let Some(p) = caps.processes {
        out.push(Limit {
            kind: LimitKind::Processes,
            workers: p.max(1),
            source: "processes the user may still start".to_owned(),
        });
    }
    if let Some(m) = options.max_workers {
        out.push(Limit {
            kind: LimitKind::MaxWorkers,
            workers: m.get(),
            source: "Options::max_workers".to_owned(),
        });
    }
    out.push(Limit {
        kind: LimitKind::Items,
        workers: w.items.max(1),
        source: format!("{} items", w.items),
    });
    out.push(Limit {
        kind: LimitKind::Ceiling,
        workers: MAX_WORKERS,
        source: "MAX_WORKERS".to_owned(),
    });
    out
}

fn warnings(w: &Workload, costs: &Costs, caps: &Caps) -> Vec<Warning> {
    let mut out = Vec::new();
    if let Some(q) = caps.quota {
        if q < caps.cores as f64 {
            out.push(Warning::QuotaBelowCores {
                quota: q,
                cores: caps.cores,
            });
        }
    }
    if let Some(load) = caps.load.as_ref().filter(|l| l.competing >= MIN_COMPETING) {
        let capacity = caps.capacity();
        out.push(Warning::Loaded {
            competing: load.competing,
            cores: capacity.cores,
            capacity: capacity.relative_cores(caps.cores.max(1)),
        });
    }
    if w.cv > HIGH_SPREAD_CV && w.items > 1 {
        out.push(Warning::HighSpread { cv: w.cv });
    }
    if w.self_parallelism > NESTED_PARALLELISM_RATIO {
        out.push(Warning::NestedParallelism {
            self_parallelism: w.self_parallelism,
        });
    }
    out.extend(super::fallback_warnings(costs));
    out
}

/// The best chunk size for `workers` workers.
fn best_chunk(
    w: &Workload,
    costs: &Costs,
    capacity: Capacity,
    workers: usize,
    options: &Options,
) -> Prediction {
    let mut best: Option<Prediction> = None;
    let mut consider = |chunk: usize| {
        let p = predict(w, costs, capacity, Candidate::new(workers, chunk));
        if best.map_or(true, |b| p.total() < b.total()) {
            best = Some(p);
        }
    };
    match options.chunk {
        Some(c) => consider(c.get()),
        None => chunk_grid(max_chunk(w, workers, options)).for_each(&mut consider),
    }
    best.unwrap_or_else(|| predict(w, costs, capacity, Candidate::new(workers, 1)))
}

/// The longest chunk worth considering: at least [`MIN_CHUNKS_PER_WORKER`] chunks per worker,
/// and no longer than the target chunk duration.
fn max_chunk(w: &Workload, workers: usize, options: &Options) -> usize {
    let balance = w.items.div_ceil(workers.max(1) * MIN_CHUNKS_PER_WORKER);
    let target = target_chunk(options);
    let by_time = if w.item_time > 0.0 {
        (target / w.item_time).floor().min(usize::MAX as f64) as usize
    } else {
        usize::MAX
    };
    balance.min(by_time).max(1)
}

fn target_chunk(options: &Options) -> Seconds {
    options
        .target_chunk
        .map_or(DEFAULT_TARGET_CHUNK, |d| d.as_secs_f64())
}

/// The chunk of a serial plan (what a serial stream pulls at a time): the target duration's
/// worth of items, within the input.
fn serial_chunk(w: &Workload, options: &Options) -> usize {
    if let Some(c) = options.chunk {
        return c.get();
    }
    let by_time = if w.item_time > 0.0 {
        (target_chunk(options) / w.item_time)
            .floor()
            .min(usize::MAX as f64) as usize
    } else {
        usize::MAX
    };
    by_time.min(w.items).max(1)
}

/// Chunk sizes 1..=max about four per doubling (each ≈ 19 % above the last), and max itself.
fn chunk_grid(max: usize) -> impl Iterator<Item = usize> {
    let mut next = 1.0f64;
    let mut last = 0usize;
    std::iter::from_fn(move || loop {
        if last >= max {
            return None;
        }
        let c = (next.round() as usize).min(max);
        next *= 1.19;
        if c > last {
            last = c;
            return Some(c);
        }
    })
}

/// Worker counts 2..=cap: each one up to [`DENSE_WORKERS`], then in steps of an eighth, and cap.
fn worker_grid(cap: usize) -> impl Iterator<Item = usize> {
    let mut next = 2usize;
    let mut done = false;
    std::iter::from_fn(move || {
        if done || next > cap {
            return None;
        }
        let w = next;
        next = if w < DENSE_WORKERS {
            w + 1
        } else {
            (w + w / 8).max(w + 1)
        };
        if next > cap && w < cap {
            next = cap;
        } else if w == cap {
            done = true;
        }
        Some(w)
    })
}

/// The workload with figures a measurement could not produce (NaN, infinite, negative) made
/// harmless, so the search never compares NaNs.
fn sanitized(w: &Workload) -> Workload {
    let fin = |x: f64, default: f64| {
        if x.is_finite() && x >= 0.0 {
            x
        } else {
            default
        }
    };
    let mut out = w.clone();
    out.item_time = fin(w.item_time, 0.0);
    out.cpu_fraction = fin(w.cpu_fraction, 1.0).min(1.0);
    out.cv = fin(w.cv, 0.0);
    out.self_parallelism = fin(w.self_parallelism, 1.0).max(1.0);
    out.contention = fin(w.contention, 0.0);
    out.transfer.input_time = fin(w.transfer.input_time, 0.0);
    out.transfer.output_time = fin(w.transfer.output_time, 0.0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_grid_covers_one_to_max_increasing() {
        for max in [1, 2, 3, 7, 100, 12345] {
            let g: Vec<usize> = chunk_grid(max).collect();
            assert_eq!(g.first(), Some(&1));
            assert_eq!(g.last(), Some(&max));
            assert!(g.windows(2).all(|p| p[0] < p[1]), "{g:?}");
        }
        assert!(chunk_grid(10_000).count() < 60);
    }

    #[test]
    fn worker_grid_covers_two_to_cap() {
        assert_eq!(worker_grid(1).count(), 0);
        assert_eq!(worker_grid(2).collect::<Vec<_>>(), vec![2]);
        assert_eq!(worker_grid(5).collect::<Vec<_>>(), vec![2, 3, 4, 5]);
        let g: Vec<usize> = worker_grid(1000).collect();
        assert_eq!(g.last(), Some(&1000));
        assert!(g.windows(2).all(|p| p[0] < p[1]));
        assert!(g.len() < 100);
    }
}
