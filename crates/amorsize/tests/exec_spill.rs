//! Heavy items never wait for a serial sample: a call on a few items whose first runs past
//! `SPILL_AFTER` starts the others on workers (during the first item once the process's
//! watcher runs, right after it before), with no sample, and makes its plan from what ran.
//!
//! The items sleep 20 ms, twenty times the bound, so that they are heavy on any machine
//! however busy; what is asserted is behaviour (the plan's reason, results, exactly once, the
//! error and its item, no item running after the call returns), never a timing. On a machine
//! with a single usable core nothing spills, and the tests say so and return.

use amorsize::plan::Reason;
use amorsize::{ErrorKind, Options};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const HEAVY: Duration = Duration::from_millis(20);

fn single_core() -> bool {
    if amorsize::probe::cores_bound() < 2 {
        eprintln!("one usable core: nothing to spill onto, skipped");
        return true;
    }
    false
}

fn spilled(reason: &Reason) -> bool {
    matches!(reason, Reason::Spilled { .. })
}

#[test]
fn few_heavy_items_start_on_workers_without_a_sample_and_run_once() {
    if single_core() {
        return;
    }
    let items: Vec<usize> = (0..3).collect();
    let runs: Vec<AtomicUsize> = items.iter().map(|_| AtomicUsize::new(0)).collect();
    // The first call may find no watcher yet (the others then start right after the first
    // item); the later ones find it, started by the first.
    for call in 1..=3 {
        let run = Options::new()
            .run(&items, |&i| {
                runs[i].fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(HEAVY);
                i * 10
            })
            .expect("runs");
        assert_eq!(run.results, vec![0, 10, 20]);
        let plan = &run.report.plan;
        assert!(spilled(plan.reason()), "call {call}: {plan}");
        assert!(plan.is_parallel() && plan.sample().is_none(), "{plan}");
        // No serial rate was measured, so no speedup is claimed.
        assert_eq!(run.report.measured_speedup(), None);
        assert_eq!(run.report.items, 3);
        for (i, n) in runs.iter().enumerate() {
            assert_eq!(n.load(Ordering::SeqCst), call, "item {i} after call {call}");
        }
    }
}

#[test]
fn light_items_go_on_to_the_glance_as_before() {
    let items: Vec<u64> = (0..5).collect();
    let run = Options::new().run(&items, |x| x + 1).expect("runs");
    assert_eq!(run.results, vec![1, 2, 3, 4, 5]);
    assert!(!spilled(run.report.plan.reason()), "{}", run.report.plan);
}

#[test]
fn a_panic_names_its_item_and_no_item_runs_after_the_call_returns() {
    if single_core() {
        return;
    }
    for bad in [0usize, 2] {
        let inside = AtomicUsize::new(0);
        let items: Vec<usize> = (0..4).collect();
        let err = amorsize::execute(&items, |&i| {
            inside.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(HEAVY);
            inside.fetch_sub(1, Ordering::SeqCst);
            assert!(i != bad, "item {i} is bad");
            i
        })
        .expect_err("an item panicked");
        assert_eq!(err.kind(), ErrorKind::Panicked);
        assert_eq!(err.item(), Some(bad), "{err}");
        // Every worker has left its item before the call returned.
        assert_eq!(inside.load(Ordering::SeqCst), 0);
    }
}

#[test]
fn try_execute_stops_at_the_first_failing_item() {
    if single_core() {
        return;
    }
    let items: Vec<u32> = (0..3).collect();
    let err = amorsize::try_execute(&items, |&i| {
        std::thread::sleep(HEAVY);
        if i == 1 {
            "x".parse::<u32>()
        } else {
            Ok(i)
        }
    })
    .expect_err("item 1 fails");
    assert_eq!(err.kind(), ErrorKind::ItemFailed);
    assert_eq!(err.item(), Some(1), "{err}");
    let ok = amorsize::try_execute(&items, |&i| {
        std::thread::sleep(HEAVY);
        Ok::<u32, std::num::ParseIntError>(i + 1)
    })
    .expect("no item fails");
    assert_eq!(ok, vec![1, 2, 3]);
}
