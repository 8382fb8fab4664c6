//! The process backend against the serial loop, side by side in one run, as ratios:
//! - 2 000 CPU-bound items of about 1 ms: worker processes should approach the cores
//!   (target ≥ 1.8× serial on 2 cores);
//! - 2 000 items whose serialization costs more than their compute: the planner should choose
//!   the serial loop and stay ≥ 0.95× serial;
//! - the backend's own costs as measured here (worker start, chunk round trip, pipe).
//!
//! It is its own worker (`harness = false`, `init` first in `main`).
//! Run: `cargo bench -p amorsize --bench process`.

#![allow(clippy::print_stdout)]

use amorsize::exec::process::{self, ProcessOptions};
use amorsize::Options;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Repeats of each side-by-side comparison; the median ratio is reported.
const ROUNDS: usize = 3;
/// Repeats of the short serialization-bound comparison (tens of milliseconds each, so more
/// repeats are cheap and steady the median on a busy machine); the order alternates.
const SHORT_ROUNDS: usize = 11;
const ITEMS: usize = 2000;
/// Elements of one item of the serialization-bound workload.
const VECTOR_LEN: usize = 4096;

/// `rounds` steps of a 64-bit LCG and xorshift: CPU work with no memory traffic.
fn spin(rounds: &u64) -> u64 {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..*rounds {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        x ^= x >> 29;
    }
    black_box(x)
}

/// One pass over a vector: far cheaper than encoding and decoding its 4096 large integers.
// A registered function takes `&T` for its item type `T = Vec<u64>`.
#[allow(clippy::ptr_arg)]
fn checksum(v: &Vec<u64>) -> u64 {
    v.iter().fold(0u64, |a, &x| a.rotate_left(5) ^ x)
}

/// Spin rounds that take about `target` here.
fn rounds_for(target: Duration) -> u64 {
    let probe = 1_000_000u64;
    let start = Instant::now();
    spin(&probe);
    let per_round = start.elapsed().as_secs_f64() / probe as f64;
    (target.as_secs_f64() / per_round).max(1.0) as u64
}

fn time<R>(f: impl FnOnce() -> R) -> (Duration, R) {
    let start = Instant::now();
    let r = f();
    (start.elapsed(), r)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let spin_fn = process::register("spin", spin);
    let checksum_fn = process::register("checksum", checksum);
    process::init();

    let cpus = amorsize::probe::machine().logical_cpus();
    println!("process backend benchmark: {cpus} logical CPUs, median ratio of the rounds\n");

    let (took, calibration) = time(process::calibration);
    let calibration = calibration.expect("worker processes start");
    let c = calibration.costs;
    println!(
        "measured costs (once per process, {:.1} ms):",
        took.as_secs_f64() * 1e3
    );
    println!(
        "  worker start        {:>9.3} ms{}",
        c.worker_start * 1e3,
        if c.fallbacks.worker_start {
            "  (fallback)"
        } else {
            ""
        }
    );
    println!(
        "  chunk round trip    {:>9.1} µs{}",
        c.chunk_dispatch * 1e6,
        if c.fallbacks.chunk_dispatch {
            "  (fallback)"
        } else {
            ""
        }
    );
    println!(
        "  pipe                {:>9.2} GB/s{}",
        1e-9 / c.transfer_per_byte,
        if c.fallbacks.transfer_per_byte {
            "  (fallback)"
        } else {
            ""
        }
    );

    // 1. CPU-bound items of about 1 ms.
    println!("\n1 ms items × {ITEMS}:");
    let rounds = rounds_for(Duration::from_millis(1));
    let items = vec![rounds; ITEMS];
    let mut ratios = Vec::new();
    let mut last = None;
    for _ in 0..ROUNDS {
        let (serial, expected) = time(|| items.iter().map(spin).collect::<Vec<_>>());
        let (parallel, outcome) = time(|| {
            process::execute(spin_fn, &items, &Options::new(), &ProcessOptions::new()).unwrap()
        });
        let plan = outcome.plan().clone();
        let stats = outcome.stats().clone();
        assert_eq!(outcome.into_results().unwrap(), expected);
        let ratio = serial.as_secs_f64() / parallel.as_secs_f64();
        println!(
            "  round: serial {serial:.2?}, amorsize {parallel:.2?} = {ratio:.2}× ({:?}, {} workers, chunks of {})",
            plan.mode(),
            plan.workers(),
            plan.chunk_size()
        );
        ratios.push(ratio);
        last = Some((serial, parallel, plan, stats));
    }
    let (serial, parallel, plan, stats) = last.unwrap();
    println!("  last round: serial {serial:.2?}, amorsize {parallel:.2?}");
    println!(
        "  plan: {:?}, {} workers, chunks of {}; predicted {:.2}×",
        plan.mode(),
        plan.workers(),
        plan.chunk_size(),
        plan.predicted_speedup().unwrap_or(f64::NAN)
    );
    println!(
        "  run: {} chunks, {} workers started, mean chunk overhead {:?}",
        stats.chunks, stats.workers_started, stats.mean_chunk_overhead
    );
    let speedup = median(ratios.clone());
    println!(
        "  speedup over serial: {speedup:.2}× (rounds {ratios:.2?}; target ≥ 1.8× on 2 cores) {}",
        if speedup >= 1.8 { "MET" } else { "MISSED" }
    );

    // 2. Serialization costs more than compute.
    println!("\nserialization-bound items × {ITEMS}:");
    let vectors: Vec<Vec<u64>> = (0..ITEMS as u64)
        .map(|i| {
            (0..VECTOR_LEN as u64)
                .map(|j| u64::MAX - i * 7919 - j)
                .collect()
        })
        .collect();
    let mut ratios = Vec::new();
    let mut last = None;
    let serial_run = || time(|| vectors.iter().map(checksum).collect::<Vec<_>>());
    let planned_run = || {
        time(|| {
            process::execute(
                checksum_fn,
                &vectors,
                &Options::new(),
                &ProcessOptions::new(),
            )
            .unwrap()
        })
    };
    for round in 0..SHORT_ROUNDS {
        let ((serial, expected), (planned, outcome)) = if round % 2 == 0 {
            let s = serial_run();
            (s, planned_run())
        } else {
            let p = planned_run();
            (serial_run(), p)
        };
        let plan = outcome.plan().clone();
        assert_eq!(outcome.into_results().unwrap(), expected);
        let ratio = serial.as_secs_f64() / planned.as_secs_f64();
        println!(
            "  round: serial {serial:.2?}, amorsize {planned:.2?} = {ratio:.2}× ({:?} on {})",
            plan.mode(),
            plan.backend()
        );
        ratios.push(ratio);
        last = Some((serial, planned, plan));
    }
    let (serial, planned, plan) = last.unwrap();
    let transfer = plan.workload().map(|w| w.transfer).unwrap_or_default();
    println!("  last round: serial {serial:.2?}, amorsize {planned:.2?}");
    println!(
        "  item {:.1} µs; encode+decode {:.1} µs in, {:.2} µs out; {} bytes in",
        plan.item_time().map_or(f64::NAN, |d| d.as_secs_f64() * 1e6),
        transfer.input_time * 1e6,
        transfer.output_time * 1e6,
        transfer.input_bytes
    );
    println!("  plan: {:?} — {}", plan.mode(), plan.reason());
    let ratio = median(ratios.clone());
    println!(
        "  amorsize ÷ serial speed: {ratio:.2}× (rounds {ratios:.2?}; target: serial chosen and ≥ 0.95×) {}",
        if !plan.is_parallel() && ratio >= 0.95 { "MET" } else { "MISSED" }
    );
    process::shutdown();
}
