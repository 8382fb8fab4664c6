//! `.amorsize()` on rayon pipelines returns what rayon returns, runs every item exactly once,
//! and lets a panic through: on planned runs (whatever the machine decides) and on runs whose
//! workers and chunk are fixed (always parallel) or serial.

use amorsize::prelude::*;
use amorsize::Options;
use proptest::prelude::*;
use rayon::prelude::*;
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

fn nz(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap()
}

/// Options of every kind: planned, serial, and parallel with small chunks.
fn options() -> impl Strategy<Value = Options> {
    prop_oneof![
        Just(Options::new()),
        Just(Options::new().threshold(1.5)),
        Just(Options::new().workers(nz(1))),
        (2usize..5, 1usize..40).prop_map(|(w, c)| Options::new().workers(nz(w)).chunk_size(nz(c))),
    ]
}

fn inputs() -> impl Strategy<Value = Vec<u64>> {
    prop_oneof![
        Just(Vec::new()),
        prop::collection::vec(any::<u64>(), 0..10),
        prop::collection::vec(any::<u64>(), 0..3000),
    ]
}

fn work(x: &u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) ^ x
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn map_sum_and_collect_equal_rayon(v in inputs(), o in options()) {
        let sum: u64 = v.par_iter().map(work).map(|x| x >> 20).amorsize_with(o.clone()).sum();
        prop_assert_eq!(sum, v.par_iter().map(work).map(|x| x >> 20).sum::<u64>());
        let strings: Vec<String> = v.iter().map(|x| x.to_string()).collect();
        let out: Vec<String> = strings.clone().into_par_iter().map(|s| s + "!").amorsize_with(o).collect();
        prop_assert_eq!(out, strings.into_par_iter().map(|s| s + "!").collect::<Vec<_>>());
    }

    #[test]
    fn map_init_enumerate_and_zip_equal_rayon(v in inputs(), o in options()) {
        let n = v
            .par_iter()
            .map_init(Vec::new, |buf: &mut Vec<u64>, x| { buf.push(*x); work(x) })
            .amorsize_with(o.clone())
            .count();
        prop_assert_eq!(n, v.len());
        let init: Vec<u64> = v.par_iter().map_init(|| 3u64, |k, x| work(x) ^ *k).amorsize_with(o.clone()).collect();
        prop_assert_eq!(init, v.iter().map(|x| work(x) ^ 3).collect::<Vec<_>>());
        let indexed: Vec<(usize, u64)> = v.par_iter().enumerate().map(|(i, x)| (i, work(x))).amorsize_with(o.clone()).collect();
        prop_assert_eq!(indexed, v.iter().enumerate().map(|(i, x)| (i, work(x))).collect::<Vec<_>>());
        let w: Vec<u64> = v.iter().rev().copied().collect();
        let zipped: Vec<u64> = v.par_iter().zip(w.par_iter()).map(|(a, b)| a ^ b).amorsize_with(o).collect();
        prop_assert_eq!(zipped, v.iter().zip(&w).map(|(a, b)| a ^ b).collect::<Vec<_>>());
    }

    #[test]
    fn hash_maps_results_and_min_by_key_equal_rayon(v in inputs(), o in options(), bad in any::<prop::sample::Index>()) {
        let m: HashMap<u64, u64> = v.par_iter().map(|x| (*x % 101, work(x))).amorsize_with(o.clone()).collect();
        let expected: HashMap<u64, u64> = v.par_iter().map(|x| (*x % 101, work(x))).collect();
        prop_assert_eq!(m.len(), expected.len());
        // Which of several equal keys' values a map keeps is rayon's (the last in order).
        prop_assert_eq!(m, expected);
        let min = v.par_iter().map(|x| x % 97).enumerate().amorsize_with(o.clone()).min_by_key(|(_, k)| *k);
        prop_assert_eq!(min, v.par_iter().map(|x| x % 97).enumerate().min_by_key(|(_, k)| *k));
        let all: Result<Vec<u64>, String> = v.par_iter().map(|x| Ok(work(x))).amorsize_with(o.clone()).collect();
        prop_assert_eq!(all, Ok(v.iter().map(work).collect::<Vec<_>>()));
        if !v.is_empty() {
            let at = bad.index(v.len());
            let failed: Result<Vec<u64>, usize> = (0..v.len())
                .into_par_iter()
                .map(|i| if i == at { Err(i) } else { Ok(work(&v[i])) })
                .amorsize_with(o)
                .collect();
            prop_assert_eq!(failed, Err(at));
        }
    }

    #[test]
    fn for_each_on_par_iter_mut_equals_rayon(v in inputs(), o in options()) {
        let mut ours = v.clone();
        ours.par_iter_mut().amorsize_with(o).for_each(|x| *x = work(x));
        let mut theirs = v;
        theirs.par_iter_mut().for_each(|x| *x = work(x));
        prop_assert_eq!(ours, theirs);
    }

    #[test]
    fn unindexed_pipelines_equal_rayon(v in inputs(), o in options(), times in 1usize..4) {
        // Several drives: the first measures, the next ones plan from it.
        for _ in 0..times {
            let evens: Vec<u64> = v.par_iter().filter(|x| *x % 2 == 0).map(work).amorsize_with(o.clone()).collect();
            prop_assert_eq!(evens, v.iter().filter(|x| *x % 2 == 0).map(work).collect::<Vec<_>>());
            let n = v.par_iter().flat_map_iter(|x| 0..(x % 5)).amorsize_with(o.clone()).count();
            prop_assert_eq!(n as u64, v.iter().map(|x| x % 5).sum::<u64>());
            let bridged: u64 = v.iter().par_bridge().map(work).map(|x| x >> 20).amorsize_with(o.clone()).sum();
            prop_assert_eq!(bridged, v.iter().map(work).map(|x| x >> 20).sum::<u64>());
        }
    }

    #[test]
    fn every_item_runs_exactly_once(n in 0usize..5000, o in options()) {
        let calls: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
        let total: usize = (0..n).into_par_iter().map(|i| { calls[i].fetch_add(1, Relaxed); i }).amorsize_with(o.clone()).sum();
        prop_assert_eq!(total, (0..n).sum::<usize>());
        prop_assert!(calls.iter().all(|c| c.load(Relaxed) == 1));
        let filtered = (0..n).into_par_iter().filter(|&i| { calls[i].fetch_add(1, Relaxed); i % 3 == 0 }).amorsize_with(o).count();
        prop_assert_eq!(filtered, n.div_ceil(3));
        prop_assert!(calls.iter().all(|c| c.load(Relaxed) == 2));
    }
}

