//! The closed loop: a parallel run whose workers turn out slower together than the serial loop
//! (their work holds one shared lock) sheds them and ends on one worker; the
//! report says so with the measured figures; every item still runs exactly once.
//!
//! The behaviour is asserted, not the timings: a lock taken and released several times per
//! item by two threads at once costs each of them far more than the serial loop pays for it
//! (a futex wait and wake-up against a few ns), so the two workers together run below the
//! serial rate on any machine where they run at the same time. On a machine with a single CPU
//! they cannot, and the tests say so and return.

use amorsize::Options;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The tests take turns: each one's sample must measure its own work, not the other's load.
static TURN: Mutex<()> = Mutex::new(());

/// One lock per test, so that the tests of this binary, which run at the same time, do not
/// contend with each other's items (their samples would then measure the other test's load).
static BATCH_LOCK: Mutex<u64> = Mutex::new(0);
static STREAM_LOCK: Mutex<u64> = Mutex::new(0);
static TRIAL_LOCK: Mutex<u64> = Mutex::new(0);

/// An item whose work holds `lock` 32 times.
fn contended(lock: &Mutex<u64>, x: &u64) -> u64 {
    let mut acc = *x;
    for _ in 0..32 {
        let mut shared = lock.lock().unwrap_or_else(|e| e.into_inner());
        *shared = shared.wrapping_add(acc);
        acc = acc.rotate_left(5) ^ *shared;
    }
    acc & 0xff
}

/// Whether the back-off after `report`'s first shed outlasts a call of `items` items: the
/// serial time it spans ([`amorsize::model::shed::backoff_span`]) less the shed call's own,
/// against the next call's (at the shed plan's serial time per item).
fn backs_off_for(report: &amorsize::report::RunReport, items: usize) -> bool {
    let first = &report.sheds[0];
    let lost = first.at.as_secs_f64() * (1.0 - first.measured_speedup);
    let span = amorsize::model::shed::backoff_span(lost, None).unwrap();
    let plan = &report.plan;
    let shed_call = plan.predicted_serial_time().unwrap().as_secs_f64();
    let per_item = shed_call / plan.items().unwrap() as f64;
    span - shed_call > per_item * items as f64
}

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

fn two_cpus() -> bool {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    if n < 2 {
        eprintln!("one CPU: two workers never run at the same time; nothing to check");
    }
    n >= 2
}

/// Two workers whatever the sample says, so that the run starts parallel on any machine.
fn two_workers() -> Options {
    Options::new()
        .workers(NonZeroUsize::new(2).unwrap())
        .threshold(0.0)
        .name("closed-loop-contended")
}

