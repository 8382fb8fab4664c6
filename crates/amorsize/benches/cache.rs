//! Time to decide with a warm cache against a cold one, side by side in one run.
//!
//! Each decision is timed in a fresh process (the overhead calibration is kept for the life of
//! a process, so only a new one shows what a cold start costs), from before the first
//! amorsize call to the plan, cache opening included; process start-up is not counted. The
//! processes of the three kinds are interleaved, so that the machine's noise falls on all
//! alike:
//!
//! - `off`: no cache (`AMORSIZE_CACHE=off`): probe the overheads, sample, decide;
//! - `cold`: an empty cache file: the same, plus opening the file and storing the calibration;
//! - `warm`: a cache that knows the machine and the workload: the calibration is read, the
//!   sample is light.
//!
//! `cargo bench -p amorsize --bench cache` (add `-- --quick` for fewer processes).
#![allow(clippy::print_stdout)]

use amorsize::cache;
use amorsize::Options;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const ROLE: &str = "AMORSIZE_BENCH_ROLE";
const ITEMS: usize = 20_000;
const NAME: &str = "bench: decide";

/// About 5 µs of integer work.
fn work(x: &u64) -> u64 {
    let mut v = *x | 1;
    for _ in 0..5_000 {
        v ^= v << 13;
        v ^= v >> 7;
        v ^= v << 17;
    }
    black_box(v)
}

fn main() {
    if let Ok(role) = std::env::var(ROLE) {
        child(&role);
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 5 } else { 15 };
    let dir = tempfile::tempdir().expect("temporary directory");
    let empty = dir.path().join("empty.db");
    let warm = dir.path().join("warm.db");
    // An empty file of the current schema, copied for every cold process.
    spawn("create", &empty);
    // A warm cache: one full run records the calibration and the workload.
    spawn("run", &warm);

    let mut times: [Vec<Duration>; 3] = Default::default();
    for round in 0..rounds {
        let cold = dir.path().join(format!("cold-{round}.db"));
        std::fs::copy(&empty, &cold).expect("copy the empty cache");
        times[0].push(spawn("decide", Path::new("off")));
        times[1].push(spawn("decide", &cold));
        times[2].push(spawn("decide", &warm));
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let [off, cold, warm_t] = times.each_mut().map(median);
    println!("time to decide, {ITEMS} items of ~5 µs, median of {rounds} processes each");
    println!("  no cache    {:>9.3} ms", off.as_secs_f64() * 1e3);
    println!("  cold cache  {:>9.3} ms", cold.as_secs_f64() * 1e3);
    println!("  warm cache  {:>9.3} ms", warm_t.as_secs_f64() * 1e3);
    println!(
        "  warm ÷ cold {:.3}   warm ÷ no cache {:.3}",
        warm_t.as_secs_f64() / cold.as_secs_f64(),
        warm_t.as_secs_f64() / off.as_secs_f64()
    );
}

/// Runs this binary in `role` on the cache `path` and returns the time it printed.
fn spawn(role: &str, path: &Path) -> Duration {
    let out = Command::new(std::env::current_exe().expect("own path"))
        .env(ROLE, role)
        .env(cache::ENV_VAR, path)
        .output()
        .expect("start a child");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child {role} failed: {text}");
    let nanos: u64 = text.trim().parse().unwrap_or(0);
    Duration::from_nanos(nanos)
}

fn child(role: &str) {
    let items: Vec<u64> = (0..ITEMS as u64).collect();
    let options = Options::new().name(NAME);
    match role {
        "create" => {
            let path = PathBuf::from(std::env::var_os(cache::ENV_VAR).expect("cache path"));
            let machine = cache::Fingerprint::current();
            cache::Cache::open_at(&path, machine).expect("create the cache");
            println!("0");
        }
        "run" => {
            options.run(&items, work).expect("run");
            println!("0");
        }
        _ => {
            let began = Instant::now();
            let (plan, sampled) =
                amorsize::plan::plan_slice(&items, &work, &options).expect("plan");
            let took = began.elapsed();
            black_box((plan, sampled));
            println!("{}", took.as_nanos());
        }
    }
}
