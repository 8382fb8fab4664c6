//! Batch execution: results equal the serial map, in order, every item exactly once; panics
//! and errors reach the caller with the item's index; nesting neither deadlocks nor starts
//! threads.

use amorsize::{ErrorKind, Options, Plan};
use proptest::prelude::*;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

#[path = "common/work.rs"]
mod work;
use work::spin;

fn nz(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap()
}

/// Sizes worth testing: empty, one, two, primes around chunk boundaries, and large.
fn sizes() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        Just(1),
        Just(2),
        prop::sample::select(vec![3usize, 7, 13, 31, 97, 257, 1009]),
        0usize..300,
        Just(20_000),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 48 }))]

    #[test]
    fn fixed_plans_equal_the_serial_map(n in sizes(), workers in 1usize..6, chunk in 1usize..70) {
        let items: Vec<u64> = (0..n as u64).collect();
        let calls = AtomicUsize::new(0);
        let run = Plan::fixed(nz(workers), nz(chunk))
            .run(&items, |x| {
                calls.fetch_add(1, Ordering::Relaxed);
                x.wrapping_mul(2654435761) ^ 7
            })
            .unwrap();
        let expected: Vec<u64> = items.iter().map(|x| x.wrapping_mul(2654435761) ^ 7).collect();
        prop_assert_eq!(run.results, expected);
        prop_assert_eq!(calls.load(Ordering::Relaxed), n);
        prop_assert_eq!(run.report.items, n);
    }

    #[test]
    fn planned_runs_run_each_item_once(n in sizes(), workers in 1usize..5, chunk in proptest::option::of(1usize..50)) {
        let items: Vec<usize> = (0..n).collect();
        let counts: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
        let mut options = Options::new().workers(nz(workers)).threshold(0.0);
        if let Some(c) = chunk {
            options = options.chunk_size(nz(c));
        }
        let out = options
            .execute(&items, |&i| {
                counts[i].fetch_add(1, Ordering::Relaxed);
                i * 3
            })
            .unwrap();
        prop_assert_eq!(out, items.iter().map(|i| i * 3).collect::<Vec<_>>());
        prop_assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
    }

    #[test]
    fn a_panic_names_its_item(n in 1usize..3000, at in any::<prop::sample::Index>(), workers in 1usize..5, chunk in 1usize..64) {
        let bad = at.index(n);
        let items: Vec<usize> = (0..n).collect();
        let err = Plan::fixed(nz(workers), nz(chunk))
            .run(&items, |&i| {
                if i == bad {
                    panic!("bad item {i}");
                }
                i
            })
            .unwrap_err();
        prop_assert_eq!(err.kind(), ErrorKind::Panicked);
        prop_assert_eq!(err.item(), Some(bad));
        let expected = format!("bad item {bad}");
        prop_assert!(err.to_string().contains(&expected));
    }

    #[test]
    fn a_panic_in_an_iterator_names_its_item(n in 1usize..3000, at in 0.0f64..1.0) {
        // Wherever it falls: in the glance, in the sample of the rest, or in the run.
        let bad = ((n as f64 * at) as usize).min(n - 1);
        let err = Options::new()
            .execute_iter(0..n, |&i| {
                assert!(i != bad, "bad item {i}");
                i
            })
            .unwrap_err();
        prop_assert_eq!(err.kind(), ErrorKind::Panicked);
        prop_assert_eq!(err.item(), Some(bad));
        let named = format!("on item {bad}:");
        prop_assert!(err.to_string().contains(&named), "{}", err);
    }

    #[test]
    fn iterators_lose_and_duplicate_nothing(n in sizes(), workers in 1usize..5) {
        let counts: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
        let out = Options::new()
            .workers(nz(workers))
            .threshold(0.0)
            .execute_iter(0..n, |&i| {
                counts[i].fetch_add(1, Ordering::Relaxed);
                i as u64 + 1
            })
            .unwrap();
        prop_assert_eq!(out, (1..=n as u64).collect::<Vec<_>>());
        prop_assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
    }
}

#[test]
fn a_panic_during_sampling_names_its_item() {
    let items: Vec<usize> = (0..100).collect();
    let err = amorsize::execute(&items, |&i| {
        assert!(i != 0, "first item");
        i
    })
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    assert_eq!(err.item(), Some(0));
}

#[test]
fn a_panic_stops_the_other_workers() {
    // Worker 1 panics on the first item; the others would run 10 000 items without a stop.
    let items: Vec<usize> = (0..10_000).collect();
    let ran = AtomicUsize::new(0);
    let err = Plan::fixed(nz(4), nz(1))
        .run(&items, |&i| {
            if i == 0 {
                panic!("stop");
            }
            ran.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(std::time::Duration::from_micros(50));
        })
        .unwrap_err();
    assert_eq!(err.item(), Some(0));
    assert!(ran.load(Ordering::Relaxed) < 10_000);
}

#[derive(Debug)]
struct Odd(usize);

impl std::fmt::Display for Odd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is odd", self.0)
    }
}

impl std::error::Error for Odd {}

#[test]
fn try_execute_stops_at_an_error_and_names_it() {
    let items: Vec<usize> = (0..500).map(|i| i * 2).collect();
    let mut bad = items.clone();
    bad[321] = 7;
    let even = |&x: &usize| if x % 2 == 0 { Ok(x / 2) } else { Err(Odd(x)) };
    let options = Options::new()
        .workers(nz(3))
        .threshold(0.0)
        .chunk_size(nz(16));
    assert_eq!(
        options.try_execute(&items, even).unwrap(),
        (0..500).collect::<Vec<_>>()
    );
    let err = options.try_execute(&bad, even).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ItemFailed);
    assert_eq!(err.item(), Some(321));
    let source = std::error::Error::source(&err).unwrap();
    assert_eq!(source.to_string(), "7 is odd");
}

