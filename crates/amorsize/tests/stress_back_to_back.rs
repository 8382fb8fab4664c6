//! 1000 back-to-back calls of `execute` and `stream` grow neither the thread count nor the
//! memory: pools are reused, nothing is leaked per call. One test in this binary, so that no
//! other test's threads change the count. The figures are printed (run with `--nocapture`).

#![allow(clippy::print_stdout)] // The figures are printed for the record (`--nocapture`).

use amorsize::Options;
use std::num::NonZeroUsize;

fn status_field(name: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn a_thousand_back_to_back_calls_grow_neither_threads_nor_memory() {
    let calls = if cfg!(debug_assertions) { 300 } else { 1000 };
    let items: Vec<u64> = (0..4096).collect();
    let forced = Options::new()
        .workers(NonZeroUsize::new(2).unwrap())
        .threshold(0.0);
    let run = |i: usize| {
        // Alternate the planned path, a forced parallel batch and a stream.
        let a = amorsize::execute(&items, |x| x.wrapping_mul(2654435761)).unwrap();
        let b = forced.execute(&items, |x| x + 1).unwrap();
        let c: u64 = forced
            .stream(items.iter().copied(), |x| x ^ 1)
            .take(1000)
            .sum();
        assert_eq!(a.len() + b.len(), 2 * items.len());
        assert!(c > 0 || i == usize::MAX);
    };
    // Warm up: the pools and allocator arenas are made by the first calls.
    for i in 0..20 {
        run(i);
    }
    let threads_before = status_field("Threads:");
    let rss_before = status_field("VmRSS:");
    for i in 0..calls {
        run(i);
    }
    let threads_after = status_field("Threads:");
    let rss_after = status_field("VmRSS:");
    println!(
        "{calls} rounds of 3 calls: threads {threads_before} -> {threads_after}, \
         VmRSS {rss_before} kB -> {rss_after} kB"
    );
    assert_eq!(
        threads_after, threads_before,
        "no thread is left behind by a call"
    );
    // A leak of even 1 KiB per call would show as 3 MiB here; allocator noise stays far below.
    assert!(
        rss_after <= rss_before + 16 * 1024,
        "VmRSS grew from {rss_before} kB to {rss_after} kB over {calls} rounds"
    );
}
