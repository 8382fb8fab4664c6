//! Generated-input fuzzing of every system-file parser in `probe::parse`.
//!
//! Each parser is fed inputs mutated from realistic samples of its format (and from the other
//! formats, and from random bytes): bit flips, inserted tokens from a dictionary of the
//! formats' own words and numbers, deleted and duplicated ranges, splices and truncations.
//! Every call must return (no panic, no hang) and every `Ok` must satisfy the format's
//! invariants.
//!
//! The default run is short, for CI. The long run behind the figures in `RELIABILITY.md`:
//!
//! ```sh
//! AMORSIZE_FUZZ_ITERS=1000000 cargo test --release -p amorsize --test fuzz_parsers -- --nocapture
//! ```
//!
//! `AMORSIZE_FUZZ_SEED` changes the seed (the default is fixed, so a failure reproduces).

#![allow(clippy::print_stdout)] // The figures are printed for the record (`--nocapture`).

use amorsize::probe::parse::{cgroup, cpu_list, cpuinfo, meminfo, mountinfo, proc_cgroup, status};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Inputs per parser in the default (CI) run.
const DEFAULT_ITERS: u64 = if cfg!(debug_assertions) {
    3_000
} else {
    50_000
};

/// A parser call that makes no progress for this long is a hang. It is not a timing assertion:
/// a correct parser takes microseconds on inputs of a few kilobytes, so only a real hang (an
/// endless loop) trips it.
const HANG: Duration = Duration::from_secs(30);

/// Longest generated input: enough to hold many records, small enough to stay fast.
const MAX_LEN: usize = 8 * 1024;

/// splitmix64: tiny, deterministic, good enough to drive mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const SEEDS: &[&str] = &[
    // cpu lists
    "0-3,8,10-11\n",
    "0\n",
    "",
    "0-65535\n",
    // cpu.max, cfs, memory files
    "150000 100000\n",
    "max 100000\n",
    "max\n",
    "536870912\n",
    "9223372036854771712\n",
    "-1\n",
    // /proc/self/cgroup
    "0::/user.slice/user-1000.slice/session-2.scope\n",
    "12:cpu,cpuacct:/docker/abc\n11:memory:/docker/abc\n1:name=systemd:/docker/abc\n0::/\n",
    // mountinfo
    "29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n",
    "35 25 0:30 /docker/abc /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n",
    "40 30 0:40 / /mnt/with\\040space rw - ext4 /dev/sda1 rw\n",
    // cpuinfo
    "processor\t: 0\nphysical id\t: 0\ncore id\t\t: 0\nmodel name\t: X\n\nprocessor\t: 1\nphysical id\t: 0\ncore id\t\t: 0\n\n",
    // meminfo
    "MemTotal:       24576000 kB\nMemFree:        20000000 kB\nMemAvailable:   22000000 kB\n",
    // status
    "Name:\tamorsize\nCpus_allowed:\tff\nCpus_allowed_list:\t0-7\nMems_allowed_list:\t0\n",
];

const DICTIONARY: &[&str] = &[
    "0",
    "1",
    "-",
    ",",
    ":",
    "::",
    " ",
    "\t",
    "\n",
    "\n\n",
    "max",
    "kB",
    "MB",
    "-1",
    "0-",
    "-0",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999",
    "65536",
    "65535",
    "3-1",
    "\\040",
    "\\",
    "\\0",
    "/",
    "..",
    " - ",
    "cgroup",
    "cgroup2",
    "cpu,cpuacct",
    "memory",
    "name=systemd",
    "processor",
    "physical id",
    "core id",
    "MemTotal:",
    "MemAvailable:",
    "Cpus_allowed_list:",
    "é",
    "\u{FEFF}",
    "\0",
    "+",
    "1e9",
    "NaN",
    "inf",
    "0x10",
    "  ",
    "\r\n",
];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    let rounds = 1 + rng.below(8);
    for _ in 0..rounds {
        match rng.below(8) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 => {
                let token = DICTIONARY[rng.below(DICTIONARY.len())].as_bytes();
                let at = rng.below(input.len() + 1);
                input.splice(at..at, token.iter().copied());
            }
            2 if !input.is_empty() => {
                let a = rng.below(input.len());
                let b = (a + rng.below(16)).min(input.len());
                input.drain(a..b);
            }
            3 if !input.is_empty() => {
                let a = rng.below(input.len());
                let b = (a + 1 + rng.below(64)).min(input.len());
                let copy = input[a..b].to_vec();
                let at = rng.below(input.len() + 1);
                input.splice(at..at, copy);
            }
            4 => {
                let other = SEEDS[rng.below(SEEDS.len())].as_bytes();
                let at = rng.below(input.len() + 1);
                input.splice(at..at, other.iter().copied());
            }
            5 => input.truncate(rng.below(input.len() + 1)),
            6 => {
                let at = rng.below(input.len() + 1);
                input.insert(at, (rng.next() & 0xFF) as u8);
            }
            _ => {
                let digits = rng.next().to_string();
                let at = rng.below(input.len() + 1);
                input.splice(at..at, digits.bytes());
            }
        }
    }
    input.truncate(MAX_LEN);
}

/// Figures of one parser's run, printed for the record.
#[derive(Default)]
struct Figures {
    inputs: u64,
    ok: u64,
    err: u64,
    longest_input: usize,
    slowest: Duration,
}

