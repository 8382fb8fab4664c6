//! The process backend, with this test binary as the worker (the `current_exe()` pattern):
//! `main` registers the functions and calls `init` before anything else, so a copy started
//! as a worker serves chunks instead of running the tests. Hence `harness = false`.

use amorsize::exec::process::{self, Function, Pool, ProcessOptions};
use amorsize::model::Backend;
use amorsize::plan::Reason;
use amorsize::{ErrorKind, Options, Plan};
use serde::{Deserialize, Serialize};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The item every failing function fails on.
const BAD: u64 = 13;

fn square(x: &u64) -> u64 {
    x * x
}

fn aborts(x: &u64) -> u64 {
    if *x == BAD {
        std::process::abort();
    }
    square(x)
}

fn segfaults(x: &u64) -> u64 {
    if *x == BAD {
        raise(libc::SIGSEGV);
    }
    square(x)
}

fn gets_killed(x: &u64) -> u64 {
    if *x == BAD {
        // Windows has no SIGKILL; this binary runs no test there (see `main`).
        #[cfg(unix)]
        raise(libc::SIGKILL);
        #[cfg(not(unix))]
        std::process::abort();
    }
    square(x)
}

fn panics(x: &u64) -> u64 {
    assert!(*x != BAD, "no thirteen here");
    square(x)
}

fn hangs(x: &u64) -> u64 {
    if *x == BAD {
        std::thread::sleep(Duration::from_secs(3600));
    }
    square(x)
}

/// Crashes the first time it meets `BAD` (a marker file remembers across processes).
fn crashes_once(item: &(u64, PathBuf)) -> u64 {
    if item.0 == BAD && std::fs::metadata(&item.1).is_err() {
        std::fs::write(&item.1, b"crashed").unwrap();
        std::process::abort();
    }
    square(&item.0)
}

/// Sends `signal` to this process with its default action, as a crash in foreign code would:
/// Rust's runtime handles SIGSEGV itself (to report stack overflows) and returns from a raised
/// one, so the default action is restored first.
fn raise(signal: i32) {
    // SAFETY: `signal` and `raise` take plain integers; restoring the default action of a
    // signal and sending it to this process touch no memory of ours.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
}

/// A value whose serialization fails when it holds `BAD`.
#[derive(Debug, Clone, PartialEq)]
struct Picky(u64);

impl Serialize for Picky {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 == BAD {
            return Err(serde::ser::Error::custom("thirteen cannot be written"));
        }
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Picky {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u64::deserialize(d)?;
        if v == BAD + 1 {
            return Err(serde::de::Error::custom("fourteen cannot be read"));
        }
        Ok(Picky(v))
    }
}

fn picky_identity(x: &Picky) -> u64 {
    x.0
}

fn picky_result(x: &u64) -> Picky {
    Picky(*x)
}

struct Functions {
    square: Function<u64, u64>,
    aborts: Function<u64, u64>,
    segfaults: Function<u64, u64>,
    gets_killed: Function<u64, u64>,
    panics: Function<u64, u64>,
    hangs: Function<u64, u64>,
    crashes_once: Function<(u64, PathBuf), u64>,
    picky_identity: Function<Picky, u64>,
    picky_result: Function<u64, Picky>,
    counted_sleep: Function<u64, u64>,
    sum: Function<Vec<u64>, u64>,
}

fn plan(workers: usize, chunk: usize) -> Plan {
    Plan::fixed(
        NonZeroUsize::new(workers).unwrap(),
        NonZeroUsize::new(chunk).unwrap(),
    )
}

fn items(n: u64) -> Vec<u64> {
    (0..n).collect()
}

/// The pids of this process's children, zombies included, from `/proc/*/stat`.
fn children() -> Vec<u32> {
    let me = std::process::id();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // proc(5): "pid (comm) state ppid ..."; comm may hold spaces, so split after ')'.
        let Some(after) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
            continue;
        };
        let ppid = after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(me) {
            pids.push(pid);
        }
    }
    pids
}

/// Every item but `BAD` has its square; `BAD` has none.
fn assert_all_but_bad(results: &[Option<u64>]) {
    for (i, r) in results.iter().enumerate() {
        if i as u64 == BAD {
            assert_eq!(*r, None, "item {i}");
        } else {
            assert_eq!(*r, Some((i * i) as u64), "item {i}");
        }
    }
}

