//! The cache shared by real processes: this test binary starts copies of itself as writers,
//! all on one file at once, and checks the file and the count of what they wrote. It also
//! checks, in fresh processes, what the environment variable does and that a warning is given
//! once per process.
//!
//! It has its own `main` (`harness = false`): a child is this same binary with
//! `AMORSIZE_TEST_ROLE` set.

// Children answer their parent on stdout, and without the test harness the parent reports there.
#![allow(clippy::print_stdout)]

use amorsize::cache::{self, Cache, CacheWarning, Fingerprint, WorkloadKey};
use amorsize::model::{Backend, Costs};
use amorsize::Plan;
use std::num::NonZeroUsize;
use std::path::Path;
use std::process::{Command, ExitCode, Output, Stdio};
use std::time::{Duration, Instant};

const ROLE: &str = "AMORSIZE_TEST_ROLE";
const WRITERS: usize = 6;
const RUNS_PER_WRITER: usize = 40;

fn main() -> ExitCode {
    if let Ok(role) = std::env::var(ROLE) {
        return child(&role);
    }
    let tests: [(&str, fn()); 5] = [
        (
            "a_second_process_plans_from_what_the_first_learned",
            a_second_process_plans_from_what_the_first_learned,
        ),
        (
            "a_file_size_limit_stops_writing_not_reading",
            a_file_size_limit_stops_writing_not_reading,
        ),
        (
            "concurrent_writers_lose_nothing",
            concurrent_writers_lose_nothing,
        ),
        (
            "off_disables_the_cache_silently",
            off_disables_the_cache_silently,
        ),
        (
            "an_unusable_location_warns_once",
            an_unusable_location_warns_once,
        ),
    ];
    for (name, test) in tests {
        test();
        println!("test {name} ... ok");
    }
    ExitCode::SUCCESS
}

/// What a child does, by role; it prints what it did for the parent to check.
fn child(role: &str) -> ExitCode {
    match role {
        "writer" => {
            let Some(cache) = Cache::open_default() else {
                println!("unavailable {:?}", cache::take_warnings());
                return ExitCode::FAILURE;
            };
            let key = WorkloadKey::named("shared");
            let plan = Plan::fixed(NonZeroUsize::MIN, NonZeroUsize::MIN);
            let mut sample = amorsize::sample::Sample::default();
            sample.count = 1;
            sample.item_time = 1e-3;
            let costs = Costs {
                backend: Backend::Threads,
                worker_start: 1e-5,
                chunk_dispatch: 1e-6,
                transfer_per_byte: 0.0,
                fallbacks: Default::default(),
            };
            let mut written = 0;
            for i in 0..RUNS_PER_WRITER {
                let run = plan.run_facts(Duration::from_millis(1 + i as u64), 10);
                written += usize::from(cache.record_run(&key, &sample, &run));
                // Reads interleave with the other processes' writes.
                let _ = cache.workload(&key);
                cache.store_costs(&costs);
            }
            for w in cache.take_warnings() {
                // Being skipped on a lock held too long is allowed (and counted); anything else
                // is a failure.
                if !matches!(w, CacheWarning::Busy { .. }) {
                    println!("warning {w}");
                    return ExitCode::FAILURE;
                }
            }
            println!("written {written}");
            ExitCode::SUCCESS
        }
        "fsize" => fill_up_to_a_size_limit(),
        "learn" => learn(),
        "open" => {
            let opened = Cache::open_default().is_some();
            let again = Cache::open_default().is_some();
            println!("opened {opened} {again}");
            for w in cache::take_warnings() {
                println!("warning {w}");
            }
            ExitCode::SUCCESS
        }
        other => {
            println!("unknown role {other}");
            ExitCode::FAILURE
        }
    }
}

fn spawn(role: &str, cache_var: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().expect("the test binary's path"))
        .env(ROLE, role)
        .env(cache::ENV_VAR, cache_var)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start a copy of the test binary")
}

