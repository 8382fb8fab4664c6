//! Memory as a limit on worker processes, driven by a stand-in worker that allocates a known
//! amount: its reported peak RSS is at least that amount, and it caps the workers. This test
//! binary is its own worker (see tests/process.rs), hence `harness = false`.

use amorsize::exec::process::{self, ProcessOptions};
use amorsize::model::{workers_within_memory, Backend, Costs, MemorySource, Workload};
use amorsize::plan::{decide, Caps, LimitKind};
use amorsize::{Options, Plan};
use std::num::NonZeroUsize;

const MIB: u64 = 1 << 20;

/// What the stand-in holds at once, in MiB: far above a worker's own few MiB.
const HELD_MIB: u64 = 64;

/// Holds `mib` MiB, every page written (so resident), then returns a checksum of it.
fn holds(mib: &u64) -> u64 {
    let block = vec![1u8; (*mib * MIB) as usize];
    std::hint::black_box(&block)
        .iter()
        .step_by(4096)
        .map(|&b| u64::from(b))
        .sum()
}

fn a_worker_reports_a_peak_at_least_what_it_held() {
    let f = process::register("holds", holds);
    let plan = Plan::fixed(NonZeroUsize::MIN, NonZeroUsize::MIN);
    let outcome = process::run(f, &[HELD_MIB, 1], &plan, &ProcessOptions::new()).unwrap();
    let peak = outcome
        .stats()
        .peak_worker_rss
        .expect("the workers report their peak");
    assert!(
        peak >= HELD_MIB * MIB,
        "peak {peak} below the {HELD_MIB} MiB held"
    );
    eprintln!(
        "  a worker holding {HELD_MIB} MiB peaked at {:.1} MiB",
        peak as f64 / MIB as f64
    );
    assert_eq!(
        outcome.into_results().unwrap(),
        [HELD_MIB * MIB / 4096, MIB / 4096]
    );
    assert!(process::measured_peak_rss("holds").unwrap() >= peak);
}

fn the_measured_peak_caps_the_workers() {
    let peak = process::measured_peak_rss("holds").expect("measured by the test before");
    // Room for three of them in all, less the headroom: two workers.
    let available = 3 * peak;
    let caps = Caps {
        available_memory: Some(available),
        ..Caps::cores(64, "test")
    };
    let workload = Workload {
        worker_memory: peak,
        memory_source: MemorySource::WorkerPeak,
        ..Workload::new(10_000, 10e-3)
    };
    let plan = decide(
        &workload,
        &Costs::zero(Backend::Processes),
        &caps,
        &Options::new(),
    );
    let binding = plan.binding_limit().expect("a binding limit");
    assert_eq!(binding.kind, LimitKind::Memory, "{plan}");
    assert_eq!(
        Some(binding.workers),
        workers_within_memory(available, peak)
    );
    assert_eq!(binding.workers, 2);
    assert_eq!(plan.workers().get(), 2, "{plan}");
    let text = plan.to_string();
    assert!(text.contains("memory caps the workers at 2"), "{text}");
    assert!(
        text.contains("peak RSS of this function's worker processes"),
        "{text}"
    );
}

fn execute_plans_with_the_measured_peak() {
    let f = process::register("holds", holds);
    let items: Vec<u64> = vec![0; 200];
    let outcome = process::execute(f, &items, &Options::new(), &ProcessOptions::new()).unwrap();
    let w = outcome
        .plan()
        .workload()
        .expect("a sampled plan has its workload");
    assert_eq!(w.memory_source, MemorySource::WorkerPeak);
    assert!(w.worker_memory >= HELD_MIB * MIB, "{}", outcome.plan());
    if amorsize::probe::machine().available_memory().is_some() {
        assert!(
            outcome
                .plan()
                .limits()
                .iter()
                .any(|l| l.kind == LimitKind::Memory),
            "{}",
            outcome.plan()
        );
    }
}