fn results_equal_the_serial_map(f: &Functions) {
    let items = items(1000);
    let serial: Vec<u64> = items.iter().map(square).collect();
    let outcome = process::run(f.square, &items, &plan(2, 37), &ProcessOptions::new()).unwrap();
    assert!(outcome.is_complete());
    assert_eq!(outcome.stats().chunks, 1000usize.div_ceil(37));
    assert_eq!(outcome.into_results().unwrap(), serial);
}

fn empty_input_gives_empty_output(f: &Functions) {
    let outcome = process::run(f.square, &[], &plan(2, 4), &ProcessOptions::new()).unwrap();
    assert!(outcome.into_results().unwrap().is_empty());
}

fn workers_are_reused_across_runs(f: &Functions) {
    let pool = Pool::new();
    let items = items(40);
    let first = pool
        .run(f.square, &items, &plan(2, 5), &ProcessOptions::new())
        .unwrap();
    assert!(first.stats().workers_started >= 1);
    let idle = pool.idle();
    assert!((1..=2).contains(&idle), "{idle} idle workers");
    let second = pool
        .run(f.square, &items, &plan(1, 5), &ProcessOptions::new())
        .unwrap();
    assert_eq!(second.stats().workers_started, 0);
    assert_eq!(
        second.into_results().unwrap(),
        first.into_results().unwrap()
    );
}

fn crash_names_chunk_and_items(f: Function<u64, u64>, signal: &str) {
    let outcome = process::run(f, &items(40), &plan(2, 10), &ProcessOptions::new()).unwrap();
    let failures = outcome.failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    let failure = &failures[0];
    assert_eq!(failure.chunk(), 1);
    assert_eq!(failure.items(), 10..20);
    assert_eq!(failure.error().kind(), ErrorKind::WorkerFailed);
    let message = failure.error().to_string();
    assert!(message.contains("chunk 1 (items 10..20)"), "{message}");
    assert!(message.contains(signal), "{message}");
    for (i, r) in outcome.results().iter().enumerate() {
        let expected = (!(10..20).contains(&i)).then_some((i * i) as u64);
        assert_eq!(*r, expected, "item {i}");
    }
}

fn an_abort_is_detected(f: &Functions) {
    crash_names_chunk_and_items(f.aborts, "SIGABRT");
}

fn a_segfault_is_detected(f: &Functions) {
    crash_names_chunk_and_items(f.segfaults, "SIGSEGV");
}

fn a_killed_worker_is_detected(f: &Functions) {
    crash_names_chunk_and_items(f.gets_killed, "SIGKILL");
}

fn a_panic_names_its_item_and_the_worker_goes_on(f: &Functions) {
    let pool = Pool::new();
    let outcome = pool
        .run(f.panics, &items(40), &plan(1, 10), &ProcessOptions::new())
        .unwrap();
    assert_eq!(outcome.stats().workers_started, 1);
    let failures = outcome.failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].items(), 13..14);
    assert_eq!(failures[0].error().kind(), ErrorKind::Panicked);
    assert_eq!(failures[0].error().item(), Some(13));
    assert!(failures[0].error().to_string().contains("no thirteen here"));
    assert_all_but_bad(outcome.results());
    assert_eq!(pool.idle(), 1);
}

fn retries_isolate_the_crashing_item(f: &Functions) {
    let options = ProcessOptions::new().retries(2);
    let outcome = process::run(f.segfaults, &items(40), &plan(2, 10), &options).unwrap();
    let failures = outcome.failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].items(), 13..14);
    assert_eq!(failures[0].attempts(), 3);
    assert_eq!(failures[0].error().item(), Some(13));
    assert!(failures[0].error().to_string().contains("SIGSEGV"));
    assert_eq!(outcome.stats().retried_items, 10 + 1);
    assert_all_but_bad(outcome.results());
}

