//! Work items shared by the benchmarks: a CPU-bound kernel and its rate on this machine.

use std::hint::black_box;
use std::time::Instant;

/// A CPU-bound item: `iters` rounds of xorshift.
pub fn spin(seed: u64, iters: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..iters {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    black_box(x)
}

/// Rounds of `spin` per nanosecond on this machine: the best of many short runs, so that a
/// loaded machine (which preempts long runs) still shows the unhindered rate.
pub fn spin_rate() -> f64 {
    let iters = 200_000;
    let best = (0..50)
        .map(|_| {
            let t = Instant::now();
            spin(black_box(7), iters);
            t.elapsed()
        })
        .min()
        .unwrap();
    iters as f64 / best.as_nanos() as f64
}