#[test]
fn a_batch_whose_workers_contend_sheds_them_and_ends_on_one_worker() {
    let _turn = turn();
    if !two_cpus() {
        return;
    }
    let items: Vec<u64> = (0..20_000).collect();
    // A machine so busy that the two workers seldom run at once sees no contention, and
    // rightly keeps them: a few tries, and the checks below apply to a run that measured it.
    let mut shed = None;
    for attempt in 0..3 {
        // A name per attempt: an attempt that kept its workers but ran slower than the loop
        // as a whole backs off too, and would lengthen the back-off checked below.
        let name = format!("closed-loop-contended-{attempt}");
        let calls = AtomicUsize::new(0);
        let run = two_workers()
            .name(name.clone())
            .run(&items, |x| {
                calls.fetch_add(1, Ordering::Relaxed);
                contended(&BATCH_LOCK, x)
            })
            .unwrap();
        let report = &run.report;
        assert!(report.plan.is_parallel(), "{}", report.plan);
        // Exactly once: the sample's items included, none twice.
        assert_eq!(calls.load(Ordering::Relaxed), items.len());
        assert_eq!(run.results.len(), items.len());
        // The results are the serial loop's... for a function whose result depends on the
        // shared state, each result's range is what can be checked.
        assert!(run.results.iter().all(|r| *r <= 0xff));
        if report.sheds.is_empty() {
            // Kept: then it measured within the sample's doubt (`exec::check::MAX_DOUBT`).
            assert!(
                report.measured_speedup().is_some_and(|s| s >= 0.75),
                "no shed:\n{report}"
            );
        } else {
            shed = Some((run, name));
            break;
        }
    }
    let Some((run, name)) = shed else {
        eprintln!("the workers never contended (a busy machine): nothing more to check");
        return;
    };
    let report = &run.report;
    let last = report.sheds.last().expect("a shed");
    assert_eq!(last.to, 1, "{report}");
    assert!(last.measured_speedup < 1.0, "{report}");
    assert_eq!(report.phases.last().map(|p| p.workers), Some(1), "{report}");
    let ran: usize = report.phases.iter().map(|p| p.items).sum();
    assert_eq!(ran, report.ran(), "{report}");
    let text = report.to_string();
    assert!(text.contains("went on with one worker"), "{text}");
    // The parallel phase's own speedup is reported; its first window, a warm-up that is not
    // judged, may have run faster than the window that shed.
    assert!(report.parallel_speedup().is_some(), "{text}");

    // What the run measured is used at once: the next calls run serially, saying why, with
    // no sample; after the back-off one call tries parallel again. The back-off is counted in
    // serial time (what the shed lost ÷ 5 %, a few times this run's): calls a tenth of its
    // size back off for several calls.
    let options = Options::new().name(name);
    let smaller: Vec<u64> = (0..2_000).collect();
    let mut serial_calls = 0;
    let retried = loop {
        let again = options
            .run(&smaller, |x| contended(&BATCH_LOCK, x))
            .unwrap();
        let plan = &again.report.plan;
        if !matches!(plan.reason(), amorsize::plan::Reason::MeasuredSlower { .. }) {
            break true;
        }
        assert!(!plan.is_parallel(), "{plan}");
        assert_eq!(again.report.reused_from_sample, 0, "nothing sampled");
        assert!(
            plan.to_string().contains("measured slower in parallel"),
            "{plan}"
        );
        serial_calls += 1;
        if serial_calls > 256 {
            break false;
        }
    };
    if backs_off_for(report, smaller.len()) {
        assert!(serial_calls >= 1, "the next call planned afresh:\n{report}");
    } else {
        // The shed lost too little against the calls to come: the next one tries again.
        assert_eq!(serial_calls, 0, "{report}");
    }
    assert!(retried, "parallel never tried again");
}

#[test]
fn a_sample_slower_than_the_loop_does_not_hide_workers_that_contend() {
    let _turn = turn();
    if !two_cpus() {
        return;
    }
    // The first calls (those the sample times) are slow, as cold items can be; the others
    // contend on a lock. Against the sample, two contending workers look faster than serial;
    // against worker 0 alone on the run's own items, they are not.
    let items: Vec<u64> = (0..200_000).collect();
    // As in the batch case, a machine so busy that the two workers seldom run at once sees no
    // contention: a few tries, and the checks below apply to a run that shed.
    let mut shed = None;
    for attempt in 0..3 {
        let calls = AtomicUsize::new(0);
        let run = two_workers()
            .name(format!("closed-loop-trial-{attempt}"))
            .run(&items, |x| {
                if calls.fetch_add(1, Ordering::Relaxed) < 64 {
                    let start = std::time::Instant::now();
                    while start.elapsed() < std::time::Duration::from_micros(50) {
                        std::hint::spin_loop();
                    }
                }
                contended(&TRIAL_LOCK, x)
            })
            .unwrap();
        assert_eq!(calls.load(Ordering::Relaxed), items.len(), "exactly once");
        assert_eq!(run.results.len(), items.len());
        if !run.report.sheds.is_empty() {
            shed = Some(run);
            break;
        }
    }
    let Some(run) = shed else {
        eprintln!("the workers never contended (a busy machine): nothing more to check");
        return;
    };
    let report = &run.report;
    let last = report.sheds.last().expect("a shed");
    assert_eq!(last.to, 1, "{report}");
    assert!(last.measured_speedup < 1.0, "{report}");
    // The trial is a phase of its own on one worker, before the shed.
    assert!(
        report.phases.iter().filter(|p| p.workers == 1).count() >= 2,
        "{report}"
    );
    let ran: usize = report.phases.iter().map(|p| p.items).sum();
    assert_eq!(ran, report.ran(), "{report}");
}