fn a_retry_on_a_fresh_worker_recovers(f: &Functions) {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("crashed");
    let items: Vec<(u64, PathBuf)> = (0..30).map(|i| (i, marker.clone())).collect();
    let options = ProcessOptions::new().retries(1);
    let outcome = process::run(f.crashes_once, &items, &plan(2, 8), &options).unwrap();
    assert!(marker.exists(), "the crash happened");
    let results = outcome.into_results().unwrap();
    assert_eq!(results, (0..30).map(|i| i * i).collect::<Vec<u64>>());
}

fn an_unserializable_item_is_named(f: &Functions) {
    let items: Vec<Picky> = (0..30).map(Picky).collect();
    let outcome = process::run(
        f.picky_identity,
        &items,
        &plan(2, 8),
        &ProcessOptions::new(),
    )
    .unwrap();
    let failures = outcome.failures();
    // 13 cannot be written by the parent; 14 cannot be read by the worker.
    assert_eq!(failures.len(), 2, "{failures:?}");
    for (failure, item) in failures.iter().zip([13, 14]) {
        assert_eq!(failure.items(), item..item + 1);
        assert_eq!(failure.error().kind(), ErrorKind::Serialization);
        assert_eq!(failure.error().item(), Some(item));
        let message = failure.error().to_string();
        assert!(message.contains(&format!("item {item}")), "{message}");
    }
    for (i, r) in outcome.results().iter().enumerate() {
        let expected = (i != 13 && i != 14).then_some(i as u64);
        assert_eq!(*r, expected, "item {i}");
    }
}

fn an_unserializable_result_is_named(f: &Functions) {
    let outcome = process::run(
        f.picky_result,
        &items(30),
        &plan(2, 8),
        &ProcessOptions::new(),
    )
    .unwrap();
    let failures = outcome.failures();
    // The worker cannot write 13's result; the parent cannot read 14's, nor (unknown
    // position) the rest of that chunk, 15.
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert_eq!(failures[0].items(), 13..14);
    assert_eq!(failures[1].items(), 14..16);
    for failure in failures {
        assert_eq!(failure.error().kind(), ErrorKind::Serialization);
        assert!(failure.error().to_string().contains("result of item"));
    }
    let err = outcome.into_results().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Serialization);
    assert_eq!(err.item(), Some(13));
    assert!(err.to_string().contains("2 more items failed"), "{err}");
}

fn a_hung_worker_is_killed_at_the_timeout(f: &Functions) {
    let options = ProcessOptions::new().chunk_timeout(Duration::from_millis(500));
    let outcome = process::run(f.hangs, &items(30), &plan(2, 1), &options).unwrap();
    let failures = outcome.failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].items(), 13..14);
    let message = failures[0].error().to_string();
    assert!(message.contains("timed out"), "{message}");
    assert_all_but_bad(outcome.results());
}

fn an_unregistered_function_is_an_error(f: &Functions) {
    fn late(x: &u64) -> u64 {
        *x
    }
    // Registered after `init`, so workers never hear of it.
    let late = process::register("registered-too-late", late);
    let err = process::run(late, &items(4), &plan(1, 2), &ProcessOptions::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("registered-too-late"), "{err}");
    // The pool is still good for known functions.
    let ok = process::run(f.square, &items(4), &plan(1, 2), &ProcessOptions::new()).unwrap();
    assert!(ok.is_complete());
}

fn a_started_run_streams_every_result(f: &Functions) {
    let running = process::start(f.square, items(500), &plan(2, 16), &ProcessOptions::new());
    let mut pairs: Vec<(usize, u64)> = running.map(Result::unwrap).collect();
    pairs.sort_unstable();
    let expected: Vec<(usize, u64)> = (0..500).map(|i| (i, (i * i) as u64)).collect();
    assert_eq!(pairs, expected);
}

fn a_started_run_reports_failures_as_errors(f: &Functions) {
    let running = process::start(f.aborts, items(40), &plan(2, 10), &ProcessOptions::new());
    let (ok, failed): (Vec<_>, Vec<_>) = running.partition(Result::is_ok);
    assert_eq!(ok.len(), 30);
    assert_eq!(failed.len(), 1);
    let err = failed.into_iter().next().unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WorkerFailed);
    assert!(err.to_string().contains("items 10..20"), "{err}");
}

