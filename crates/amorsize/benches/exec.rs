//! Execution speed, side by side in one run, as ratios (these machines are noisy):
//!
//! 1. uniform CPU-bound work, 2k items of ≥ 100 µs: `execute` against rayon `par_iter`;
//! 2. tiny work, 1k items of ~20 ns: `execute` against the serial loop (and rayon);
//! 3. streaming 1M items of ~1 µs from a plain iterator: `stream` against `par_bridge`, and
//!    both against one fixed share per thread and the ideal (serial ÷ threads);
//! 4. the coordination cost per item of each (items of ~1 ns), which bounds their throughput
//!    on any number of cores;
//! 5. peak memory (VmHWM) of a stream over 1M and over 10M items, each in a child process.
//!
//! `cargo bench -p amorsize --bench exec` (add `-- --quick` for fewer repetitions).
#![allow(clippy::print_stdout)]

use rayon::prelude::*;
use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::{spin, spin_rate};

fn iters_for(rate: f64, d: Duration) -> u64 {
    ((rate * d.as_nanos() as f64) as u64).max(1)
}

/// Median wall time of `reps` runs of each contender, interleaved so that drift in the
/// machine's load affects all of them alike. Each round starts with the next contender, so
/// that none always runs right after the same one: what a run leaves behind (rayon's idle
/// workers spin before they sleep; caches warm or cold) falls on each contender in turn.
fn race(reps: usize, contenders: &mut [(&str, &mut dyn FnMut() -> u64)]) -> Vec<Duration> {
    let n = contenders.len();
    let mut times = vec![Vec::new(); n];
    for rep in 0..reps {
        for i in (0..n).map(|k| (rep + k) % n) {
            let t = Instant::now();
            black_box((contenders[i].1)());
            times[i].push(t.elapsed());
        }
    }
    times
        .into_iter()
        .map(|mut t| {
            t.sort();
            t[t.len() / 2]
        })
        .collect()
}

fn show(title: &str, names: &[&str], times: &[Duration], reference: usize) {
    println!("\n{title}");
    for (name, t) in names.iter().zip(times) {
        let ratio = times[reference].as_secs_f64() / t.as_secs_f64();
        println!(
            "  {name:<28} {:>12.3?}   throughput ×{ratio:.3} of {}",
            t, names[reference]
        );
    }
}

fn uniform(rate: f64, reps: usize) {
    let iters = iters_for(rate, Duration::from_micros(100));
    let items: Vec<u64> = (0..2000).collect();
    let names = ["serial loop", "rayon par_iter", "amorsize execute"];
    let times = race(
        reps,
        &mut [
            (names[0], &mut || {
                items.iter().map(|&x| spin(x, iters)).sum()
            }),
            (names[1], &mut || {
                items
                    .par_iter()
                    .map(|&x| spin(x, iters))
                    .collect::<Vec<_>>()
                    .iter()
                    .sum()
            }),
            (names[2], &mut || {
                amorsize::execute(&items, |&x| spin(x, iters))
                    .unwrap()
                    .iter()
                    .sum()
            }),
        ],
    );
    show(
        "uniform: 2000 items × 100 µs (target: amorsize ≥ 0.95× rayon)",
        &names,
        &times,
        1,
    );
    let run = amorsize::Options::new()
        .run(&items, |&x| spin(x, iters))
        .unwrap();
    println!(
        "  amorsize's last run:\n{}",
        indent(&run.report.to_string())
    );
}

/// Rounds of `spin` that make each of `items` take `per_item` in a plain loop over them: tiny
/// items overlap in the processor's pipeline, so one alone takes longer than its share of a
/// loop, and the loop is what the target compares with.
fn loop_iters(rate: f64, items: &[u64], per_item: Duration) -> u64 {
    let mut iters = iters_for(rate, per_item);
    for _ in 0..3 {
        let best = (0..50)
            .map(|_| {
                let t = Instant::now();
                black_box(serial_loop(items, iters));
                t.elapsed()
            })
            .min()
            .unwrap_or_default();
        let per = best.as_secs_f64() / items.len() as f64;
        if per > 0.0 {
            iters = ((iters as f64 * per_item.as_secs_f64() / per).round() as u64).max(1);
        }
    }
    iters
}

/// The plain serial loop the tiny items are compared with; one function, so that calibrating
/// and racing time the same machine code (for items this small, code placement alone can
/// change a loop's speed by 2×).
#[inline(never)]
fn serial_loop(items: &[u64], iters: u64) -> Vec<u64> {
    items.iter().map(|&x| spin(x, iters)).collect()
}

