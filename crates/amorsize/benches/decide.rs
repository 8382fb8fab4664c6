//! How long the planner takes to decide: the pure search (`decide`) for a tiny workload, a
//! 10k-item one, and waiting work whose search goes beyond the cores; and the whole planning
//! of a tiny slice (sample, speedup bound, decision) as a caller pays it.
//!
//! `cargo bench -p amorsize --bench decide`

use amorsize::model::{Backend, Costs, Workload};
use amorsize::plan::{decide, Caps};
use amorsize::Options;
use divan::black_box;

fn main() {
    divan::main();
}

fn costs() -> Costs {
    Costs {
        worker_start: 50e-6,
        chunk_dispatch: 2e-6,
        ..Costs::zero(Backend::Threads)
    }
}

/// 100 items of 50 ns: refused at once.
#[divan::bench(args = [2, 8, 64])]
fn decide_tiny(cores: usize) {
    let caps = Caps::cores(cores, "bench");
    black_box(decide(
        black_box(&Workload::new(100, 50e-9)),
        &costs(),
        &caps,
        &Options::new(),
    ));
}

/// 10 000 items of 1 ms: every worker count up to the cores, a grid of chunks for each.
#[divan::bench(args = [2, 8, 64])]
fn decide_10k(cores: usize) {
    let caps = Caps::cores(cores, "bench");
    black_box(decide(
        black_box(&Workload::new(10_000, 1e-3)),
        &costs(),
        &caps,
        &Options::new(),
    ));
}

/// 10 000 items of 1 ms that wait 95 % of the time: up to 16 workers per core.
#[divan::bench(args = [2, 8, 64])]
fn decide_10k_waiting(cores: usize) {
    let caps = Caps::cores(cores, "bench");
    let work = Workload {
        cpu_fraction: 0.05,
        ..Workload::new(10_000, 1e-3)
    };
    black_box(decide(black_box(&work), &costs(), &caps, &Options::new()));
}

/// The whole planning of 100 tiny items as `optimize` does it: the sample, then the speedup
/// bound proves serial without measuring any overhead.
#[divan::bench]
fn optimize_tiny_slice(bencher: divan::Bencher) {
    let items: Vec<u64> = (0..100).collect();
    bencher.bench(|| black_box(amorsize::optimize(black_box(&items), |x| x.wrapping_mul(3))));
}