#[test]
fn a_stream_whose_workers_contend_goes_on_serially() {
    let _turn = turn();
    if !two_cpus() {
        return;
    }
    let n = 200_000u64;
    let mut stream = two_workers().stream(0..n, |x| contended(&STREAM_LOCK, x));
    let mut taken = 0u64;
    for r in stream.by_ref() {
        assert!(r <= 0xff);
        taken += 1;
    }
    assert_eq!(taken, n);
    let report = stream.report().expect("finished");
    // A run is compared with the slowest serial rate the sample allows (up to a quarter
    // slower, `exec::check::MAX_DOUBT`): a run whose lock contended only mildly may keep its
    // workers, and then it measured within that doubt.
    let Some(last) = report.sheds.last() else {
        assert!(
            report.measured_speedup().is_some_and(|s| s >= 0.75),
            "no shed:\n{report}"
        );
        return;
    };
    assert_eq!(last.to, 1, "{report}");
    assert_eq!(report.phases.last().map(|p| p.workers), Some(1), "{report}");
    let ran: usize = report.phases.iter().map(|p| p.items).sum();
    assert_eq!(ran, report.ran(), "{report}");
}

#[test]
fn work_that_pays_keeps_its_workers() {
    let _turn = turn();
    if !two_cpus() {
        return;
    }
    // Independent items of about 20 µs: nothing shared, two workers pay wherever they both run.
    // A machine too busy to give the second one a core may still shed it, which is right; so
    // only what must hold is checked: a shed happened only below the serial rate.
    let items: Vec<u64> = (0..2_000).collect();
    let run = two_workers()
        .run(&items, |x| {
            let mut acc = *x;
            for i in 0..20_000u64 {
                acc = acc.wrapping_mul(6364136223846793005).wrapping_add(i);
            }
            std::hint::black_box(acc)
        })
        .unwrap();
    for shed in &run.report.sheds {
        assert!(shed.measured_speedup < 1.0, "{}", run.report);
    }
}

/// Busy for about `micros` µs of wall time (the same in a debug build as in a release one).
fn busy_for(micros: u64, seed: u64) -> u64 {
    let start = std::time::Instant::now();
    let mut acc = seed;
    while start.elapsed() < std::time::Duration::from_micros(micros) {
        for i in 0..64u64 {
            acc = acc.wrapping_mul(6364136223846793005).wrapping_add(i);
        }
    }
    std::hint::black_box(acc) & 1
}

#[test]
fn items_costlier_than_the_sample_are_timed_alone_before_any_shed() {
    let _turn = turn();
    if !two_cpus() {
        return;
    }
    // One item in twenty costs 100× the others, but none of those the sample runs (the first
    // calls of the function): two workers' throughput reads as a third of the sample's serial
    // rate. The run must measure the serial rate on its own
    // items (worker 0 alone, the others paused) before it sheds anything, and a shed is then
    // against that rate; the report says which rate the speedup is against.
    let items: Vec<u64> = (0..4_000).collect();
    let calls = AtomicUsize::new(0);
    let run = two_workers()
        .name("closed-loop-costly-unsampled")
        .disk_cache(false)
        .run(&items, |x| {
            let call = calls.fetch_add(1, Ordering::Relaxed);
            let micros = if call >= 400 && call % 20 == 19 {
                400
            } else {
                4
            };
            busy_for(micros, *x)
        })
        .unwrap();
    let report = &run.report;
    assert_eq!(calls.load(Ordering::Relaxed), items.len(), "{report}");
    let sampled = report.plan.sample().map_or(0, |s| s.count);
    assert!(sampled < 400, "the sample ran no costly item: {report}");
    if !report.sheds.is_empty() {
        assert!(
            report.serial_alone.is_some(),
            "shed on the sample's rate alone:\n{report}"
        );
    }
    if let Some(alone) = &report.serial_alone {
        assert_eq!(report.serial_rate().map(|(_, n)| n), Some(alone.items));
        assert!(
            report.to_string().contains("own items on one worker"),
            "{report}"
        );
    }
}

