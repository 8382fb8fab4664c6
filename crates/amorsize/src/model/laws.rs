//! The model's laws, as property tests.

use super::*;
use proptest::prelude::*;

fn workload() -> impl Strategy<Value = Workload> {
    (
        0usize..100_000,
        0.0f64..1.0,
        0.0f64..=1.0,
        0.0f64..5.0,
        1.0f64..8.0,
        0.0f64..0.2,
        (0.0f64..1e-3, 0.0f64..1e-3, 0u64..1 << 20, 0u64..1 << 20),
    )
        .prop_map(
            |(items, t, cpu, cv, sp, alpha, (ti, to, bi, bo))| Workload {
                items,
                item_time: t,
                cpu_fraction: cpu,
                cv,
                self_parallelism: sp,
                contention: alpha,
                transfer: Transfer {
                    input_time: ti,
                    output_time: to,
                    input_bytes: bi,
                    output_bytes: bo,
                },
                ..Workload::default()
            },
        )
}

fn costs() -> impl Strategy<Value = Costs> {
    (0.0f64..1e-2, 0.0f64..1e-3, 0.0f64..1e-8).prop_map(|(s, d, b)| Costs {
        worker_start: s,
        chunk_dispatch: d,
        transfer_per_byte: b,
        ..Costs::zero(Backend::Processes)
    })
}

fn candidate() -> impl Strategy<Value = Candidate> {
    (1usize..512, 1usize..10_000).prop_map(|(w, c)| Candidate::new(w, c))
}

fn capacity() -> impl Strategy<Value = Capacity> {
    (0.5f64..256.0, 0.0f64..64.0, any::<bool>()).prop_map(|(cores, competing, session)| Capacity {
        cores,
        competing,
        sharing: if session {
            Sharing::PerSession
        } else {
            Sharing::PerThread
        },
    })
}

const EPS: f64 = 1e-9;

proptest! {
    #[test]
    fn speedup_never_above_workers(w in workload(), k in costs(), cores in 0.5f64..256.0, c in candidate()) {
        let p = predict(&w, &k, Capacity::idle(cores), c);
        prop_assert!(p.speedup() <= c.workers.get() as f64 * (1.0 + EPS), "{p:?}");
    }

    #[test]
    fn speedup_never_above_the_cores_the_work_can_use(
        w in workload(), k in costs(), cores in 0.5f64..256.0, c in candidate()
    ) {
        let p = predict(&w, &k, Capacity::idle(cores), c);
        if w.items > 0 && w.item_time > 0.0 {
            let usable = cores / w.cpu_demand();
            prop_assert!(p.speedup() <= usable * (1.0 + EPS), "{p:?}");
        }
        // CPU-bound work on one thread: never above the usable cores.
        let cpu_bound = Workload { cpu_fraction: 1.0, self_parallelism: 1.0, ..w };
        let p = predict(&cpu_bound, &k, Capacity::idle(cores), c);
        prop_assert!(p.speedup() <= cores * (1.0 + EPS), "{p:?}");
    }

    #[test]
    fn more_overhead_is_never_faster(
        w in workload(), k in costs(), cores in 0.5f64..256.0, c in candidate(),
        extra in 0.0f64..1e-2, which in 0usize..8,
    ) {
        let base = predict(&w, &k, Capacity::idle(cores), c).total();
        let (mut w2, mut k2) = (w.clone(), k);
        match which {
            0 => k2.worker_start += extra,
            1 => k2.chunk_dispatch += extra,
            2 => k2.transfer_per_byte += extra * 1e-6,
            3 => w2.transfer.input_time += extra,
            4 => w2.transfer.output_bytes += (extra * 1e6) as u64,
            5 => w2.cv += extra * 100.0,
            6 => w2.contention += extra,
            _ => w2.transfer.output_time += extra,
        }
        let more = predict(&w2, &k2, Capacity::idle(cores), c).total();
        prop_assert!(more >= base * (1.0 - EPS), "{base} > {more} after raising term {which}");
    }

    #[test]
    fn serial_prediction_is_item_time_times_items(w in workload(), k in costs(), c in candidate()) {
        let p = predict(&w, &k, Capacity::idle(4.0), c);
        prop_assert_eq!(p.serial, w.item_time * w.items as f64);
    }

    #[test]
    fn terms_are_finite_and_not_negative(w in workload(), k in costs(), cores in 0.5f64..256.0, c in candidate()) {
        let p = predict(&w, &k, Capacity::idle(cores), c);
        for (_, s) in p.overheads() {
            prop_assert!(s.is_finite() && s >= 0.0);
        }
        prop_assert!(p.compute.is_finite() && p.compute >= 0.0);
    }
}