fn the_calibration_measures_an_idle_worker() {
    let calibration = process::calibration().unwrap();
    let idle = calibration.worker_rss.expect("an idle worker's peak");
    assert!(idle > 0);
    eprintln!(
        "  an idle worker peaked at {:.1} MiB",
        idle as f64 / MIB as f64
    );
    if let Some(peak) = process::measured_peak_rss("holds") {
        assert!(idle < peak, "idle {idle}, holding {peak}");
    }
}

/// A result of 4 KiB, filled with the input's low byte.
fn block(i: &u32) -> Vec<u8> {
    vec![*i as u8; 4096]
}

/// Bytes a stream may hold for its reader in the budget test: eight results or so.
const STREAM_BUDGET: u64 = 32 << 10;

fn a_stream_holds_its_results_within_the_budget() {
    let f = process::register("block", block);
    let plan = Plan::fixed(NonZeroUsize::new(2).unwrap(), NonZeroUsize::new(2).unwrap());
    let options = ProcessOptions::new().memory_budget(STREAM_BUDGET);
    let mut running = process::start(f, (0..200).collect(), &plan, &options);
    let mut seen = [false; 200];
    for pair in running.by_ref() {
        let (i, result) = pair.unwrap();
        assert!(!seen[i], "item {i} twice");
        seen[i] = true;
        assert_eq!(result, vec![i as u8; 4096]);
        // A reader slower than the workers: without the budget, results would pile up.
        std::thread::sleep(std::time::Duration::from_micros(500));
    }
    assert!(seen.iter().all(|&s| s), "every item once");
    let held = running
        .stats()
        .and_then(|s| s.peak_held_bytes)
        .expect("a budgeted run reports what it held");
    // A chunk's two results pass alone whatever the budget; otherwise the budget holds.
    assert!(held > 0 && held <= STREAM_BUDGET, "held {held} bytes");
    eprintln!("  a reader 0.5 ms per 4 KiB result held at most {held} bytes of {STREAM_BUDGET}");
    let mut unbounded = process::start(f, (0..10).collect(), &plan, &ProcessOptions::new());
    assert_eq!(unbounded.by_ref().count(), 10);
    assert_eq!(unbounded.stats().and_then(|s| s.peak_held_bytes), None);
}

fn dropping_a_budgeted_stream_while_its_workers_wait_ends_it() {
    let f = process::register("block", block);
    let plan = Plan::fixed(NonZeroUsize::new(2).unwrap(), NonZeroUsize::MIN);
    // A budget of one result: the workers wait as soon as the reader holds one.
    let options = ProcessOptions::new().memory_budget(1);
    let mut running = process::start(f, (0..1000).collect(), &plan, &options);
    assert!(running.next().unwrap().is_ok());
    drop(running); // returns: the waiting threads are let go, the workers stopped
}

fn main() {
    process::register("holds", holds);
    process::register("block", block);
    process::init();
    // In order: each test after the first uses what the first measured.
    let tests: &[(&str, fn())] = &[
        (
            "a_worker_reports_a_peak_at_least_what_it_held",
            a_worker_reports_a_peak_at_least_what_it_held,
        ),
        (
            "the_measured_peak_caps_the_workers",
            the_measured_peak_caps_the_workers,
        ),
        (
            "execute_plans_with_the_measured_peak",
            execute_plans_with_the_measured_peak,
        ),
        (
            "the_calibration_measures_an_idle_worker",
            the_calibration_measures_an_idle_worker,
        ),
        (
            "a_stream_holds_its_results_within_the_budget",
            a_stream_holds_its_results_within_the_budget,
        ),
        (
            "dropping_a_budgeted_stream_while_its_workers_wait_ends_it",
            dropping_a_budgeted_stream_while_its_workers_wait_ends_it,
        ),
    ];
    let mut failed = Vec::new();
    for (name, test) in tests {
        match std::panic::catch_unwind(test) {
            Ok(()) => eprintln!("test {name} ... ok"),
            Err(_) => {
                eprintln!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    process::shutdown();
    eprintln!(
        "\n{} passed; {} failed",
        tests.len() - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        std::process::exit(1);
    }
}
