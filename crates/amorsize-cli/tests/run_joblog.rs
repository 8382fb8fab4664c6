//! `amorsize run --joblog` and `--resume`.

use assert_cmd::Command;
use predicates::prelude::*;

fn amorsize() -> Command {
    Command::cargo_bin("amorsize").unwrap()
}

fn inputs() -> Vec<&'static str> {
    vec![":::", "1", "2", "3", "4", "5", "6"]
}

/// Each job prints its input; input 4 fails.
const SCRIPT: &str = "echo $0; test $0 != 4";

#[test]
fn the_log_has_a_header_and_one_line_per_job() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("jobs.log");
    amorsize()
        .args(["run", "--joblog"])
        .arg(&log)
        .args(["--", "sh", "-c", SCRIPT])
        .args(inputs())
        .assert()
        .code(1);
    let text = std::fs::read_to_string(&log).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand"
    );
    let mut seqs = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 9, "{line}");
        let seq: usize = f[0].parse().unwrap();
        let exit: i32 = f[6].parse().unwrap();
        assert_eq!(exit != 0, seq == 4, "{line}");
        assert_eq!(f[5], "2", "two bytes of output: {line}");
        assert!(f[8].starts_with("sh -c "), "{line}");
        assert!(f[8].ends_with(&format!(" {seq}")), "{line}");
        seqs.push(seq);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
}

#[test]
fn resume_skips_logged_jobs_and_resume_failed_reruns_failures() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("jobs.log");
    amorsize()
        .args(["run", "--joblog"])
        .arg(&log)
        .args(["--", "sh", "-c", SCRIPT])
        .args(inputs())
        .assert()
        .code(1);
    // Nothing is left to run.
    amorsize()
        .args(["run", "--resume", "--joblog"])
        .arg(&log)
        .args(["--", "sh", "-c", SCRIPT])
        .args(inputs())
        .assert()
        .success()
        .stdout("");
    // Only the failed job runs again.
    amorsize()
        .args(["run", "--resume-failed", "--joblog"])
        .arg(&log)
        .args(["--", "sh", "-c", SCRIPT])
        .args(inputs())
        .assert()
        .code(1)
        .stdout("4\n");
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().filter(|l| l.starts_with("Seq")).count(), 1);
    assert_eq!(text.lines().count(), 1 + 6 + 1);
}

#[test]
fn resume_continues_a_partial_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("jobs.log");
    // A log cut short: jobs 1 and 3 done, a torn last line.
    std::fs::write(
        &log,
        "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n\
         1\t:\t1.000\t0.001\t0\t2\t0\t0\techo 1\n\
         3\t:\t1.000\t0.001\t0\t2\t0\t0\techo 3\n\
         5\t:\t1.0",
    )
    .unwrap();
    let out = amorsize()
        .args(["run", "-k", "--resume", "--joblog"])
        .arg(&log)
        .args(["--", "echo"])
        .args([":::", "1", "2", "3", "4", "5"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(String::from_utf8(out).unwrap(), "2\n4\n5\n");
}

#[test]
fn resume_needs_a_log_and_fixed_batches() {
    amorsize()
        .args(["run", "--resume", "--", "echo", ":::", "a"])
        .assert()
        .failure();
    amorsize()
        .args([
            "run",
            "--resume",
            "--joblog",
            "/nonexistent/x",
            "--",
            "echo",
            "{+}",
            ":::",
            "a",
        ])
        .assert()
        .failure();
}

#[test]
fn a_corrupt_log_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("jobs.log");
    std::fs::write(&log, "not a log\nat all\n").unwrap();
    amorsize()
        .args(["run", "--resume", "--joblog"])
        .arg(&log)
        .args(["--", "echo", ":::", "a"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("jobs.log").and(predicate::str::contains("line 1")));
}
