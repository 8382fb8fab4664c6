//! Calls too small to repay finding the thread costs run serially until the savings they forgo
//! add up to what finding them costs; then the costs are found and the calls planned with them.
//!
//! One test in a binary of its own: the thread costs are found once per process, and any other
//! test in the same process could find them first.

use amorsize::calibrate::{costs_worth, threads_if_measured};
use amorsize::plan::Reason;
use amorsize::Options;

#[path = "common/work.rs"]
mod work;
use work::spin;

#[test]
fn small_calls_forgo_their_savings_until_they_add_up_to_finding_the_costs() {
    // About 0.3 ms of work (sized by a timing of the item, so that a debug build gets fewer
    // items): it could save about half of that on two cores, well under what finding the
    // costs is taken to cost, even if the timing is off several times.
    let t = std::time::Instant::now();
    (0..200u64).for_each(|x| {
        std::hint::black_box(spin(&x));
    });
    let item = t.elapsed().as_secs_f64() / 200.0;
    let n = ((0.3e-3 / item) as u64).clamp(20, 100_000);
    let items: Vec<u64> = (0..n).collect();
    let want: Vec<u64> = items.iter().map(spin).collect();
    let options = Options::new().name("unmeasured-test");
    assert!(threads_if_measured().is_none());
    // Whether a call could gain at all depends on the load of the moment (a busy machine
    // settles it serial from the bound, which needs no costs), so what is checked is what
    // holds either way: a call that forgoes its savings leaves the costs unknown, the total
    // grows by its savings and stays below the figure; once the costs are known, no call
    // forgoes anything.
    let mut forgone_before = 0.0;
    for call in 0..400 {
        let run = options.run(&items, spin).unwrap();
        assert_eq!(run.results, want);
        let plan = &run.report.plan;
        if let Reason::NotWorthMeasuring {
            gain,
            forgone,
            worth,
            ..
        } = plan.reason()
        {
            assert!(*gain > 0.0 && *forgone < *worth, "{plan}");
            assert_eq!(*worth, costs_worth(), "{plan}");
            assert!(*forgone >= forgone_before + gain * 0.999, "{plan}");
            assert!(!plan.is_parallel());
            assert!(plan.to_string().contains("not worth measuring yet"));
            assert!(threads_if_measured().is_none(), "call {call}");
            forgone_before = *forgone;
        } else if threads_if_measured().is_some() {
            // Found: the calls after it plan as always.
            let run = options.run(&items, spin).unwrap();
            assert_eq!(run.results, want);
            assert!(
                !matches!(run.report.plan.reason(), Reason::NotWorthMeasuring { .. }),
                "{}",
                run.report.plan
            );
            return;
        }
    }
}
