//! `amorsize info` against a fixture root (a cgroup v2 container with 1.5 CPUs and 512 MiB,
//! 8 CPUs with 2 threads per core, affinity 0-1,4-5) and against bad roots.

use std::path::PathBuf;

use assert_cmd::Command;
use predicates::prelude::*;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../amorsize/tests/fixtures/v2-container")
}

fn info() -> Command {
    Command::cargo_bin("amorsize").expect("the amorsize binary")
}

#[test]
fn table_shows_figures_and_sources() {
    info()
        .args(["info", "--root"])
        .arg(fixture())
        .assert()
        .success()
        .stdout(predicate::str::contains("Example CPU @ 3.00GHz"))
        .stdout(predicate::str::contains("6.1.0-example-amd64"))
        .stdout(predicate::str::contains("logical CPUs      8 "))
        .stdout(predicate::str::contains("4 (0-1,4-5)"))
        .stdout(predicate::str::contains("/proc/self/status"))
        .stdout(predicate::str::contains("usable cores      2 "))
        .stdout(predicate::str::contains("1.5 CPUs → 2 workers"))
        .stdout(predicate::str::contains("/sys/fs/cgroup/cpu.max"))
        .stdout(predicate::str::contains("512.0 MiB (536870912 bytes)"))
        .stdout(predicate::str::contains("warnings").not());
}

#[test]
fn table_shows_the_memory_the_workers_may_fill_and_where_each_backend_measures_its_own() {
    let output = info()
        .args(["info", "--root"])
        .arg(fixture())
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let available = text
        .lines()
        .find(|l| l.starts_with("available memory"))
        .and_then(|l| l.split('(').nth(1))
        .and_then(|b| b.split(' ').next())
        .and_then(|b| b.parse::<u64>().ok())
        .expect("an available memory in bytes");
    let planned = (available as f64 * amorsize::model::MEMORY_HEADROOM) as u64;
    let fill = text
        .lines()
        .find(|l| l.starts_with("workers may fill"))
        .expect("a row for the memory workers may fill");
    assert!(fill.contains(&format!("({planned} bytes)")), "{fill}");
    assert!(fill.contains("80 % of available memory"), "{fill}");
    assert!(text.contains("threads: measured per workload"), "{text}");
    assert!(
        text.contains("amorsize::alloc::Counting (when the program installs it)"),
        "{text}"
    );
    assert!(text.contains("peak RSS of the jobs (wait4)"), "{text}");
}

#[test]
fn json_has_the_documented_fields() {
    let output = info()
        .args(["info", "--json", "--root"])
        .arg(fixture())
        .output()
        .unwrap();
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["cpu"]["logical"]["value"], 8);
    assert_eq!(json["cpu"]["affinity"]["value"], 4);
    assert_eq!(json["cpu"]["affinity"]["source"]["kind"], "file");
    assert_eq!(
        json["cpu"]["affinity"]["source"]["path"],
        "/proc/self/status"
    );
    assert_eq!(json["cpu"]["affinity_list"], "0-1,4-5");
    assert_eq!(json["cpu"]["usable_cores"]["value"], 2);
    assert_eq!(json["cgroup"]["version"], "v2");
    assert_eq!(json["cgroup"]["cpu_quota"]["value"], 1.5);
    assert_eq!(json["cgroup"]["quota_workers"], 2);
    assert_eq!(json["cgroup"]["memory_max"]["value"], 536_870_912u64);
    assert_eq!(json["memory"]["total"]["value"], 536_870_912u64);
    assert_eq!(
        json["memory"]["available"]["value"],
        536_870_912u64 - 104_857_600
    );
    assert_eq!(json["memory"]["host_total"]["value"], 16u64 << 30);
    assert_eq!(json["system"]["kernel"]["value"], "6.1.0-example-amd64");
    assert_eq!(
        json["system"]["cpu_model"]["source"]["path"],
        "/proc/cpuinfo"
    );
    assert_eq!(json["warnings"], serde_json::json!([]));
}

#[test]
fn garbage_root_warns_and_still_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("proc")).unwrap();
    std::fs::write(dir.path().join("proc/meminfo"), "MemTotal: lots\n").unwrap();
    info()
        .args(["info", "--root"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("warnings:"))
        .stdout(predicate::str::contains(
            "/proc/meminfo: expected a number of kB",
        ))
        .stdout(predicate::str::contains("fallback: assumed one CPU"));
}

#[test]
fn missing_root_is_an_error() {
    info()
        .args(["info", "--root", "/nonexistent/amorsize-root"])
        .assert()
        .failure()
        .stderr(predicate::str::starts_with(
            "error: --root /nonexistent/amorsize-root",
        ));
}

#[test]
fn this_machine_obeys_the_laws() {
    let output = info().args(["info", "--json"]).output().unwrap();
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let logical = json["cpu"]["logical"]["value"].as_u64().unwrap();
    let affinity = json["cpu"]["affinity"]["value"].as_u64().unwrap();
    let cores = json["cpu"]["usable_cores"]["value"].as_u64().unwrap();
    assert!(1 <= cores && cores <= affinity && affinity <= logical);
    assert_eq!(json["root"], "/");
}