fn tiny(rate: f64, reps: usize) {
    let items: Vec<u64> = (0..1000).collect();
    let iters = loop_iters(rate, &items, Duration::from_nanos(20));
    let names = [
        "serial loop",
        "rayon par_iter",
        "amorsize execute",
        "amorsize, serial plan",
    ];
    let serial_plan = amorsize::Plan::fixed(
        std::num::NonZeroUsize::MIN,
        std::num::NonZeroUsize::new(1000).unwrap(),
    );
    let calls = 200;
    let times = race(
        reps,
        &mut [
            (names[0], &mut || {
                (0..calls).map(|_| serial_loop(&items, iters)[999]).sum()
            }),
            (names[1], &mut || {
                (0..calls)
                    .map(|_| {
                        items
                            .par_iter()
                            .map(|&x| spin(x, iters))
                            .collect::<Vec<_>>()[999]
                    })
                    .sum()
            }),
            (names[2], &mut || {
                (0..calls)
                    .map(|_| amorsize::execute(&items, |&x| spin(x, iters)).unwrap()[999])
                    .sum()
            }),
            (names[3], &mut || {
                (0..calls)
                    .map(|_| {
                        serial_plan
                            .run(&items, |&x| spin(x, iters))
                            .unwrap()
                            .results[999]
                    })
                    .sum()
            }),
        ],
    );
    let per_call: Vec<Duration> = times.iter().map(|t| *t / calls).collect();
    show(
        "tiny: 1000 items × 20 ns, per call (target: amorsize within 1.2× the serial loop)",
        &names,
        &per_call,
        0,
    );
    let plan = amorsize::Options::new()
        .run(&items, |&x| spin(x, iters))
        .unwrap()
        .report
        .plan;
    println!(
        "  amorsize's plan: {}, {} worker(s), predicted speedup {:.2?}",
        if plan.is_parallel() {
            "parallel"
        } else {
            "serial"
        },
        plan.workers(),
        plan.predicted_speedup()
    );
}

fn streaming(rate: f64, reps: usize, n: u64) {
    let iters = iters_for(rate, Duration::from_micros(1));
    let threads = rayon::current_num_threads() as u64;
    let names = [
        "serial loop",
        "fixed shares",
        "rayon par_bridge",
        "amorsize stream",
        "amorsize stream unordered",
    ];
    let times = race(
        reps,
        &mut [
            (names[0], &mut || (0..n).map(|x| spin(x, iters)).sum()),
            (names[1], &mut || fixed_shares(n, threads, iters)),
            (names[2], &mut || {
                (0..n).par_bridge().map(|x| spin(x, iters)).sum()
            }),
            (names[3], &mut || {
                amorsize::stream(0..n, move |&x| spin(x, iters)).sum()
            }),
            (names[4], &mut || {
                amorsize::stream(0..n, move |&x| spin(x, iters))
                    .unordered()
                    .sum()
            }),
        ],
    );
    show(
        &format!("streaming: {n} items × 1 µs from a plain iterator (target: ≥ 1.5× par_bridge)"),
        &names,
        &times,
        2,
    );
    // On an otherwise idle machine no schedule beats the serial loop split evenly over the
    // threads, so the most any stream can gain over par_bridge is par_bridge's time over
    // serial ÷ threads. (Fixed shares measure that ideal but, unlike a dynamic schedule, stall
    // when one thread is preempted: on a loaded machine they fall behind.)
    let secs = |i: usize| times[i].as_secs_f64();
    let ideal = secs(0) / threads as f64;
    println!(
        "  on {threads} threads: par_bridge {:.2}× the serial loop, the stream {:.2}×, unordered \
         {:.2}×; the ideal {threads}× is {:.2}× par_bridge",
        secs(0) / secs(2),
        secs(0) / secs(3),
        secs(0) / secs(4),
        secs(2) / ideal,
    );
}

/// The ideal split of `0..n` over `threads` threads: one contiguous share each, started at
/// once, nothing coordinated (only possible when the length is known in advance).
fn fixed_shares(n: u64, threads: u64, iters: u64) -> u64 {
    let share = n.div_ceil(threads.max(1));
    std::thread::scope(|s| {
        let handles: Vec<_> = (1..threads)
            .map(|t| {
                s.spawn(move || {
                    (t * share..n.min((t + 1) * share))
                        .map(|x| spin(x, iters))
                        .sum::<u64>()
                })
            })
            .collect();
        let first: u64 = (0..share.min(n)).map(|x| spin(x, iters)).sum();
        first + handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    })
}

