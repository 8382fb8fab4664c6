//! Five runs of a workload the model first mispredicts, and the prediction error shrinking as
//! the cache learns its correction: the contention between workers.
//!
//! The workload sums slices of a buffer far larger than the CPU caches: memory-bandwidth
//! bound. The sample runs one item at a time with the whole memory bus to itself; in
//! parallel the workers share it, so the run is slower than the sample predicts (DESIGN.md:
//! memory-bound maps saturate at about 2×). After each run, measured ÷ predicted time updates
//! the workload's contention (the Universal Scalability Law's α, which the model's contention
//! term applies), and the next plan includes it.
//!
//! ```sh
//! cargo run --release -p amorsize --example learning -- [buffer MiB, default 512]
//! ```
//!
//! It uses a cache file of its own in a temporary directory, so the first run starts cold.
#![allow(clippy::print_stdout)]

use amorsize::cache::{self, WorkloadKey};
use amorsize::Options;

/// Words summed per item: 64 KiB, long enough that an item is a stream of cache-line loads.
const WORDS_PER_ITEM: usize = 8 * 1024;
const NAME: &str = "memory-bound sum";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mib: usize = match std::env::args().nth(1) {
        Some(a) => a.parse()?,
        None => 512,
    };
    let dir = tempfile::tempdir()?;
    // Before anything opens the cache: this example's own file.
    std::env::set_var(cache::ENV_VAR, dir.path().join("amorsize.db"));

    let words = mib * 1024 * 1024 / 8;
    let buffer: Vec<u64> = (0..words as u64).collect();
    let items: Vec<usize> = (0..words / WORDS_PER_ITEM).collect();
    let sum = |&i: &usize| -> u64 {
        buffer[i * WORDS_PER_ITEM..(i + 1) * WORDS_PER_ITEM]
            .iter()
            .fold(0u64, |a, &x| a.wrapping_add(x))
    };
    let expected = items.iter().map(sum).fold(0u64, u64::wrapping_add);

    println!(
        "{} items of {} KiB over a {mib} MiB buffer, {} CPUs",
        items.len(),
        WORDS_PER_ITEM * 8 / 1024,
        amorsize::probe::machine().logical_cpus()
    );
    println!(
        "run  workers  chunk  predicted   measured  measured/predicted  contention used -> learned"
    );
    let key = WorkloadKey::named(NAME);
    let options = Options::new().name(NAME);
    for run in 1..=5 {
        let used = cache::with_default(|c| c.contention(&key)).unwrap_or(0.0);
        let done = options.run(&items, sum)?;
        assert_eq!(
            done.results.iter().copied().fold(0u64, u64::wrapping_add),
            expected
        );
        let plan = &done.report.plan;
        let measured = done.report.wall.as_secs_f64();
        let learned = cache::with_default(|c| c.contention(&key)).unwrap_or(0.0);
        match plan.predicted_time() {
            Some(predicted) => {
                let predicted = predicted.as_secs_f64();
                println!(
                    "{run:>3}  {:>7}  {:>5}  {:>7.1} ms  {:>6.1} ms  {:>18.2}  {used:>15.3} -> {learned:.3}",
                    plan.workers(),
                    plan.chunk_size(),
                    predicted * 1e3,
                    measured * 1e3,
                    measured / predicted,
                );
            }
            None => println!("{run:>3}  no prediction"),
        }
    }
    for w in cache::take_warnings() {
        println!("warning: {w}");
    }
    Ok(())
}