/// About `ms` milliseconds of integer work.
fn heavy(ms: u64) -> impl Fn(&u64) -> u64 + Sync {
    move |x| busy_for(ms * 1000, *x)
}

#[test]
fn heavy_items_never_wait_for_a_serial_sample() {
    let _turn = turn();
    let items: Vec<u64> = (0..3).collect();
    let calls = AtomicUsize::new(0);
    let f = heavy(5);
    let options = Options::new().name("closed-loop-heavy");
    for call in 0..3 {
        let run = options
            .run(&items, |x| {
                calls.fetch_add(1, Ordering::Relaxed);
                f(x)
            })
            .unwrap();
        let report = &run.report;
        assert_eq!(run.results.len(), 3);
        // One item is enough to see that each is worth many wake-ups: the other two go to
        // the planner at once, sampled no further (a reused plan samples nothing).
        assert!(report.reused_from_sample <= 1, "call {call}: {report}");
        // A serial decision is recalled only from a sample that left at least as many items
        // as it ran (`plan::recall::note_plan`): with one item sampled of three, its figures
        // hold for the next call's input too (the plan may be serial on a loaded machine).
        if let amorsize::plan::Reason::Recalled { .. } = report.plan.reason() {
            assert_eq!(report.reused_from_sample, 1, "call {call}: {report}");
        }
    }
    assert_eq!(
        calls.load(Ordering::Relaxed),
        9,
        "every item exactly once per call"
    );
}

static PIPELINE_LOCK: Mutex<u64> = Mutex::new(0);

/// A rayon pipeline ending in `.amorsize()` over `items` whose work contends; its report.
fn contended_pipeline(
    items: &[u64],
    options: Options,
    calls: &AtomicUsize,
) -> amorsize::report::RunReport {
    use amorsize::prelude::*;
    use rayon::prelude::*;
    let seen = std::sync::Arc::new(Mutex::new(None));
    let keep = std::sync::Arc::clone(&seen);
    let n = items
        .par_iter()
        .map(|x| {
            calls.fetch_add(1, Ordering::Relaxed);
            contended(&PIPELINE_LOCK, x)
        })
        .amorsize_with(options)
        .on_report(move |run| *keep.lock().unwrap() = Some(run.clone()))
        .filter(|r| *r <= 0xff)
        .count();
    assert_eq!(n, items.len());
    let report = seen.lock().unwrap().take().expect("reported");
    report
}

