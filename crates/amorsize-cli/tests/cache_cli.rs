//! `amorsize cache show | clear | path` against a cache file of the test's own.

use amorsize::cache::{Cache, Fingerprint, WorkloadKey};
use amorsize::model::{Backend, Costs};
use assert_cmd::Command;
use predicates::prelude::*;
use std::num::NonZeroUsize;
use std::path::Path;
use std::time::Duration;

fn amorsize(cache: &Path) -> Command {
    let mut cmd = Command::cargo_bin("amorsize").unwrap();
    cmd.env("AMORSIZE_CACHE", cache);
    cmd
}

fn fill(path: &Path) {
    let cache = Cache::open_at(path, Fingerprint::current()).unwrap();
    assert!(cache.store_costs(&Costs {
        backend: Backend::Threads,
        worker_start: 25e-6,
        chunk_dispatch: 2e-6,
        transfer_per_byte: 0.0,
        fallbacks: Default::default(),
    }));
    let mut sample = amorsize::sample::Sample::default();
    sample.count = 5;
    sample.item_time = 3e-3;
    sample.cv = 0.2;
    assert!(cache.record_run(
        &WorkloadKey::named("thumbnails"),
        &sample,
        &amorsize::Plan::fixed(
            NonZeroUsize::new(4).unwrap(),
            NonZeroUsize::new(16).unwrap()
        )
        .run_facts(Duration::from_millis(120), 400),
    ));
}

#[test]
fn path_prints_the_file_or_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.db");
    amorsize(&path)
        .args(["cache", "path"])
        .assert()
        .success()
        .stdout(format!("{}\n", path.display()));
    amorsize(Path::new("off"))
        .args(["cache", "path"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("off"));
    assert!(!path.exists(), "asking for the path creates nothing");
}

#[test]
fn show_lists_what_is_stored_and_clear_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("amorsize.db");
    amorsize(&path)
        .args(["cache", "show"])
        .assert()
        .success()
        .stdout(predicate::str::contains("no file yet"));
    fill(&path);
    amorsize(&path)
        .args(["cache", "show"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("thumbnails")
                .and(predicate::str::contains("threads"))
                .and(predicate::str::contains("25.0 µs"))
                .and(predicate::str::contains("last 4 workers × chunk 16")),
        );
    let out = amorsize(&path)
        .args(["cache", "show", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["summary"]["workloads"][0]["key"], "thumbnails");
    assert_eq!(v["summary"]["workloads"][0]["runs"], 1);
    assert_eq!(
        v["summary"]["calibrations"][0]["costs"]["backend"],
        "threads"
    );
    amorsize(&path)
        .args(["cache", "clear"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("removed"));
    assert!(!path.exists());
    amorsize(&path)
        .args(["cache", "clear"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("no cache"));
}

#[test]
fn show_on_a_corrupt_file_warns_and_rebuilds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("amorsize.db");
    std::fs::write(&path, vec![0xA5u8; 8192]).unwrap();
    amorsize(&path)
        .args(["cache", "show"])
        .assert()
        .success()
        .stderr(predicate::str::contains("rebuilt"))
        .stdout(predicate::str::contains("workloads (0)"));
}