/// Waits for a child, killing it past a generous deadline rather than hanging the suite.
fn finish(mut child: std::process::Child) -> Output {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().expect("wait for child").is_some() {
            return child.wait_with_output().expect("child output");
        }
        if Instant::now() > deadline {
            child.kill().expect("kill a stuck child");
            let out = child.wait_with_output().expect("child output");
            panic!(
                "child did not finish in time: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn concurrent_writers_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A file nobody created yet: the writers also race to create the schema.
    let path = dir.path().join("nested").join("amorsize.db");
    let children: Vec<_> = (0..WRITERS).map(|_| spawn("writer", &path)).collect();
    let mut written = 0;
    for child in children {
        let out = finish(child);
        let text = stdout(&out);
        // The cache's contract on a busy file is to carry on without it: a writer that could
        // not open it (all the others holding it past the waits, on a very busy machine)
        // wrote nothing, and said why.
        if !out.status.success() && text.starts_with("unavailable") && text.contains("locked") {
            continue;
        }
        assert!(out.status.success(), "writer failed: {text}");
        let n: usize = text
            .trim()
            .strip_prefix("written ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected writer output: {text}"));
        written += n;
    }
    assert!(written > 0, "no writer could write");
    println!(
        "  {written} of {} runs written by {WRITERS} processes at once (the rest skipped on a busy lock)",
        WRITERS * RUNS_PER_WRITER
    );
    // Every write a writer saw succeed is in the file, and the file is sound: reopening runs
    // SQLite's quick_check and would report a rebuild otherwise.
    let machine = Fingerprint::current();
    let cache = Cache::open_at(&path, machine).expect("reopen");
    assert_eq!(cache.take_warnings(), vec![]);
    let history = cache.workload(&WorkloadKey::named("shared")).unwrap();
    assert_eq!(history.runs as usize, written);
    assert_eq!(history.recent.len(), written.min(cache::KEEP_RECENT));
    assert!(cache.load_costs(Backend::Threads).is_some());
}

fn off_disables_the_cache_silently() {
    let out = finish(spawn("open", Path::new("off")));
    assert_eq!(stdout(&out), "opened false false\n");
}

fn an_unusable_location_warns_once() {
    // procfs refuses new directories to every user, root included.
    let out = finish(spawn("open", Path::new("/proc/self/amorsize/amorsize.db")));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "opened false false", "{text}");
    assert_eq!(lines.len(), 2, "one warning for two failed opens: {text}");
    assert!(
        lines[1].contains("/proc/self/amorsize/amorsize.db") && lines[1].contains("AMORSIZE_CACHE"),
        "{text}"
    );
}

/// Fills the cache until the operating system refuses to let its files grow. RLIMIT_FSIZE makes
/// write(2) past the limit fail with EFBIG (after a short write up to it): the kernel's refusal
/// of a full disk, with another errno. SQLite's unix VFS reports ENOSPC as SQLITE_FULL and any
/// other failed write as SQLITE_IOERR_WRITE (os_unix.c, `unixWrite`), so this reaches the
/// write-failure path; the in-crate test with `max_page_count` reaches the SQLITE_FULL path.
fn fill_up_to_a_size_limit() -> ExitCode {
    let Some(cache) = Cache::open_default() else {
        println!("unavailable");
        return ExitCode::FAILURE;
    };
    let key = |i: usize| WorkloadKey::named(format!("w{i} {}", "x".repeat(2000)));
    let plan = Plan::fixed(NonZeroUsize::MIN, NonZeroUsize::MIN);
    let mut sample = amorsize::sample::Sample::default();
    sample.count = 1;
    sample.item_time = 1e-3;
    let run = plan.run_facts(Duration::from_millis(5), 10);
    assert!(cache.record_run(&key(0), &sample, &run));
    let path = std::path::PathBuf::from(std::env::var_os(cache::ENV_VAR).unwrap());
    let size = |suffix: &str| {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        std::fs::metadata(p).map_or(0, |m| m.len())
    };
    let limit = size("").max(size("-wal")).max(size("-shm")) + 1500;
    limit_file_size(limit);
    let mut written = 1;
    for i in 1..400 {
        if cache.record_run(&key(i), &sample, &run) {
            written += 1;
        }
    }
    for w in cache.take_warnings() {
        println!("warning {w:?}");
    }
    // Reading goes on after writing stopped.
    let history = cache.workload(&key(0)).map(|h| h.runs);
    println!("written {written} read {history:?}");
    ExitCode::SUCCESS
}