/// The coordination cost per item: a stream and par_bridge over items that cost nearly
/// nothing, so that the time is what handing items out and results back costs. Its inverse
/// bounds the items per second either can sustain whatever the core count (par_bridge takes
/// a lock per item; a stream's pulling thread touches each item twice, chunks cost the rest).
fn coordination(reps: usize, n: u64) {
    let names = [
        "serial loop",
        "rayon par_bridge",
        "amorsize stream",
        "amorsize stream unordered",
    ];
    let parallel = amorsize::Options::new()
        .threshold(0.0)
        .workers(std::num::NonZeroUsize::new(rayon::current_num_threads()).unwrap());
    let cheap = |x: u64| black_box(x).wrapping_mul(3);
    let times = race(
        reps,
        &mut [
            (names[0], &mut || {
                (0..n).map(cheap).fold(0, u64::wrapping_add)
            }),
            (names[1], &mut || {
                (0..n)
                    .par_bridge()
                    .map(cheap)
                    .reduce(|| 0, u64::wrapping_add)
            }),
            (names[2], &mut || {
                parallel
                    .stream(0..n, move |&x| cheap(x))
                    .fold(0, u64::wrapping_add)
            }),
            (names[3], &mut || {
                parallel
                    .stream(0..n, move |&x| cheap(x))
                    .unordered()
                    .fold(0, u64::wrapping_add)
            }),
        ],
    );
    println!("\ncoordination cost: {n} items of ~1 ns, per item (parallel forced)");
    for (name, t) in names.iter().zip(&times) {
        let per_item = t.as_secs_f64() * 1e9 / n as f64;
        println!(
            "  {name:<28} {per_item:>8.2} ns/item   at most {:>6.1} M items/s",
            1e3 / per_item
        );
    }
}

/// Peak resident memory of this process, from `VmHWM` in /proc/self/status (proc(5)).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Child mode: stream `n` items of ~1 µs, print the peak RSS.
fn rss_child(n: u64) {
    let iters = iters_for(spin_rate(), Duration::from_micros(1));
    let before = peak_rss_kib().unwrap_or(0);
    let t = Instant::now();
    let s = amorsize::stream(0..n, move |&x| spin(x, iters));
    let sum: u64 = s.sum();
    black_box(sum);
    println!(
        "{} {} {}",
        before,
        peak_rss_kib().unwrap_or(0),
        t.elapsed().as_millis()
    );
}

fn rss(sizes: &[u64]) {
    println!("\npeak memory of a stream (VmHWM, child process per size; target: the same)");
    let exe = std::env::current_exe().unwrap();
    for &n in sizes {
        let out = Command::new(&exe)
            .args(["--rss-child", &n.to_string()])
            .output()
            .expect("child");
        let text = String::from_utf8_lossy(&out.stdout);
        let f: Vec<&str> = text.split_whitespace().collect();
        if let [before, peak, ms] = f[..] {
            println!("  {n:>10} items: peak {peak:>7} KiB (at start {before} KiB), {ms} ms");
        } else {
            println!(
                "  {n:>10} items: child failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--rss-child") {
        rss_child(args[at + 1].parse().unwrap());
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let rate = spin_rate();
    println!(
        "rayon threads: {}, spin rate {rate:.2} rounds/ns",
        rayon::current_num_threads()
    );
    // `--only NAME` runs one part: uniform, tiny, streaming, coordination or rss.
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|at| args.get(at + 1));
    let wanted = |name: &str| only.map_or(true, |o| o == name);
    let reps = if quick { 3 } else { 7 };
    if wanted("uniform") {
        uniform(rate, reps);
    }
    if wanted("tiny") {
        tiny(rate, reps * 3);
    }
    if wanted("streaming") {
        streaming(rate, if quick { 1 } else { 3 }, 1_000_000);
    }
    if wanted("coordination") {
        coordination(if quick { 1 } else { 3 }, 10_000_000);
    }
    if wanted("rss") {
        let sizes: &[u64] = if quick {
            &[100_000, 1_000_000]
        } else {
            &[1_000_000, 10_000_000]
        };
        rss(sizes);
    }
}