fn dropping_a_run_half_way_leaves_no_busy_worker(f: &Functions) {
    // One worker hangs on item 13 for an hour while the other goes on: the drop must kill it
    // rather than wait.
    let mut running = process::start(f.hangs, items(400), &plan(2, 1), &ProcessOptions::new());
    let mut seen = 0;
    for result in running.by_ref() {
        result.unwrap();
        seen += 1;
        if seen == 30 {
            break;
        }
    }
    // The drop returns without waiting for the hour (the suite would time out otherwise).
    // The worker that was not hung is kept when it was between chunks at that moment, and
    // killed with the other when it was busy: either way no busy worker is left.
    drop(running);
    let idle = Pool::global().idle();
    assert_eq!(children().len(), idle, "only idle workers remain");
}

static CALLS_HERE: AtomicUsize = AtomicUsize::new(0);

/// Sleeps 2 ms: slow enough that worker processes may pay, whatever this machine measures.
fn counted_sleep(x: &u64) -> u64 {
    CALLS_HERE.fetch_add(1, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(2));
    square(x)
}

/// A trivial pass over a large vector: encoding it costs far more than the pass.
// A registered function takes `&T` for its item type `T = Vec<u64>`.
#[allow(clippy::ptr_arg)]
fn sum(v: &Vec<u64>) -> u64 {
    v.iter().fold(0, |a, &x| a.wrapping_add(x))
}

fn execute_equals_the_serial_map_and_runs_each_item_once(f: &Functions) {
    let items = items(300);
    CALLS_HERE.store(0, Ordering::Relaxed);
    let outcome = process::execute(
        f.counted_sleep,
        &items,
        &Options::new(),
        &ProcessOptions::new(),
    )
    .unwrap();
    let plan = outcome.plan().clone();
    let here = CALLS_HERE.load(Ordering::Relaxed);
    let sampled = plan.sample().expect("the plan keeps its sample").count;
    assert_eq!(
        outcome.into_results().unwrap(),
        items.iter().map(square).collect::<Vec<_>>()
    );
    if plan.is_parallel() {
        // Workers ran the rest; this process ran only the sample, whose results were kept.
        assert_eq!(here, sampled);
    } else {
        assert_eq!(here, items.len());
    }
}

fn execute_refuses_serialization_bound_work(f: &Functions) {
    let vectors: Vec<Vec<u64>> = (0..40).map(|i| vec![u64::MAX - i; 50_000]).collect();
    let outcome =
        process::execute(f.sum, &vectors, &Options::new(), &ProcessOptions::new()).unwrap();
    let plan = outcome.plan();
    assert!(!plan.is_parallel(), "{plan}");
    assert!(
        matches!(plan.reason(), Reason::TransferDominates { .. }),
        "{plan}"
    );
    let transfer = plan.workload().unwrap().transfer;
    assert!(transfer.input_bytes >= 50_000, "{transfer:?}");
    assert_eq!(
        outcome.into_results().unwrap(),
        vectors.iter().map(sum).collect::<Vec<_>>()
    );
}

fn execute_on_nothing_is_empty(f: &Functions) {
    let outcome = process::execute(f.square, &[], &Options::new(), &ProcessOptions::new()).unwrap();
    assert!(outcome.into_results().unwrap().is_empty());
}

fn execute_with_fixed_workers_uses_processes(f: &Functions) {
    let options = Options::new().workers(NonZeroUsize::new(2).unwrap());
    let items = items(100);
    let outcome = process::execute(f.square, &items, &options, &ProcessOptions::new()).unwrap();
    assert!(outcome.plan().is_parallel());
    assert_eq!(outcome.plan().backend(), Backend::Processes);
    assert!(outcome.stats().chunks >= 1);
    assert_eq!(
        outcome.into_results().unwrap(),
        items.iter().map(square).collect::<Vec<_>>()
    );
}

fn the_calibration_is_plausible_and_cached() {
    let first = process::calibration().unwrap();
    let c = first.costs;
    assert_eq!(c.backend, Backend::Processes);
    assert!(c.worker_start > 0.0 && c.chunk_dispatch > 0.0 && c.transfer_per_byte > 0.0);
    assert!(std::ptr::eq(first, process::calibration().unwrap()));
}

