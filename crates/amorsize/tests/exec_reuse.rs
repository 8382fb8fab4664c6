//! A parallel plan reused by the next calls of the same workload, on slices and iterators.
//!
//! One test in a binary of its own: the plan of waiting items depends on the process's CPU
//! time beside the sampling thread's (threads of the function's own), which other tests
//! running at the same time in the same process would add to.

use amorsize::Options;

fn wait(x: &u64) -> u64 {
    std::thread::sleep(std::time::Duration::from_millis(2));
    x * 3
}

#[test]
fn a_parallel_plan_is_reused_by_the_next_calls_and_their_results_are_complete() {
    // Waiting items plan parallel on any number of cores. The calls after the first reuse its
    // plan unless a run strays far from the prediction (a busy machine), so only some of them
    // are required to.
    let items: Vec<u64> = (0..48).collect();
    let want: Vec<u64> = items.iter().map(wait).collect();
    let options = Options::new().name("reused-parallel-test");
    let first = options.run(&items, wait).unwrap();
    assert_eq!(first.results, want);
    assert!(first.report.plan.is_parallel(), "{}", first.report.plan);
    assert!(first.report.plan.reuse().is_none());
    let mut reused = 0;
    for _ in 0..6 {
        let run = options.run(&items, wait).unwrap();
        assert_eq!(run.results, want);
        if let Some(reuse) = run.report.plan.reuse() {
            reused += 1;
            assert!(reuse.call >= 1);
            assert_eq!(
                run.report.reused_from_sample, 0,
                "a reused plan samples nothing"
            );
            assert!(run.report.plan.is_parallel());
            assert!(run.report.plan.to_string().contains("not sampled again"));
        }
    }
    assert!(reused > 0, "no call reused the parallel plan");
    // Four times the items: planned afresh.
    let more: Vec<u64> = (0..192).collect();
    let run = options.run(&more, wait).unwrap();
    assert_eq!(run.results.len(), more.len());
    assert!(run.report.plan.reuse().is_none());

    // An iterator's items after its glance reuse a plan the same way.
    let options = Options::new().name("reused-parallel-iterator-test");
    let first = options.run_iter(0..48u64, wait).unwrap();
    assert_eq!(first.results, want);
    assert!(first.report.plan.is_parallel(), "{}", first.report.plan);
    let mut reused = 0;
    for _ in 0..6 {
        let run = options.run_iter(0..48u64, wait).unwrap();
        assert_eq!(run.results, want);
        if run.report.plan.reuse().is_some() {
            reused += 1;
            // Only the glance's items ran before the plan.
            assert!(run.report.reused_from_sample <= amorsize::plan::GLANCE_ITEMS);
        }
    }
    assert!(
        reused > 0,
        "no call of the iterator reused the parallel plan"
    );

    // A workload whose items change under the same name: the call after the change reuses the
    // plan, its run strays from the plan's first run, and the next call plans afresh. The items
    // turn 20 times slower (sleeps, so that a busy machine cannot hide it: waking the workers
    // costs what it costs in both runs, and the sleeps dominate the second).
    let options = Options::new().name("reused-parallel-shape-change-test");
    let first = options.run(&items, wait).unwrap();
    assert!(first.report.plan.is_parallel(), "{}", first.report.plan);
    let slower = |x: &u64| {
        std::thread::sleep(std::time::Duration::from_millis(40));
        x * 3
    };
    let changed = options.run(&items, slower).unwrap();
    assert_eq!(changed.results, want);
    assert!(
        changed.report.plan.reuse().is_some(),
        "{}",
        changed.report.plan
    );
    let after = options.run(&items, slower).unwrap();
    assert_eq!(after.results, want);
    assert!(after.report.plan.reuse().is_none(), "{}", after.report.plan);
}