#[test]
fn a_panic_reaches_the_caller_from_the_sample_and_from_the_rest() {
    let v: Vec<u64> = (0..20_000).collect();
    for at in [0u64, 3, 19_999] {
        for o in [
            Options::new(),
            Options::new().workers(nz(1)),
            Options::new().workers(nz(3)).chunk_size(nz(7)),
        ] {
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                v.par_iter()
                    .map(|x| {
                        assert!(*x != at, "item {at} failed");
                        *x
                    })
                    .amorsize_with(o)
                    .sum::<u64>()
            }));
            let payload = caught.expect_err("the panic reaches the caller");
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .unwrap_or_default();
            assert_eq!(message, format!("item {at} failed"));
        }
    }
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        v.par_iter()
            .filter(|x| **x % 2 == 0)
            .map(|x| assert!(*x != 500, "filtered"))
            .amorsize()
            .count()
    }));
    assert!(caught.is_err());
}

#[test]
fn the_report_accounts_for_every_item() {
    let v: Vec<u64> = (0..50_000).collect();
    for o in [
        Options::new(),
        Options::new().workers(nz(1)),
        Options::new().workers(nz(2)).chunk_size(nz(100)),
    ] {
        let seen = Arc::new(Mutex::new(None));
        let keep = Arc::clone(&seen);
        let s: u64 = v
            .par_iter()
            .map(work)
            .map(|x| x >> 20)
            .amorsize_with(o)
            .on_report(move |run| *keep.lock().unwrap() = Some(run.clone()))
            .sum();
        assert_eq!(s, v.iter().map(work).map(|x| x >> 20).sum::<u64>());
        let run = seen
            .lock()
            .unwrap()
            .take()
            .expect("the hook heard of the run");
        assert_eq!(run.items, v.len());
        let ran: usize = run.phases.iter().map(|p| p.items).sum();
        assert_eq!(run.reused_from_sample + ran, v.len(), "{run}");
        assert_eq!(run.ran(), ran);
        assert!(run.reused_from_sample <= v.len() / 20 + 8, "{run}");
        assert!(!run.to_string().is_empty());
        assert!(!run.plan.to_string().is_empty());
    }
}

#[test]
fn a_nested_pipeline_runs_on_the_outer_pool() {
    let v: Vec<u64> = (0..200).collect();
    let sums: Vec<u64> = v
        .par_iter()
        .map(|&x| {
            (0..x)
                .into_par_iter()
                .map(|y| y * 2)
                .amorsize()
                .sum::<u64>()
        })
        .amorsize_with(Options::new().workers(nz(2)).chunk_size(nz(5)))
        .collect();
    assert_eq!(
        sums,
        v.iter()
            .map(|&x| x * x.saturating_sub(1))
            .collect::<Vec<_>>()
    );
}