#[test]
fn errors_collected_per_item_while_the_rest_complete() {
    let items: Vec<usize> = (0..300).collect();
    let out = Options::new()
        .workers(nz(3))
        .threshold(0.0)
        .execute(&items, |&x| if x % 7 == 3 { Err(Odd(x)) } else { Ok(x) })
        .unwrap();
    assert_eq!(out.len(), 300);
    for (i, r) in out.iter().enumerate() {
        assert_eq!(r.is_err(), i % 7 == 3, "item {i}");
    }
}

#[test]
fn progress_counts_every_item_once_and_ends_at_the_total() {
    for workers in [1, 3] {
        let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
        let log = std::sync::Arc::clone(&seen);
        let items: Vec<u32> = (0..1000).collect();
        let out = Options::new()
            .workers(nz(workers))
            .threshold(0.0)
            .chunk_size(nz(10))
            .progress(move |p| log.lock().unwrap().push(*p))
            .execute(&items, |x| x + 1)
            .unwrap();
        assert_eq!(out.len(), 1000);
        let seen = seen.lock().unwrap();
        assert!(!seen.is_empty());
        assert!(seen
            .windows(2)
            .all(|w| w[0].done <= w[1].done && w[0].elapsed <= w[1].elapsed));
        let last = seen.last().unwrap();
        assert_eq!((last.done, last.total), (1000, Some(1000)));
        assert_eq!(last.remaining, Some(std::time::Duration::ZERO));
    }
}

#[test]
fn nested_runs_finish_and_use_the_outer_pool() {
    let outer: Vec<usize> = (0..16).collect();
    let inner: Vec<usize> = (0..200).collect();
    let nested_flags = Mutex::new(Vec::new());
    let sums = Plan::fixed(nz(4), nz(1))
        .run(&outer, |&o| {
            let run = Plan::fixed(nz(8), nz(7)).run(&inner, |&i| i + o).unwrap();
            nested_flags
                .lock()
                .unwrap()
                .push((run.report.nested, run.report.workers));
            run.results.iter().sum::<usize>()
        })
        .unwrap();
    let expected: Vec<usize> = outer
        .iter()
        .map(|o| (0..200).sum::<usize>() + 200 * o)
        .collect();
    assert_eq!(sums.results, expected);
    for (nested, workers) in nested_flags.into_inner().unwrap() {
        assert!(nested);
        // At most the outer pool's size: no thread is started for the inner runs.
        assert!(workers <= 4, "{workers} workers");
    }
}

#[test]
fn nested_inside_rayon_par_iter_finishes() {
    use rayon::prelude::*;
    let total: usize = (0..8usize)
        .into_par_iter()
        .map(|o| {
            let items: Vec<usize> = (0..100).collect();
            Options::new()
                .workers(nz(16))
                .threshold(0.0)
                .execute(&items, |&i| i * o)
                .unwrap()
                .into_iter()
                .sum::<usize>()
        })
        .sum();
    assert_eq!(total, (0..8).map(|o| 4950 * o).sum::<usize>());
}

#[test]
fn the_report_matches_the_run() {
    let items: Vec<u64> = (0..1000).collect();
    let run = Options::new()
        .workers(nz(2))
        .threshold(0.0)
        .run(&items, |x| x + 1)
        .unwrap();
    let r = &run.report;
    assert_eq!(r.items, 1000);
    assert!(r.reused_from_sample > 0);
    assert!(r.chunks >= 1);
    assert!(r.workers >= 1 && r.workers <= 2);
    assert!(r.busy <= r.wall * (r.workers as u32) + std::time::Duration::from_millis(50));
    assert!(r.to_string().contains("ran 1000 items"));
}

#[test]
fn a_panicking_progress_callback_reaches_the_caller_without_a_hang() {
    let items: Vec<u32> = (0..10_000).collect();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Options::new()
            .workers(nz(2))
            .threshold(0.0)
            .chunk_size(nz(10))
            .progress(|p| assert!(p.done < 100, "progress bar broke"))
            .execute(&items, |x| x + 1)
    }));
    assert!(outcome.is_err());
}

#[test]
fn a_serial_decision_is_recalled_by_the_next_calls_and_their_results_are_complete() {
    // A threshold no plan reaches: the first call's sample refuses parallelism; the calls after
    // it settle serial from their glance, unless it finds the items slower (a busy machine),
    // so only some of them are required to.
    let items: Vec<u64> = (0..3000).collect();
    let want: Vec<u64> = items.iter().map(spin).collect();
    let options = Options::new()
        .threshold(1000.0)
        .name("recalled-serial-test");
    let first = options.run(&items, spin).unwrap();
    assert_eq!(first.results, want);
    assert!(!first.report.plan.is_parallel());
    let mut recalled = 0;
    for _ in 0..8 {
        let run = options.run(&items, spin).unwrap();
        assert_eq!(run.results, want);
        if let amorsize::plan::Reason::Recalled { serial, .. } = run.report.plan.reason() {
            recalled += 1;
            assert!(run.report.plan.to_string().contains("not sampled again"));
            // The prediction is the earlier sample's (for the items the glance left), not the
            // glance's few items.
            let plan = &run.report.plan;
            let left = plan.items().expect("a recalled plan knows its items");
            let predicted = plan
                .predicted_serial_time()
                .expect("predicted")
                .as_secs_f64();
            let expected = serial * left as f64 / items.len() as f64;
            assert!(
                (predicted - expected).abs() <= 1e-6 * expected,
                "{predicted} against {expected}\n{plan}"
            );
        }
    }
    assert!(recalled > 0, "no call recalled the serial decision");
}