#[test]
fn a_pipeline_whose_workers_contend_sheds_them_while_it_runs_and_the_next_drives_run_serially() {
    let _turn = turn();
    if !two_cpus() {
        return;
    }
    let items: Vec<u64> = (0..20_000).collect();
    // Fifty sampled items at least: a pipeline's first item (cold caches, a first lock) can
    // take tens of times the others, and a sample of three would then excuse any slowdown.
    let bounds = amorsize::sample::SampleBounds::default().items(50, 1000);
    let options = two_workers()
        .name("pipeline-contended")
        .sample_bounds(bounds);
    // A machine so busy that the two workers seldom run at once sees no contention, and
    // rightly keeps them: a few tries, and the check below applies to a run that measured it.
    let mut report = None;
    for _ in 0..3 {
        let calls = AtomicUsize::new(0);
        let run = contended_pipeline(&items, options.clone(), &calls);
        assert!(run.plan.is_parallel(), "{}", run.plan);
        assert_eq!(calls.load(Ordering::Relaxed), items.len());
        let ran: usize = run.phases.iter().map(|p| p.items).sum();
        assert_eq!(ran, run.ran(), "{run}");
        // Below the serial rate beyond the sample's doubt (a quarter at most), a run sheds.
        if run.parallel_speedup().is_some_and(|s| s < 0.75) {
            assert!(!run.sheds.is_empty(), "no shed:\n{run}");
        }
        if run.sheds.last().is_some_and(|s| s.to == 1) {
            report = Some(run);
            break;
        }
    }
    let Some(report) = report else {
        eprintln!("the workers never contended (a busy machine): nothing to check");
        return;
    };
    let last = report.sheds.last().expect("a shed");
    assert!(last.measured_speedup < 1.0, "{report}");
    assert_eq!(report.phases.last().map(|p| p.workers), Some(1), "{report}");
    // As for `execute`: the next drives of the pipeline run serially for a back-off, with
    // no sample, saying why (drives a tenth of the size: the back-off spans a few times the
    // shed drive's serial time).
    let calls = AtomicUsize::new(0);
    let again = contended_pipeline(
        &items[..2_000],
        Options::new().name("pipeline-contended"),
        &calls,
    );
    let plan = &again.plan;
    if !backs_off_for(&report, 2_000) {
        // The shed lost too little against the drives to come: the next one tries again.
        assert!(
            !matches!(plan.reason(), amorsize::plan::Reason::MeasuredSlower { .. }),
            "{plan}"
        );
        return;
    }
    assert!(
        matches!(plan.reason(), amorsize::plan::Reason::MeasuredSlower { .. }),
        "{plan}"
    );
    assert!(!plan.is_parallel(), "{plan}");
    assert_eq!(again.reused_from_sample, 0, "nothing sampled");
}

static SHORT_LOCK: Mutex<u64> = Mutex::new(0);

#[test]
fn a_run_too_short_to_shed_while_running_is_judged_when_it_ends() {
    let _turn = turn();
    if !two_cpus() {
        return;
    }
    // 300 contended items: well under the closed loop's first window, so nothing sheds while
    // the run lasts; two runs in a row that measured slower than the loop (below 0.7 of the
    // sample's rate: at most 0.875 past the sample's doubt, `MAX_DOUBT`), or one far slower
    // (below 0.4: under `CONFIRM_ABOVE` past the doubt), make the next calls serial for a
    // back-off, saying why (one a little slower may be an outlier). The back-off spans 20×
    // what the run lost (at least 2.5× its wall time) less the run's own serial time (under
    // 0.7× its wall time): it outlasts a next call of a tenth of the items (about 0.07× the
    // wall time), though not always one as long as the run, which may then plan afresh.
    let items: Vec<u64> = (0..300).collect();
    let name = "closed-loop-short";
    let forced = Options::new()
        .workers(NonZeroUsize::new(2).unwrap())
        .threshold(0.0)
        .name(name);
    let mut slow_in_a_row = 0;
    for _ in 0..12 {
        let run = forced.run(&items, |x| contended(&SHORT_LOCK, x)).unwrap();
        let report = &run.report;
        let slower = report.measured_speedup().is_some_and(|s| s < 0.7);
        if !report.sheds.is_empty() || !slower {
            // A run that paid clears a first slow one (one within the sample's doubt may or
            // may not have counted as slow: the count starts again either way).
            slow_in_a_row = 0;
            continue;
        }
        slow_in_a_row += 1;
        let far = report.measured_speedup().is_some_and(|s| s < 0.4);
        if slow_in_a_row < 2 && !far {
            continue;
        }
        let next = Options::new()
            .name(name)
            .run(&items[..30], |x| contended(&SHORT_LOCK, x))
            .unwrap();
        let plan = &next.report.plan;
        assert!(
            matches!(plan.reason(), amorsize::plan::Reason::MeasuredSlower { .. }),
            "after:\n{report}\nthe next plan:\n{plan}"
        );
        assert!(!plan.is_parallel(), "{plan}");
        return;
    }
    eprintln!("no short run measured slower than the loop (a busy machine): nothing to check");
}