#[test]
fn an_unindexed_pipeline_measures_its_first_drive_and_plans_the_next_from_it() {
    use amorsize::plan::{Reason, Warning};
    let v: Vec<u64> = (0..10_000).collect();
    let mut plans = Vec::new();
    for _ in 0..3 {
        let seen = Arc::new(Mutex::new(None));
        let keep = Arc::clone(&seen);
        let n = v
            .par_iter()
            .filter(|x| *x % 3 == 0)
            .map(work)
            .amorsize()
            .on_report(move |run| *keep.lock().unwrap() = Some(run.clone()))
            .count();
        assert_eq!(n, 3334);
        let run = seen.lock().unwrap().take().expect("reported");
        assert_eq!(run.items, 3334);
        assert_eq!(run.phases.iter().map(|p| p.items).sum::<usize>(), 3334);
        plans.push(run.plan);
    }
    // The first drive ran as plain rayon: a fixed plan of the pool's size, nothing sampled.
    assert!(matches!(plans[0].reason(), Reason::Fixed) && plans[0].sample().is_none());
    // The next ones planned from the last drive's figures, or ran serially after a lost one.
    assert!(plans[1..].iter().all(|p| p.sample().is_some()
        || p.warnings()
            .iter()
            .any(|w| matches!(w, Warning::UnknownLength { .. }))));
}

/// Items that wait: slow enough (tens of µs) for the sample to take them one by one at places
/// spread over the input, whatever this machine's speed.
fn wait(us: u64) {
    std::thread::sleep(std::time::Duration::from_micros(us));
}

#[test]
fn the_sample_takes_items_from_the_middle_of_the_input() {
    // Expensive items sit in the middle half; the sample must see them. The order in which the
    // calling thread ran items before the rest started tells where the sample took them from.
    let n = 2000usize;
    let first: Mutex<Vec<usize>> = Mutex::new(Vec::new());
    let caller = std::thread::current().id();
    let seen = Arc::new(Mutex::new(None));
    let keep = Arc::clone(&seen);
    let out: Vec<usize> = (0..n)
        .into_par_iter()
        .map(|i| {
            wait(if (n / 4..3 * n / 4).contains(&i) {
                40
            } else {
                10
            });
            if std::thread::current().id() == caller {
                first.lock().unwrap().push(i);
            }
            i * 2
        })
        // Fixed workers: the sample always runs (no glance settles it), the plan is parallel.
        .amorsize_with(Options::new().workers(nz(2)))
        .on_report(move |run| *keep.lock().unwrap() = Some(run.clone()))
        .collect();
    assert_eq!(out, (0..n).map(|i| i * 2).collect::<Vec<_>>());
    let run = seen.lock().unwrap().take().expect("reported");
    let sampled = run.reused_from_sample;
    // The glance alone takes its second item from the middle.
    assert!(sampled >= 2, "{run}");
    let first = first.into_inner().unwrap();
    let taken = &first[..sampled.min(first.len())];
    assert!(
        taken.iter().any(|&i| i >= n / 4 && i < 3 * n / 4),
        "sampled {taken:?}"
    );
    assert!(taken.iter().any(|&i| i >= n / 2), "sampled {taken:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    // Spread samples cut the input into many parts: every item still runs once, in order, and a
    // panic anywhere reaches the caller.
    #[test]
    fn a_spread_sample_runs_every_item_once_in_order(n in 0usize..400, o in options(), at in any::<prop::sample::Index>()) {
        let calls: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
        let out: Vec<String> = (0..n)
            .into_par_iter()
            .map(|i| { wait(20); calls[i].fetch_add(1, Relaxed); i.to_string() })
            .amorsize_with(o.clone())
            .collect();
        prop_assert_eq!(out, (0..n).map(|i| i.to_string()).collect::<Vec<_>>());
        prop_assert!(calls.iter().all(|c| c.load(Relaxed) == 1));
        let total: usize = (0..n).into_par_iter().map(|i| { wait(20); i }).amorsize_with(o.clone()).sum();
        prop_assert_eq!(total, (0..n).sum::<usize>());
        if n > 0 {
            let bad = at.index(n);
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                (0..n).into_par_iter().map(|i| { wait(20); assert!(i != bad, "item {bad}"); i }).amorsize_with(o).count()
            }));
            let payload = caught.expect_err("the panic reaches the caller");
            prop_assert_eq!(payload.downcast_ref::<String>().cloned(), Some(format!("item {bad}")));
        }
    }
}
