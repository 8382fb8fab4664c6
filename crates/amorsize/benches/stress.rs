//! Stress: `execute` and `stream` while a second process keeps one CPU busy the whole time.
//! Results must be complete and correct, and amorsize's decisions must stay ≥ 0.9× the serial
//! loop (a machine that is busier than the sample saw must not turn parallelism into a loss).
//! Side by side in one run, as ratios; the thread count and VmRSS before and after are shown.
//!
//! `cargo bench -p amorsize --bench stress` (add `-- --quick` for fewer repetitions).
#![allow(clippy::print_stdout)]

use std::hint::black_box;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

mod common;
use common::{spin, spin_rate};

const HOG_ENV: &str = "AMORSIZE_STRESS_HOG";

/// The competing process; killed and reaped when dropped, whatever happens to the bench.
struct Hog(Child);

impl Hog {
    fn start() -> Hog {
        let exe = std::env::current_exe().expect("the bench knows its own path");
        Hog(Command::new(exe)
            .env(HOG_ENV, "1")
            .spawn()
            .expect("the hog starts"))
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// Median of `reps` interleaved runs of serial and amorsize; checks they agree each time.
fn race(
    reps: usize,
    serial: &dyn Fn() -> Vec<u64>,
    amorsize: &dyn Fn() -> Vec<u64>,
) -> (Duration, Duration) {
    let (mut s, mut a) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let t = Instant::now();
        let expected = black_box(serial());
        s.push(t.elapsed());
        let t = Instant::now();
        let got = black_box(amorsize());
        a.push(t.elapsed());
        assert!(
            got == expected,
            "amorsize's results differ from the serial loop's"
        );
    }
    s.sort();
    a.sort();
    (s[reps / 2], a[reps / 2])
}

fn main() {
    if std::env::var_os(HOG_ENV).is_some() {
        // The hog: one thread busy until killed.
        let mut x = 1u64;
        loop {
            x = spin(x, 1 << 20);
        }
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let reps = if quick { 3 } else { 7 };
    let rate = spin_rate();
    let iters = |d: Duration| ((rate * d.as_nanos() as f64) as u64).max(1);

    let _hog = Hog::start();
    std::thread::sleep(Duration::from_millis(100));
    let threads_before = status_kb("Threads:");
    let rss_before = status_kb("VmRSS:");

    let cases: [(&str, usize, Duration); 4] = [
        ("tiny 1k × 20 ns", 1_000, Duration::from_nanos(20)),
        ("fast 100k × 1 µs", 100_000, Duration::from_micros(1)),
        ("medium 2k × 100 µs", 2_000, Duration::from_micros(100)),
        ("slow 40 × 10 ms", 40, Duration::from_millis(10)),
    ];
    println!(
        "with one CPU kept busy by another process ({} logical CPUs)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:<28} {:>12} {:>12} {:>16}",
        "workload", "serial", "amorsize", "serial÷amorsize"
    );
    let mut worst = f64::INFINITY;
    for (name, n, per_item) in cases {
        let k = iters(per_item);
        let items: Vec<u64> = (0..n as u64).collect();
        // Cases of microseconds run many more times: a median of 7 calls would be one of the
        // process's first few, which pay for code and data not yet in the caches.
        let reps = if n as f64 * per_item.as_secs_f64() < 1e-3 {
            reps * 15
        } else {
            reps
        };
        let serial = || items.iter().map(|&x| spin(x, k)).collect::<Vec<_>>();
        let batch = || amorsize::execute(&items, |&x| spin(x, k)).expect("no item panics");
        let (s, a) = race(reps, &serial, &batch);
        let ratio = s.as_secs_f64() / a.as_secs_f64();
        worst = worst.min(ratio);
        println!(
            "{:<28} {:>12.2?} {:>12.2?} {:>15.2}×",
            format!("execute {name}"),
            s,
            a,
            ratio
        );
        // The stream reads the same slice as the loop (no copy of the input in the timing).
        let streamed =
            || amorsize::stream(items.iter().copied(), move |&x| spin(x, k)).collect::<Vec<_>>();
        let (s, a) = race(reps, &serial, &streamed);
        let ratio = s.as_secs_f64() / a.as_secs_f64();
        worst = worst.min(ratio);
        println!(
            "{:<28} {:>12.2?} {:>12.2?} {:>15.2}×",
            format!("stream  {name}"),
            s,
            a,
            ratio
        );
    }
    let threads_after = status_kb("Threads:");
    let rss_after = status_kb("VmRSS:");
    println!("worst serial÷amorsize: {worst:.2}× (target ≥ 0.90×)");
    println!("threads {threads_before} → {threads_after}; VmRSS {rss_before} kB → {rss_after} kB");
}