proptest! {
    #[test]
    fn without_competing_threads_the_capacity_is_the_cores(
        w in workload(), k in costs(), cap in capacity(), c in candidate()
    ) {
        let idle = Capacity { competing: 0.0, ..cap };
        prop_assert_eq!(idle.relative_cores(c.workers.get()), cap.cores);
        prop_assert_eq!(predict(&w, &k, idle, c), predict(&w, &k, Capacity::idle(cap.cores), c));
    }

    #[test]
    fn more_workers_never_get_less_cpu(cap in capacity(), w in 1usize..512) {
        prop_assert!(cap.relative_cores(w + 1) >= cap.relative_cores(w) * (1.0 - EPS));
        prop_assert!(cap.share(w) <= cap.cores * (1.0 + EPS));
    }

    #[test]
    fn speedup_never_above_the_capacity_the_load_leaves(
        w in workload(), k in costs(), cap in capacity(), c in candidate()
    ) {
        let p = predict(&w, &k, cap, c);
        let busy = c.workers.get().min(w.items.div_ceil(c.chunk.get()).max(1));
        if w.items > 0 && w.item_time > 0.0 && w.cpu_demand() > 0.0 {
            let usable = cap.relative_cores(busy) / w.cpu_demand();
            prop_assert!(p.speedup() <= usable * (1.0 + EPS), "{p:?} vs {usable}");
        }
        prop_assert!(p.speedup() <= c.workers.get() as f64 * (1.0 + EPS), "{p:?}");
    }

    #[test]
    fn sessions_never_gain_from_more_load(
        w in workload(), k in costs(), cores in 0.5f64..256.0, r in 0.0f64..64.0,
        more in 0.0f64..64.0, c in candidate(),
    ) {
        // Shared per session, other programs' threads only take from this process, whatever
        // its workers do: more of them never predicts a larger speedup.
        let at = |competing| Capacity { cores, competing, sharing: Sharing::PerSession };
        let p = predict(&w, &k, at(r), c).speedup();
        let q = predict(&w, &k, at(r + more), c).speedup();
        prop_assert!(q <= p * (1.0 + EPS), "{q} > {p}");
    }

    #[test]
    fn terms_stay_finite_under_any_load(
        w in workload(), k in costs(), cap in capacity(), c in candidate()
    ) {
        let p = predict(&w, &k, cap, c);
        prop_assert!(p.total().is_finite() && p.compute >= 0.0);
    }
}

#[test]
fn one_busy_thread_on_two_cores() {
    // The shares measured with one `yes` beside 2 workers on 2 cores: per thread 4/3 CPU for the
    // workers against 1 for the serial loop; per session (the hog in another session) 1 and 1.
    let k = Costs::zero(Backend::Threads);
    let w = Workload::new(10_000, 1e-3);
    let thread = Capacity {
        competing: 1.0,
        ..Capacity::idle(2.0)
    };
    let session = Capacity {
        sharing: Sharing::PerSession,
        ..thread
    };
    let s = |cap| predict(&w, &k, cap, Candidate::new(2, 100)).speedup();
    assert!((s(thread) - 4.0 / 3.0).abs() < 0.01, "{}", s(thread));
    assert!((s(session) - 1.0).abs() < 0.01, "{}", s(session));
    assert!(s(Capacity::idle(2.0)) > 1.95);
}

#[test]
fn waiting_work_gains_from_workers_beyond_the_cores() {
    let waiting = Workload {
        cpu_fraction: 0.01,
        ..Workload::new(1000, 0.05)
    };
    let k = Costs::zero(Backend::Threads);
    let at_cores = predict(&waiting, &k, Capacity::idle(2.0), Candidate::new(2, 1)).total();
    let above = predict(&waiting, &k, Capacity::idle(2.0), Candidate::new(32, 1)).total();
    assert!(above < at_cores / 10.0, "{above} vs {at_cores}");
}

#[test]
fn the_bottleneck_is_the_largest_overhead() {
    let w = Workload::new(1000, 1e-6);
    let k = Costs {
        chunk_dispatch: 1e-3,
        ..Costs::zero(Backend::Threads)
    };
    let p = predict(&w, &k, Capacity::idle(4.0), Candidate::new(4, 1));
    assert_eq!(p.bottleneck().map(|b| b.0), Some(Term::Dispatch));
    let ideal = predict(
        &w,
        &Costs::zero(Backend::Threads),
        Capacity::idle(4.0),
        Candidate::new(1, 1),
    );
    assert_eq!(ideal.bottleneck(), None);
}