fn no_process_is_left_behind(f: &Functions) {
    {
        let pool = Pool::new();
        let outcome = pool
            .run(f.aborts, &items(40), &plan(2, 5), &ProcessOptions::new())
            .unwrap();
        assert!(!outcome.is_complete());
        assert!(pool.idle() >= 1);
    }
    process::shutdown();
    assert_eq!(children(), Vec::<u32>::new());
}

type Test = (&'static str, fn(&Functions));

fn main() {
    let functions = Functions {
        square: process::register("square", square),
        aborts: process::register("aborts", aborts),
        segfaults: process::register("segfaults", segfaults),
        gets_killed: process::register("gets_killed", gets_killed),
        panics: process::register("panics", panics),
        hangs: process::register("hangs", hangs),
        crashes_once: process::register("crashes_once", crashes_once),
        picky_identity: process::register("picky_identity", picky_identity),
        picky_result: process::register("picky_result", picky_result),
        counted_sleep: process::register("counted_sleep", counted_sleep),
        sum: process::register("sum", sum),
    };
    process::init();
    if cfg!(not(unix)) {
        // Worker processes are Unix-only; elsewhere every way to them fails with
        // ErrorKind::Unsupported, which the library's unit tests check.
        eprintln!("process: worker processes are Unix-only; no test runs here");
        return;
    }

    let tests: &[Test] = &[
        ("results_equal_the_serial_map", results_equal_the_serial_map),
        (
            "empty_input_gives_empty_output",
            empty_input_gives_empty_output,
        ),
        (
            "workers_are_reused_across_runs",
            workers_are_reused_across_runs,
        ),
        ("an_abort_is_detected", an_abort_is_detected),
        ("a_segfault_is_detected", a_segfault_is_detected),
        ("a_killed_worker_is_detected", a_killed_worker_is_detected),
        (
            "a_panic_names_its_item_and_the_worker_goes_on",
            a_panic_names_its_item_and_the_worker_goes_on,
        ),
        (
            "retries_isolate_the_crashing_item",
            retries_isolate_the_crashing_item,
        ),
        (
            "a_retry_on_a_fresh_worker_recovers",
            a_retry_on_a_fresh_worker_recovers,
        ),
        (
            "an_unserializable_item_is_named",
            an_unserializable_item_is_named,
        ),
        (
            "an_unserializable_result_is_named",
            an_unserializable_result_is_named,
        ),
        (
            "a_hung_worker_is_killed_at_the_timeout",
            a_hung_worker_is_killed_at_the_timeout,
        ),
        (
            "an_unregistered_function_is_an_error",
            an_unregistered_function_is_an_error,
        ),
        (
            "a_started_run_streams_every_result",
            a_started_run_streams_every_result,
        ),
        (
            "a_started_run_reports_failures_as_errors",
            a_started_run_reports_failures_as_errors,
        ),
        (
            "dropping_a_run_half_way_leaves_no_busy_worker",
            dropping_a_run_half_way_leaves_no_busy_worker,
        ),
        (
            "execute_equals_the_serial_map_and_runs_each_item_once",
            execute_equals_the_serial_map_and_runs_each_item_once,
        ),
        (
            "execute_refuses_serialization_bound_work",
            execute_refuses_serialization_bound_work,
        ),
        ("execute_on_nothing_is_empty", execute_on_nothing_is_empty),
        (
            "execute_with_fixed_workers_uses_processes",
            execute_with_fixed_workers_uses_processes,
        ),
        ("the_calibration_is_plausible_and_cached", |_| {
            the_calibration_is_plausible_and_cached()
        }),
        // Last: it stops every worker and checks that none is left.
        ("no_process_is_left_behind", no_process_is_left_behind),
    ];
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, test) in tests {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        match std::panic::catch_unwind(|| test(&functions)) {
            Ok(()) => eprintln!("test {name} ... ok"),
            Err(_) => {
                eprintln!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    process::shutdown();
    eprintln!("\n{} passed; {} failed", ran - failed.len(), failed.len());
    if !failed.is_empty() {
        eprintln!("failed: {failed:?}");
        std::process::exit(1);
    }
}
