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

use amorsize::probe::parse::{
    autogroup, cgroup, cpu_list, cpuinfo, loadavg, meminfo, mountinfo, proc_cgroup, proc_stat,
    status, task_stat,
};

mod common;
use common::fuzz::{fuzz, Corpus};

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
    // loadavg, autogroup, task stat
    "0.54 1.33 3.95 3/98 11523\n",
    "12.00 8.50 4.25 17/1024 99999\n",
    "1\n",
    "4242 (my (odd) name) R 1 4242 4242 0 -1 4194560 113 0 0 0\n",
    // /proc/stat
    "cpu  1360594 25574 260015 212590 1581 0 1897 2515 0 0\ncpu0 687809 13883 120245 108705 463 0 78 1240 0 0\nintr 1 2\n",
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
    "(",
    ")",
    " R ",
    " S ",
    "0.00",
    "99.99",
];

const PROBE_FILES: Corpus = Corpus {
    seeds: SEEDS,
    dictionary: DICTIONARY,
};

#[test]
fn cpu_list() {
    fuzz(
        "cpu_list",
        &PROBE_FILES,
        |text| match cpu_list::parse_cpu_list(text) {
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
        },
    );
}

#[test]
fn cgroup_cpu_max() {
    fuzz(
        "cgroup_cpu_max",
        &PROBE_FILES,
        |text| match cgroup::parse_cpu_max(text) {
            Ok(Some(cpus)) => {
                assert!(
                    cpus.is_finite() && cpus > 0.0,
                    "a quota is a positive number of CPUs: {cpus}"
                );
                true
            }
            Ok(None) => true,
            Err(_) => false,
        },
    );
}

#[test]
fn cgroup_v1_cfs() {
    fuzz("cgroup_v1_cfs", &PROBE_FILES, |text| {
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
    fuzz("cgroup_memory_files", &PROBE_FILES, |text| {
        let limit = cgroup::parse_memory_limit(text).is_ok();
        let usage = cgroup::parse_memory_usage(text).is_ok();
        let v1 = cgroup::parse_v1_memory_limit(text).is_ok();
        limit || usage || v1
    });
}

#[test]
fn proc_self_cgroup() {
    fuzz("proc_self_cgroup", &PROBE_FILES, |text| {
        proc_cgroup::parse_proc_cgroup(text).is_ok()
    });
}

#[test]
fn mountinfo() {
    fuzz(
        "mountinfo",
        &PROBE_FILES,
        |text| match mountinfo::parse_mountinfo(text) {
            Ok(mounts) => {
                assert!(
                    mounts.len() <= text.lines().count(),
                    "at most one mount per line"
                );
                true
            }
            Err(_) => false,
        },
    );
}

#[test]
fn cpuinfo() {
    fuzz("cpuinfo", &PROBE_FILES, |text| {
        cpuinfo::parse_cpuinfo(text).is_ok()
    });
}

#[test]
fn meminfo() {
    fuzz(
        "meminfo",
        &PROBE_FILES,
        |text| match meminfo::parse_meminfo(text) {
            Ok(info) => {
                // Values are kB in the file: whatever is reported in bytes did not overflow.
                for bytes in [info.total, info.available].into_iter().flatten() {
                    assert_eq!(bytes % 1024, 0, "meminfo figures are whole kB: {bytes}");
                }
                true
            }
            Err(_) => false,
        },
    );
}

#[test]
fn status_cpus_allowed() {
    fuzz("status_cpus_allowed", &PROBE_FILES, |text| {
        status::parse_cpus_allowed(text).is_ok()
    });
}

#[test]
fn loadavg() {
    fuzz(
        "loadavg",
        &PROBE_FILES,
        |text| match loadavg::parse_loadavg(text) {
            Ok(load) => {
                assert!(load.runnable <= load.threads, "runnable among existing");
                assert!(load.averages.iter().all(|a| a.is_finite() && *a >= 0.0));
                true
            }
            Err(_) => false,
        },
    );
}

#[test]
fn autogroup_enabled() {
    fuzz("autogroup_enabled", &PROBE_FILES, |text| {
        autogroup::parse_autogroup_enabled(text).is_ok()
    });
}

#[test]
fn task_stat_state() {
    fuzz(
        "task_stat_state",
        &PROBE_FILES,
        |text| match task_stat::parse_state(text) {
            Ok(state) => {
                assert!(state.is_ascii_alphabetic(), "a state letter: {state:?}");
                true
            }
            Err(_) => false,
        },
    );
}

#[test]
fn proc_stat_cpu_times() {
    fuzz(
        "proc_stat_cpu_times",
        &PROBE_FILES,
        |text| match proc_stat::parse_cpu_times(text) {
            Ok(times) => {
                assert!(times.busy <= times.total, "busy within total");
                true
            }
            Err(_) => false,
        },
    );
}

#[test]
fn task_stat_cpu_ticks() {
    fuzz("task_stat_cpu_ticks", &PROBE_FILES, |text| {
        task_stat::parse_cpu_ticks(text).is_ok()
    });
}