/// Caps the size of files this process writes; a write past it fails instead of raising
/// SIGXFSZ (which would kill the process). Unix only: elsewhere the test that uses it fails
/// with the limit never biting.
#[cfg(not(unix))]
fn limit_file_size(_: u64) {}

/// Caps the size of files this process writes; a write past it fails instead of raising
/// SIGXFSZ (which would kill the process).
#[cfg(unix)]
fn limit_file_size(bytes: u64) {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: ignoring a signal and setting a resource limit of this process take plain values
    // and touch no memory of ours.
    let ok = unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN) != libc::SIG_ERR
            && libc::setrlimit(libc::RLIMIT_FSIZE, &limit) == 0
    };
    assert!(
        ok,
        "cannot set RLIMIT_FSIZE: {}",
        std::io::Error::last_os_error()
    );
}

fn a_file_size_limit_stops_writing_not_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("amorsize.db");
    let out = finish(spawn("fsize", &path));
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "one warning: {text}");
    assert!(lines[0].starts_with("warning WriteFailed"), "{text}");
    assert!(lines[1].ends_with("read Some(1)"), "{text}");
    let written: usize = lines[1]
        .split(' ')
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(written < 400, "the limit never bit: {text}");
    // What was committed before the disk filled is intact.
    let cache = Cache::open_at(&path, Fingerprint::current()).unwrap();
    assert_eq!(cache.take_warnings(), vec![]);
    assert_eq!(cache.summary().unwrap().workloads.len(), written);
}

/// About 20 µs of integer work, enough that a run of 4000 items is worth remembering.
fn spin(x: &u64) -> u64 {
    let mut v = *x | 1;
    for _ in 0..20_000 {
        v ^= v << 13;
        v ^= v >> 7;
        v ^= v << 17;
    }
    std::hint::black_box(v)
}

/// Plans and runs a named workload through the library's front door, and prints what the plan
/// started from: the thread costs (bit for bit) and the item time.
fn learn() -> ExitCode {
    let items: Vec<u64> = (0..4000).collect();
    let run = amorsize::Options::new()
        .name("learned")
        .run(&items, spin)
        .expect("run");
    let plan = &run.report.plan;
    // The thread costs this process uses, whether or not the plan needed them (a plan proven
    // serial from a bound, as on a loaded machine, measures nothing): recalled from the cache
    // when it has them, measured otherwise.
    let costs = amorsize::calibrate::threads().costs;
    let costs = Some((costs.worker_start.to_bits(), costs.chunk_dispatch.to_bits()));
    let item_time = plan.workload().map(|w| w.item_time.to_bits());
    println!("costs {costs:?} item {item_time:?}");
    for w in cache::take_warnings() {
        println!("warning {w}");
    }
    ExitCode::SUCCESS
}

fn a_second_process_plans_from_what_the_first_learned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("amorsize.db");
    let first = finish(spawn("learn", &path));
    assert!(first.status.success(), "{}", stdout(&first));
    let cache = Cache::open_at(&path, Fingerprint::current()).unwrap();
    let key = WorkloadKey::named("learned");
    let history = cache.workload(&key).expect("the run was recorded");
    assert_eq!(history.runs, 1);
    let stored = cache.load_costs(Backend::Threads);
    drop(cache);

    let second = finish(spawn("learn", &path));
    let text = stdout(&second);
    assert!(second.status.success(), "{text}");
    // The calibration was read, not measured again: the same figures, bit for bit.
    if let Some(costs) = stored {
        let expected = format!(
            "costs Some(({}, {}))",
            costs.worker_start.to_bits(),
            costs.chunk_dispatch.to_bits()
        );
        assert!(text.starts_with(&expected), "{expected} vs {text}");
    }
    // The plan started from the remembered per-item cost when its sample confirmed it: the
    // item time is then the median over the remembered samples and the new one, or else the
    // new sample's own; either way the run is recorded again.
    let cache = Cache::open_at(&path, Fingerprint::current()).unwrap();
    let history = cache.workload(&key).unwrap();
    assert_eq!(history.runs, 2);
    assert_eq!(history.samples.len(), 2);
    assert!(!text.contains("warning"), "{text}");
}