/// Feeds `iters` generated inputs to `parse`, which returns whether the input parsed; it
/// panics (failing the test, with the input shown) when an invariant breaks.
fn fuzz(name: &str, parse: impl Fn(&str) -> bool) {
    let iters = std::env::var("AMORSIZE_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_ITERS);
    let seed = std::env::var("AMORSIZE_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED_u64);
    let mut rng = Rng(seed
        ^ name
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64)));

    // The watchdog: progress is a counter the loop bumps; if it stalls, show the input.
    let progress = Arc::new(AtomicU64::new(0));
    let current = Arc::new(Mutex::new(String::new()));
    let done = Arc::new(AtomicU64::new(0));
    let watchdog = {
        let (progress, current, done) = (progress.clone(), current.clone(), done.clone());
        let name = name.to_owned();
        std::thread::spawn(move || {
            let mut last = u64::MAX;
            let mut since = Instant::now();
            while done.load(Ordering::Relaxed) == 0 {
                std::thread::sleep(Duration::from_millis(100));
                let now = progress.load(Ordering::Relaxed);
                if now != last {
                    last = now;
                    since = Instant::now();
                } else if since.elapsed() > HANG {
                    let input = current.lock().map(|s| s.clone()).unwrap_or_default();
                    eprintln!("{name}: no progress for {HANG:?} on input {input:?}");
                    std::process::abort();
                }
            }
        })
    };

    let started = Instant::now();
    let mut figures = Figures::default();
    for i in 0..iters {
        let mut bytes = if rng.below(16) == 0 {
            (0..rng.below(256))
                .map(|_| (rng.next() & 0xFF) as u8)
                .collect()
        } else {
            SEEDS[rng.below(SEEDS.len())].as_bytes().to_vec()
        };
        mutate(&mut rng, &mut bytes);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Ok(mut slot) = current.try_lock() {
            slot.clone_from(&text);
        }
        let t0 = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| parse(&text)));
        let took = t0.elapsed();
        match outcome {
            Ok(true) => figures.ok += 1,
            Ok(false) => figures.err += 1,
            Err(_) => panic!("{name} panicked (or broke an invariant) on input {text:?}"),
        }
        figures.inputs += 1;
        figures.longest_input = figures.longest_input.max(text.len());
        figures.slowest = figures.slowest.max(took);
        progress.store(i + 1, Ordering::Relaxed);
    }
    done.store(1, Ordering::Relaxed);
    watchdog.join().expect("the watchdog thread never panics");
    let elapsed = started.elapsed();
    println!(
        "{name:<22} {:>9} inputs  {:>8} ok  {:>9} err  longest {:>5} B  slowest {:>9.1?}  total {:>7.2?}",
        figures.inputs, figures.ok, figures.err, figures.longest_input, figures.slowest, elapsed
    );
    assert_eq!(figures.inputs, iters);
}

#[test]
fn cpu_list() {
    fuzz("cpu_list", |text| match cpu_list::parse_cpu_list(text) {
        Ok(set) => {
            let ids = set.ids();
            assert!(
                ids.windows(2).all(|w| w[0] < w[1]),
                "ids sorted and distinct"
            );
            assert!(ids.iter().all(|&id| id <= cpu_list::MAX_CPU_ID));
            // Round trip: the set written back as a list parses to the same set.
            let written: Vec<String> = ids.iter().map(u32::to_string).collect();
            let again =
                cpu_list::parse_cpu_list(&written.join(",")).expect("a written list parses");
            assert_eq!(again.ids(), ids);
            true
        }
        Err(_) => false,
    });
}

#[test]
fn cgroup_cpu_max() {
    fuzz("cgroup_cpu_max", |text| match cgroup::parse_cpu_max(text) {
        Ok(Some(cpus)) => {
            assert!(
                cpus.is_finite() && cpus > 0.0,
                "a quota is a positive number of CPUs: {cpus}"
            );
            true
        }
        Ok(None) => true,
        Err(_) => false,
    });
}

#[test]
fn cgroup_v1_cfs() {
    fuzz("cgroup_v1_cfs", |text| {
        // Both files from one input: the first line is the quota, the rest the period.
        let (quota, period) = text.split_once('\n').unwrap_or((text, "100000"));
        match cgroup::parse_cfs(quota, period) {
            Ok(Some(cpus)) => {
                assert!(
                    cpus.is_finite() && cpus > 0.0,
                    "a quota is a positive number of CPUs: {cpus}"
                );
                true
            }
            Ok(None) => true,
            Err(_) => false,
        }
    });
}

#[test]
fn cgroup_memory_files() {
    fuzz("cgroup_memory_files", |text| {
        let limit = cgroup::parse_memory_limit(text).is_ok();
        let usage = cgroup::parse_memory_usage(text).is_ok();
        let v1 = cgroup::parse_v1_memory_limit(text).is_ok();
        limit || usage || v1
    });
}

#[test]
fn proc_self_cgroup() {
    fuzz("proc_self_cgroup", |text| {
        proc_cgroup::parse_proc_cgroup(text).is_ok()
    });
}

#[test]
fn mountinfo() {
    fuzz("mountinfo", |text| match mountinfo::parse_mountinfo(text) {
        Ok(mounts) => {
            assert!(
                mounts.len() <= text.lines().count(),
                "at most one mount per line"
            );
            true
        }
        Err(_) => false,
    });
}

#[test]
fn cpuinfo() {
    fuzz("cpuinfo", |text| cpuinfo::parse_cpuinfo(text).is_ok());
}

#[test]
fn meminfo() {
    fuzz("meminfo", |text| match meminfo::parse_meminfo(text) {
        Ok(info) => {
            // Values are kB in the file: whatever is reported in bytes did not overflow.
            for bytes in [info.total, info.available].into_iter().flatten() {
                assert_eq!(bytes % 1024, 0, "meminfo figures are whole kB: {bytes}");
            }
            true
        }
        Err(_) => false,
    });
}

#[test]
fn status_cpus_allowed() {
    fuzz("status_cpus_allowed", |text| {
        status::parse_cpus_allowed(text).is_ok()
    });
}
