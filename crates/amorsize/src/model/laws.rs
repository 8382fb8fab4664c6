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

const EPS: f64 = 1e-9;

proptest! {
    #[test]
    fn speedup_never_above_workers(w in workload(), k in costs(), cores in 0.5f64..256.0, c in candidate()) {
        let p = predict(&w, &k, cores, c);
        prop_assert!(p.speedup() <= c.workers.get() as f64 * (1.0 + EPS), "{p:?}");
    }

    #[test]
    fn speedup_never_above_the_cores_the_work_can_use(
        w in workload(), k in costs(), cores in 0.5f64..256.0, c in candidate()
    ) {
        let p = predict(&w, &k, cores, c);
        if w.items > 0 && w.item_time > 0.0 {
            let usable = cores / w.cpu_demand();
            prop_assert!(p.speedup() <= usable * (1.0 + EPS), "{p:?}");
        }
        // CPU-bound work on one thread: never above the usable cores.
        let cpu_bound = Workload { cpu_fraction: 1.0, self_parallelism: 1.0, ..w };
        let p = predict(&cpu_bound, &k, cores, c);
        prop_assert!(p.speedup() <= cores * (1.0 + EPS), "{p:?}");
    }

    #[test]
    fn more_overhead_is_never_faster(
        w in workload(), k in costs(), cores in 0.5f64..256.0, c in candidate(),
        extra in 0.0f64..1e-2, which in 0usize..8,
    ) {
        let base = predict(&w, &k, cores, c).total();
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
        let more = predict(&w2, &k2, cores, c).total();
        prop_assert!(more >= base * (1.0 - EPS), "{base} > {more} after raising term {which}");
    }

    #[test]
    fn serial_prediction_is_item_time_times_items(w in workload(), k in costs(), c in candidate()) {
        let p = predict(&w, &k, 4.0, c);
        prop_assert_eq!(p.serial, w.item_time * w.items as f64);
    }

    #[test]
    fn terms_are_finite_and_not_negative(w in workload(), k in costs(), cores in 0.5f64..256.0, c in candidate()) {
        let p = predict(&w, &k, cores, c);
        for (_, s) in p.overheads() {
            prop_assert!(s.is_finite() && s >= 0.0);
        }
        prop_assert!(p.compute.is_finite() && p.compute >= 0.0);
    }
}

#[test]
fn waiting_work_gains_from_workers_beyond_the_cores() {
    let waiting = Workload {
        cpu_fraction: 0.01,
        ..Workload::new(1000, 0.05)
    };
    let k = Costs::zero(Backend::Threads);
    let at_cores = predict(&waiting, &k, 2.0, Candidate::new(2, 1)).total();
    let above = predict(&waiting, &k, 2.0, Candidate::new(32, 1)).total();
    assert!(above < at_cores / 10.0, "{above} vs {at_cores}");
}

#[test]
fn the_bottleneck_is_the_largest_overhead() {
    let w = Workload::new(1000, 1e-6);
    let k = Costs {
        chunk_dispatch: 1e-3,
        ..Costs::zero(Backend::Threads)
    };
    let p = predict(&w, &k, 4.0, Candidate::new(4, 1));
    assert_eq!(p.bottleneck().map(|b| b.0), Some(Term::Dispatch));
    let ideal = predict(
        &w,
        &Costs::zero(Backend::Threads),
        4.0,
        Candidate::new(1, 1),
    );
    assert_eq!(ideal.bottleneck(), None);
}
